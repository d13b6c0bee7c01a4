#!/usr/bin/env bash
# Mixed-traffic load test against a release build: see crates/lucid/examples/loadgen.rs.
# Usage: bench/load.sh [CLIENTS] [SECONDS]   (defaults 32 clients, 30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p lucid --bins --examples
exec target/release/examples/loadgen --lucid target/release/lucid \
    --clients "${1:-32}" --seconds "${2:-30}"
