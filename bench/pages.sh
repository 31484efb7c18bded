#!/usr/bin/env bash
# The page benchmark (issue 9 item 4): every list page of the dashboard and the API, its first
# page and a deep keyset page, every sort order of the case list, as a district-scoped user, with
# 1,000,000 cases in the store while visits are ingested through the API; server-side p95 from
# the server's request log, client-side p95 from wrk on 127.0.0.1. Target: p95 <= 50 ms.
#
# Usage: bench/pages.sh [--cases N] [--persons N] [--runs R] [--seconds S] [--connections C]
#                       [--ingest-rate V] [--only TEXT] [--no-build]
#
# Input: a simulated city (`chainbreak simulate city --persons N --days 1`: its areas, units,
# places, persons, and a day of visits for the ingest) and N cases written by
# bench/pages_cases.py (seeded) over distinct persons of it; imported once into
# bench/data/pages-N/store.db (cases imported with their isolations: one episode each), copied
# afresh before each benchmark so that every run starts from the same store.
# Output: bench/out/pages-<UTC time>/{raw.json,report.md,report.json,server.log,...}.
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=1000000
PERSONS=2000000
RUNS=5
SECONDS_PER_RUN=3
CONNECTIONS=2
INGEST_RATE=1000
ONLY=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) CASES=$2; shift 2 ;;
        --persons) PERSONS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --ingest-rate) INGEST_RATE=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package) ..." >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk >/dev/null; fi
fi
[ "$BUILD" = 1 ] && cargo build --release --locked -p chainbreak-cli
BIN=$PWD/target/release/chainbreak

DATA=bench/data/pages-$CASES
CITY=$DATA/city
STORE=$DATA/store.db
# The cases' onsets end four days before the server's clock, so every report lies in the past.
END_DAY=2022-02-26
CLOCK=2022-03-02T08:00:00+08:00
mkdir -p "$DATA"
if [ ! -f "$CITY/persons.csv" ]; then
    "$BIN" simulate city --persons "$PERSONS" --days 1 --start 2022-03-01 --seed 1 --out "$CITY"
fi
if [ ! -f "$DATA/cases.csv" ]; then
    python3 bench/pages_cases.py --persons "$CITY/persons.csv" --out "$DATA/cases.csv" --cases "$CASES" \
        --days 120 --end "$END_DAY" --seed 1
fi
if [ ! -f "$STORE.done" ]; then
    rm -f "$STORE" "$STORE-wal" "$STORE-shm"
    "$BIN" init --db "$STORE" --tz Asia/Shanghai --profile cn-2022-9th
    for kind_file in areas:areas.geojson units:units.csv places:places.csv persons:persons.csv; do
        "$BIN" import "${kind_file%%:*}" "$CITY/${kind_file#*:}" --db "$STORE"
    done
    start=$(date +%s)
    "$BIN" --demo-clock "$CLOCK" import cases "$DATA/cases.csv" --db "$STORE" --no-zones
    echo "cases imported with their isolations in $(( $(date +%s) - start )) s" | tee "$DATA/cases-import.txt"
    printf 'district-epidemiologist\n' | "$BIN" user add bench --role epidemiologist --unit CDC --jurisdiction D01 \
        --db "$STORE" --password-stdin >/dev/null
    printf 'ingest-tracer-pass\n' | "$BIN" user add ingest --role tracer --unit CDC --jurisdiction CITY --db "$STORE" \
        --password-stdin >/dev/null
    touch "$STORE.done"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# The commit of the binary under test: read now (the tree may move while the benchmark runs).
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+dirty')"
OUT=bench/out/pages-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
RUN_DB=$OUT/store.db
cp "$STORE" "$RUN_DB"
TOKEN=$("$BIN" user token bench --db "$RUN_DB" --label bench | grep -oE 'cbt_[A-Za-z0-9_-]+')
INGEST_TOKEN=$("$BIN" user token ingest --db "$RUN_DB" --label ingest | grep -oE 'cbt_[A-Za-z0-9_-]+')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=chainbreak_server::http=info,warn "$BIN" --log-format json --demo-clock "$CLOCK" serve --db "$RUN_DB" \
    --addr "127.0.0.1:$PORT" 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
cpu_before=$(awk '{print $14+$15}' "/proc/$SERVER/stat")

python3 bench/pages.py --port "$PORT" --token "$TOKEN" --ingest-token "$INGEST_TOKEN" \
    --server-log "$OUT/server.log" --server-pid "$SERVER" --store "$RUN_DB" --area D01 \
    --visits-csv "$CITY/visits.csv" --runs "$RUNS" --seconds "$SECONDS_PER_RUN" --connections "$CONNECTIONS" \
    --ingest-rate "$INGEST_RATE" --only "$ONLY" --out "$OUT" | tee "$OUT/driver.log"

cpu_after=$(awk '{print $14+$15}' "/proc/$SERVER/stat")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
trap - EXIT
cat > "$OUT/env.json" <<EOF
{"commit": "$COMMIT",
 "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "cases": $CASES, "persons": $PERSONS,
 "server_cpu_seconds": $(( (cpu_after - cpu_before) / $(getconf CLK_TCK) )),
 "server_peak_rss_kb": $peak_kb,
 "wrk": "$(wrk -v 2>&1 | head -1 | tr -d '"')",
 "chainbreak": "$("$BIN" --version)",
 "sqlite_store_bytes": $(stat -c %s "$RUN_DB"),
 "cases_import": "$(cat "$DATA/cases-import.txt" 2>/dev/null || echo unknown)",
 "cpus": $(nproc), "load_before": "$LOAD_BEFORE"}
EOF
python3 bench/summarize_pages.py "$OUT"
rm -f "$RUN_DB" "$RUN_DB-wal" "$RUN_DB-shm"
echo "report: $OUT/report.md"
