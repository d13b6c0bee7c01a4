#!/usr/bin/env bash
# Times lucid against the tools a user would pick instead — vips (libvips-tools), Pillow and
# OpenCV — whole process, same 4000x3000 JPEG input, same run, the tools taking turns. Prints,
# per operation, each tool's best-of-N wall time and peak memory, and lucid's best time as a
# ratio of the fastest peer's.
#
#   apt-get install libvips-tools time && pip install pillow opencv-python-headless numpy
#   cargo build --release && bench/imaging.sh [runs [operation...]]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
operations=("$@")
[ ${#operations[@]} -gt 0 ] || operations=(upscale downscale unsharp denoise whitebalance)
lucid=target/release/lucid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
in=$work/input.jpg
python3 bench/make_input.py ../shared/images "$in"

# "seconds peak_kib" of one run of a command.
once() {
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1
  cat "$work/t"
}

# Sets the array `cmd` to lucid's command for an operation (input and output appended later).
lucid_cmd() {
  local plain=(--set upscaler=lanczos --set sharpen=0 --set denoise=0 --set fix_compression=0)
  case $1 in
    upscale)      cmd=("$lucid" process --endpoint enhance --set output_width=8000 "${plain[@]}") ;;
    downscale)    cmd=("$lucid" process --endpoint enhance --set output_width=1000 "${plain[@]}") ;;
    unsharp)      cmd=("$lucid" process --endpoint sharpen --model Standard) ;;
    denoise)      cmd=("$lucid" process --endpoint denoise --model Normal) ;;
    whitebalance) cmd=("$lucid" process --endpoint lighting --model "White Balance") ;;
  esac
}

vips_cmd() {
  case $1 in
    upscale)   echo "vips resize $in $work/v.jpg[Q=92] 2 --kernel lanczos3" ;;
    downscale) echo "vips resize $in $work/v.jpg[Q=92] 0.25 --kernel lanczos3" ;;
    unsharp)   echo "vips sharpen $in $work/v.jpg[Q=92]" ;;
    denoise)   echo "vips rank $in $work/v.jpg[Q=92] 3 3 4" ;;
    *)         echo "" ;;
  esac
}

printf "%-13s %-22s %-22s %-22s %-22s %s\n" operation "lucid s (MiB)" "vips s (MiB)" "pillow s (MiB)" "opencv s (MiB)" "lucid/fastest peer"
for op in "${operations[@]}"; do
  lucid_cmd "$op"
  vc=$(vips_cmd $op)
  # The tools take turns, run after run, so a change in the shared machine's load falls on
  # all of them alike; each keeps its best time and its largest peak memory.
  declare -A best=() mem=()
  for _ in $(seq "$runs"); do
    for tool in lucid vips pillow opencv; do
      case $tool in
        lucid) read -r t m <<< "$(once "${cmd[@]}" "$in" "$work/l.jpg")" ;;
        vips)
          [ -n "$vc" ] || continue
          # shellcheck disable=SC2086
          read -r t m <<< "$(once $vc)" ;;
        *) read -r t m <<< "$(once python3 bench/peers.py $tool $op "$in" "$work/p.jpg")" ;;
      esac
      if [ -z "${best[$tool]:-}" ] || awk "BEGIN{exit !($t < ${best[$tool]})}"; then best[$tool]=$t; fi
      [ "$m" -gt "${mem[$tool]:-0}" ] && mem[$tool]=$m
    done
  done
  row=() fastest=""
  for tool in lucid vips pillow opencv; do
    if [ -z "${best[$tool]:-}" ]; then row+=("n/a"); continue; fi
    row+=("${best[$tool]} $((mem[$tool] / 1024))")
    if [ "$tool" != lucid ] && { [ -z "$fastest" ] || awk "BEGIN{exit !(${best[$tool]} < $fastest)}"; }; then
      fastest=${best[$tool]}
    fi
  done
  ratio=$(awk "BEGIN{printf \"%.2f\", ${best[lucid]} / $fastest}")
  printf "%-13s %-22s %-22s %-22s %-22s %s\n" "$op" "${row[0]}" "${row[1]}" "${row[2]}" "${row[3]}" "$ratio"
  unset best mem
done
