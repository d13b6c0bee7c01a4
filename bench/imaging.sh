#!/usr/bin/env bash
# Times lucid against the tools a user would pick instead — vips (libvips-tools), Pillow and
# OpenCV — whole process, same 4000x3000 JPEG input, same run. Prints, per operation, each
# tool's best-of-N wall time and peak memory, and lucid's time as a ratio of each peer's.
#
#   apt-get install libvips-tools time && pip install pillow opencv-python-headless numpy
#   cargo build --release && bench/imaging.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
lucid=target/release/lucid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
in=$work/input.jpg
python3 bench/make_input.py ../shared/images "$in"

# best-of-N "seconds peak_kib" of a command.
measure() {
  local best="" mem=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1
    read -r t m < "$work/t"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$mem" ] && mem=$m
  done
  echo "$best $mem"
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
for op in upscale downscale unsharp denoise whitebalance; do
  lucid_cmd "$op"
  read -r lt lm <<< "$(measure "${cmd[@]}" "$in" "$work/l.jpg")"
  row=("$lt $((lm / 1024))")
  fastest=""
  vc=$(vips_cmd $op)
  if [ -n "$vc" ]; then
    # shellcheck disable=SC2086
    read -r vt vm <<< "$(measure $vc)"; row+=("$vt $((vm / 1024))"); fastest=$vt
  else
    row+=("n/a")
  fi
  for lib in pillow opencv; do
    read -r pt pm <<< "$(measure python3 bench/peers.py $lib $op "$in" "$work/p.jpg")"
    row+=("$pt $((pm / 1024))")
    if [ -z "$fastest" ] || awk "BEGIN{exit !($pt < $fastest)}"; then fastest=$pt; fi
  done
  ratio=$(awk "BEGIN{printf \"%.2f\", $lt / $fastest}")
  printf "%-13s %-22s %-22s %-22s %-22s %s\n" "$op" "${row[0]}" "${row[1]}" "${row[2]}" "${row[3]}" "$ratio"
done
