#!/usr/bin/env bash
# The goods benchmark (issue 10): downstream traces of positive batches through a seeded
# synthetic cold chain (crates/goods/examples/goods_bench.rs), by size of what they reach.
#
#   bench/goods.sh [--batches N] [--hops N] [--traces N] [--runs N] [--seed N]
#
# Builds the example in release, runs it once under /usr/bin/time -v (peak memory), and writes
# the JSON result and the time report to bench/out/goods-<date>.{json,time}.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
stamp=$(date -u +%Y%m%dT%H%M%SZ)
cargo build --release --locked -p chainbreak-goods --example goods_bench
echo "commit $(git rev-parse --short HEAD), $(date -u), load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "bench/out/goods-$stamp.time"
/usr/bin/time -v target/release/examples/goods_bench "$@" > "bench/out/goods-$stamp.json" 2>> "bench/out/goods-$stamp.time"
cat "bench/out/goods-$stamp.json"
grep -E "Maximum resident set size|Elapsed \(wall clock\)|User time|System time" "bench/out/goods-$stamp.time"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
