#!/usr/bin/env bash
# The main job on the embedded default: build, load the sample district, serve it.
# Usage: scripts/serve-sample.sh [ADDR] (default 127.0.0.1:8080)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p chainbreak-cli
scripts/load-sample.sh target/sample.db
# The sample is two weeks of March 2022: the server runs on a demo clock starting the morning
# after, so that the retention purge (28 days) keeps it and "now" means what it meant then.
exec target/release/chainbreak --demo-clock 2022-03-15T08:00:00+08:00 serve --db target/sample.db \
    --addr "${1:-127.0.0.1:8080}"
