#!/usr/bin/env bash
# bench/closedloop.sh: the closed-loop benchmark (issue 6): durable episode transitions per
# second and the time a restart takes to rebuild the episodes, chainbreak beside a hand-written
# Python sqlite3 baseline storing the same facts (bench/closedloop_sqlite.py), same batches,
# same run, alternating which goes first.
#
# Usage: bench/closedloop.sh [--runs 5] [--episodes 100000] [--batch 1000] [--no-build]
#                            [--drill "PERSONS DAYS"]
#
# With --drill, also runs the closed loop over a simulated outbreak once
# (crates/app/examples/closedloop_drill.rs, seed 1): its report, with `time -v`, goes beside
# the others (the fault run; it must end with nobody open and none without a deadline).
#
# chainbreak: crates/app/examples/closedloop_bench.rs through chainbreak_app::episodes (every
# transition checked by the engine and written with its episode state and an audit record, one
# committed batch of BATCH transitions at a time). Each run starts from an empty store file.
# Prints the markdown report; raw JSON and `time -v` outputs go to bench/out/closedloop-<date>/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5; N=100000; BATCH=1000; BUILD=1; DRILL=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --episodes) N=$2; shift 2;;
    --batch) BATCH=$2; shift 2;;
    --no-build) BUILD=0; shift;;
    --drill) DRILL=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
if [[ $BUILD == 1 ]]; then
  cargo build --release -p chainbreak-app --example closedloop_bench --example closedloop_drill >&2
fi
BIN=target/release/examples/closedloop_bench
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RAW=bench/out/closedloop-$STAMP
SCRATCH=${BENCH_CLOSEDLOOP_DIR:-bench/data/closedloop}
mkdir -p "$RAW" "$SCRATCH"
{
  echo "date=$STAMP"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "cores=$(nproc)"
  echo "rustc=$(rustc --version)"
  echo "python=$(python3 --version 2>&1)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/env.txt"

cb() { /usr/bin/time -v -o "$RAW/chainbreak-$1.time" "$BIN" "$SCRATCH/cb.db" "$N" "$BATCH" > "$RAW/chainbreak-$1.json"; }
py() { /usr/bin/time -v -o "$RAW/sqlite-$1.time" python3 bench/closedloop_sqlite.py "$SCRATCH/py.db" "$N" "$BATCH" > "$RAW/sqlite-$1.json"; }
for i in $(seq 1 "$RUNS"); do
  if (( i % 2 )); then cb "$i"; py "$i"; else py "$i"; cb "$i"; fi
  echo "run $i done" >&2
done
if [[ -n $DRILL ]]; then
  read -r DP DD <<< "$DRILL"
  /usr/bin/time -v -o "$RAW/drill.time" target/release/examples/closedloop_drill "$SCRATCH/drill.db" "$DP" "$DD" 1 \
    > "$RAW/drill.json"
  echo "drill: $(cat "$RAW/drill.json")" >&2
fi
rm -f "$SCRATCH"/cb.db* "$SCRATCH"/py.db* "$SCRATCH"/drill.db*
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/env.txt"

python3 - "$RAW" "$RUNS" <<'PY' | tee "bench/out/closedloop-$STAMP.md"
import json, re, statistics, sys
raw, runs = sys.argv[1], int(sys.argv[2])
def load(system):
    out = []
    for i in range(1, runs + 1):
        report = json.load(open(f"{raw}/{system}-{i}.json"))
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{raw}/{system}-{i}.time").read()).group(1))
        cpu = re.search(r"Percent of CPU this job got: (\d+)%", open(f"{raw}/{system}-{i}.time").read()).group(1)
        out.append((report, rss, cpu))
    return out
env = dict(line.strip().split("=", 1) for line in open(f"{raw}/env.txt"))
cb, py = load("chainbreak"), load("sqlite")
med = lambda xs: statistics.median(xs)
print(f"commit {env['commit']}, {env['date']}, {env['cores']} cores ({env['cpu']}), load {env['load_before']} before, {env['load_after']} after; {env['rustc']}; {py[0][0]['python']} sqlite {py[0][0]['sqlite']}")
print()
print(f"{cb[0][0]['episodes']:,} episodes, batches of {cb[0][0]['batch']}, {runs} runs (median; warm page cache, fresh files):")
print()
print("| measure | chainbreak | Python sqlite3 (no rules) | ratio |")
print("|---|--:|--:|--:|")
for label, key in [("events/s, all", None), ("events/s, open + confirm", "open_and_confirm"), ("events/s, notify", "notify"), ("events/s, start", "start")]:
    def rate(runs):
        if key is None:
            return med([r[0]["events_per_second"] for r in runs])
        return med([next(p for p in r[0]["phases"] if p["phase"] == key)["events_per_second"] for r in runs])
    a, b = rate(cb), rate(py)
    print(f"| {label} | {a:,.0f} | {b:,.0f} | {a / b:.2f}× |")
a, b = med([r[0]["restart"]["seconds"] for r in cb]), med([r[0]["restart"]["seconds"] for r in py])
print(f"| restart: rebuild {cb[0][0]['episodes']:,} episodes (s) | {a:.2f} | {b:.2f} (read the events only) | {b / a:.2f}× |")
print(f"| peak RSS (MiB) | {med([r[1] for r in cb]) / 1024:.0f} | {med([r[1] for r in py]) / 1024:.0f} | |")
print(f"| CPU | {med([int(r[2]) for r in cb])}% | {med([int(r[2]) for r in py])}% | |")
import os
if os.path.exists(f"{raw}/drill.json"):
    d = json.load(open(f"{raw}/drill.json"))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{raw}/drill.time").read()).group(1))
    print()
    print(f"Drill over a simulated outbreak ({d['persons']:,} persons × {d['days']} days, then {d['extra_days']} days to finish): "
          f"{d['cases']:,} reported cases, {d['episodes']:,} episodes, {d['events']:,} events, {d['restarts']} restarts, "
          f"{d['seconds']:.1f} s, peak RSS {rss / 1024:.0f} MiB; outcomes {d['outcomes']}; "
          f"open without a deadline {d['open_without_deadline']}, left open {d['left_open']}.")
PY
