#!/usr/bin/env bash
# How soon a cancelled job stops computing: starts `lucid serve` on a scratch folder, submits a
# job, cancels it once its progress reaches 30 %, and times until its rayon pool's threads
# (named lucid-job-N) are gone. BUSY=1 submits a 12 MP denoise first, so another job runs
# beside it (with WORKERS=2).
#
#   cargo build --release && python3 bench/make_input.py ../shared/images /tmp/in.jpg
#   bench/cancel_latency.sh /tmp/in.jpg enhance -F output_width=11600      # 100 MP output
#   BUSY=1 WORKERS=2 bench/cancel_latency.sh /tmp/in.jpg enhance -F output_width=8000
set -euo pipefail
cd "$(dirname "$0")/.."
lucid=target/release/lucid
in=$1 endpoint=$2
shift 2
port=${PORT:-8093}
api=http://127.0.0.1:$port/image/v1
data=$(mktemp -d)
key=$($lucid keys create --name bench --data-dir "$data")
$lucid serve --addr 127.0.0.1:$port --data-dir "$data" --workers "${WORKERS:-1}" >"$data/log" 2>&1 &
server=$!
trap 'kill $server; wait $server 2>/dev/null; rm -rf "$data"' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
json() { python3 -c "import sys, json; d = json.load(sys.stdin); print($1)"; }
submit() { curl -sf -H "X-API-Key: $key" -F "image=@$1" "${@:3}" "$api/$2/async" | json 'd["process_id"]'; }
[ -n "${BUSY:-}" ] && submit "$in" denoise -F model=Normal >/dev/null
id=$(submit "$in" "$endpoint" "$@")
until curl -sf -H "X-API-Key: $key" "$api/status/$id" \
  | json 'd["status"] == "Processing" and d.get("progress", 0) >= 30' | grep -q True; do
  sleep 0.1
done
job_threads() { cat /proc/$server/task/*/comm 2>/dev/null | grep -c '^lucid-job' || true; }
before=$(job_threads)
start=$(date +%s.%N)
curl -sf -X DELETE -H "X-API-Key: $key" "$api/cancel/$id" >/dev/null
while [ "$(job_threads)" -ge "$before" ]; do sleep 0.02; done
python3 -c "print('job threads $before -> %s: stopped %.2f s after the cancel' % ($(job_threads), $(date +%s.%N) - $start))"
