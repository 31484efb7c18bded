#!/usr/bin/env bash
# The main job on the embedded default: build, load the sample district, serve it.
# Usage: scripts/serve-sample.sh [ADDR] (default 127.0.0.1:8080)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p chainbreak-cli
scripts/load-sample.sh target/sample.db
exec target/release/chainbreak serve --db target/sample.db --addr "${1:-127.0.0.1:8080}"
