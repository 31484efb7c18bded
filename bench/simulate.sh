#!/usr/bin/env bash
# bench/simulate.sh: the simulator benchmark (issue 4).
#
# Usage: bench/simulate.sh [--runs R] [--seed S] [--no-build] [--no-covasim]
#                          [--city "PERSONS DAYS"] [--outbreak "PERSONS DAYS"]
#
# Times, R runs each (median, min, max; peak RSS from GNU time -v):
#   1. chainbreak simulate city     --persons 1000000 --days 14  (all files written)
#   2. chainbreak simulate outbreak --persons 1000000 --days 90  (visits of the last 14 days)
#   3. Covasim (PyPI covasim, default parameters) beside chainbreak simulate outbreak on
#      100,000 and 1,000,000 agents × 60 days, per agent-day, chainbreak both with its
#      default files and with --visit-days 0 (no visits written) (skipped with --no-covasim, or
#      when covasim cannot be installed into bench/.venv).
# The split generate / format / write and the bytes written come from the command's --json
# report. Output goes to a scratch directory (BENCH_SIM_DIR, default bench/data/sim) that is
# deleted between runs. Writes bench/out/simulate-<date>.md and .json and prints the markdown.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5; SEED=1; BUILD=1; COVASIM=1
CITY="1000000 14"; OUTBREAK="1000000 90"; COMPARE_DAYS=60; COMPARE_AGENTS="100000 1000000"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --seed) SEED=$2; shift 2;;
    --no-build) BUILD=0; shift;;
    --no-covasim) COVASIM=0; shift;;
    --city) CITY=$2; shift 2;;
    --outbreak) OUTBREAK=$2; shift 2;;
    --compare-agents) COMPARE_AGENTS=$2; shift 2;;
    --compare-days) COMPARE_DAYS=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

CHAINBREAK=${CHAINBREAK:-target/release/chainbreak}
SCRATCH=${BENCH_SIM_DIR:-bench/data/sim}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RAW=bench/out/simulate-$STAMP
mkdir -p "$RAW" "$SCRATCH"

if [[ $BUILD == 1 ]]; then cargo build --release -p chainbreak-cli >&2; fi

{
  echo "date=$STAMP"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "cores=$(nproc)"
  echo "mem=$(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version)"
  echo "disk=$(df -h "$SCRATCH" | awk 'NR==2 {print $1 " " $2}')"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/env.txt"

# run NAME ARGS...: one timed run, JSON report to $RAW/NAME.json, time -v to $RAW/NAME.time
run() {
  local name=$1; shift
  rm -rf "$SCRATCH/out"
  /usr/bin/time -v -o "$RAW/$name.time" "$CHAINBREAK" simulate "$@" --out "$SCRATCH/out" --json > "$RAW/$name.json"
  du -sb "$SCRATCH/out" | cut -f1 > "$RAW/$name.du"
  echo "$name: $(grep -m1 '"seconds"' "$RAW/$name.json")" >&2
}

read -r CP CD <<< "$CITY"
read -r OP OD <<< "$OUTBREAK"
for i in $(seq 1 "$RUNS"); do
  run "city-$i" city --persons "$CP" --days "$CD" --seed "$SEED"
  run "outbreak-$i" outbreak --persons "$OP" --days "$OD" --seed "$SEED"
done

if [[ $COVASIM == 1 ]]; then
  VENV=bench/.venv
  if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q covasim >&2 || echo "covasim could not be installed" >&2
  fi
  if "$VENV/bin/python" -c 'import covasim' 2>/dev/null; then
    "$VENV/bin/python" -c 'import covasim; print(covasim.__version__)' > "$RAW/covasim.version"
    for n in $COMPARE_AGENTS; do
      for i in $(seq 1 "$RUNS"); do
        # Alternate which goes first. chainbreak runs twice: with its default files (visits of
        # the last 14 days written) and writing no visits (--visit-days 0: presence at places
        # still simulated every day; Covasim writes nothing).
        if (( i % 2 )); then
          run "compare-chainbreak-$n-$i" outbreak --persons "$n" --days "$COMPARE_DAYS" --seed "$i"
          run "compare-novisits-$n-$i" outbreak --persons "$n" --days "$COMPARE_DAYS" --seed "$i" --visit-days 0
          /usr/bin/time -v -o "$RAW/compare-covasim-$n-$i.time" "$VENV/bin/python" bench/covasim_run.py \
            --agents "$n" --days "$COMPARE_DAYS" --seed "$i" > "$RAW/compare-covasim-$n-$i.json"
        else
          /usr/bin/time -v -o "$RAW/compare-covasim-$n-$i.time" "$VENV/bin/python" bench/covasim_run.py \
            --agents "$n" --days "$COMPARE_DAYS" --seed "$i" > "$RAW/compare-covasim-$n-$i.json"
          run "compare-novisits-$n-$i" outbreak --persons "$n" --days "$COMPARE_DAYS" --seed "$i" --visit-days 0
          run "compare-chainbreak-$n-$i" outbreak --persons "$n" --days "$COMPARE_DAYS" --seed "$i"
        fi
      done
    done
  fi
fi
rm -rf "$SCRATCH/out"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/env.txt"

python3 bench/summarize_simulate.py "$RAW" --md "bench/out/simulate-$STAMP.md" --json "bench/out/simulate-$STAMP.json"
cat "bench/out/simulate-$STAMP.md"
