#!/usr/bin/env bash
# bench/detect.sh: the surveillance-statistics benchmark (issue 7).
#
# Usage: bench/detect.sh [--runs R] [--r-runs RR] [--r-series N] [--series S] [--seed SEED] [--no-build]
#
# Farrington with the settings of Noufaily et al. 2013 (b = 5, w = 3, noPeriods = 10,
# pastWeeksNotIncluded = 26, weightsThreshold = 2.58, thresholdMethod = "nbPlugin") over S
# (default 10,000) weekly series, monitoring the last 52 weeks of each: S × 52 model fits.
# The series (bench/detect_series.py, seeded) are 315 weeks long: 6 years of 52 weeks and the
# w = 3 weeks before them that the first monitored week's oldest window (5 years back ± 3 weeks)
# needs (R stops on a series of 312 weeks monitored from week 261).
#   1. `chainbreak detect --method farrington` on all S series in one process, R runs (default 5;
#      the series spread over the cores by rayon); wall clock, CPU, peak RSS from GNU time -v;
#      read / compute / write split from --timings.
#   2. R (Rscript, surveillance::farringtonFlexible with the same control, bench/detect_r.R) on
#      the first N (default 100) of the same series, RR runs (default 1: it is slow); its
#      time is that of the farringtonFlexible calls only (R's start and reading excluded).
#   3. Agreement: chainbreak's expected, upperbound and alarm on those N series against R's.
# Writes bench/out/detect-<date>.md and .json and prints the markdown.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5; R_RUNS=1; R_SERIES=100; SERIES=10000; SEED=1; BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --r-runs) R_RUNS=$2; shift 2;;
    --r-series) R_SERIES=$2; shift 2;;
    --series) SERIES=$2; shift 2;;
    --seed) SEED=$2; shift 2;;
    --no-build) BUILD=0; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

TARGET=${CARGO_TARGET_DIR:-target}
CHAINBREAK=${CHAINBREAK:-$TARGET/release/chainbreak}
WEEKS=315; FROM=$((WEEKS - 51)); TO=$WEEKS
DATA=bench/data/detect
SERIES_FILE=$DATA/series-$SERIES-$WEEKS-$SEED.csv
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RAW=bench/out/detect-$STAMP
mkdir -p "$RAW" "$DATA"

if [[ $BUILD == 1 ]]; then cargo build --release -p chainbreak-cli >&2; fi
if [[ ! -s $SERIES_FILE ]]; then
  python3 bench/detect_series.py --series "$SERIES" --weeks "$WEEKS" --seed "$SEED" --out "$SERIES_FILE"
fi
head -n $((1 + WEEKS * R_SERIES)) "$SERIES_FILE" > "$RAW/r-series.csv"

{
  echo "date=$STAMP"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "cores=$(nproc)"
  echo "mem=$(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version)"
  echo "chainbreak=$("$CHAINBREAK" --version)"
  echo "R=$(Rscript -e 'cat(R.version.string)' 2>/dev/null)"
  echo "surveillance=$(Rscript -e 'cat(as.character(packageVersion("surveillance")))' 2>/dev/null)"
  echo "series=$SERIES weeks=$WEEKS seed=$SEED from=$FROM to=$TO r_series=$R_SERIES"
  echo "series_sha256=$(sha256sum "$SERIES_FILE" | cut -d' ' -f1)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RAW/env.txt"

NOUFAILY=(--method farrington --b 5 --w 3 --no-periods 10 --past-weeks-not-included 26 --weights-threshold 2.58
          --threshold-method nbPlugin --range "$FROM:$TO")
for i in $(seq 1 "$RUNS"); do
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)" > "$RAW/chainbreak-$i.load"
  /usr/bin/time -v -o "$RAW/chainbreak-$i.time" "$CHAINBREAK" detect "${NOUFAILY[@]}" --series "$SERIES_FILE" \
    --timings > "$RAW/chainbreak-out.csv" 2> "$RAW/chainbreak-$i.timings"
  echo "chainbreak run $i: $(cat "$RAW/chainbreak-$i.timings")" >&2
done
"$CHAINBREAK" detect "${NOUFAILY[@]}" --series "$RAW/r-series.csv" > "$RAW/chainbreak-r-series.csv"
for i in $(seq 1 "$R_RUNS"); do
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)" > "$RAW/r-$i.load"
  /usr/bin/time -v -o "$RAW/r-$i.time" Rscript bench/detect_r.R "$RAW/r-series.csv" "$R_SERIES" "$FROM" "$TO" \
    "$RAW/r-out.csv" > "$RAW/r-$i.stdout"
  echo "R run $i: $(cat "$RAW/r-$i.stdout")" >&2
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RAW/env.txt"
rm -f "$RAW/chainbreak-out.csv"

python3 bench/summarize_detect.py "$RAW" --md "bench/out/detect-$STAMP.md" --json "bench/out/detect-$STAMP.json"
cat "bench/out/detect-$STAMP.md"
