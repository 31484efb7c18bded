#!/usr/bin/env bash
# bench/trace.sh: the trace benchmark, `chainbreak trace` beside the same query in DuckDB.
#
# Usage: bench/trace.sh [--sizes "100000 1000000"] [--with-5m] [--days 14] [--window-days 4]
#                       [--ks "1 10 100"] [--runs 5] [--seed 1] [--index-seed 1]
#                       [--min-overlap-seconds 900] [--systems "chainbreak duckdb"]
#                       [--profile NAME|PATH] [--cell-timeout SECONDS] [--no-build] [--keep-stores]
#
# For each city size: makes the input (GENERATOR, default bench/gen_visits.py) or reuses it after
# checking its SHA-256 against its manifest; takes the last --window-days days of the data as the
# window and K index persons by the seeded rule (bench/trace_prepare.py); builds a chainbreak
# store from the same files (untimed); then for each K runs, under /usr/bin/time -v,
#   chainbreak trace --db STORE --persons-file F --from W0 --to W1 --min-overlap 15m --depth 2
#                    --rule venue-overlap --format json --timings --repeat RUNS
#   bench/trace_duckdb.py ... --runs RUNS       (the SQL of bench/trace_venue_overlap.sql)
# and checks that the two agree on the hash of the sorted contact sets. Writes
# bench/out/trace-<UTC date-time>/report.md and report.json (and raw/) and prints the markdown.
# When the chainbreak binary has no `trace` command, says so and runs the DuckDB side alone.
#
# Environment: GENERATOR (a command taking --persons N --days D --seed S --out DIR and writing
# places.csv, persons.csv, visits.csv there; default "$PYTHON bench/gen_visits.py"),
# GENERATOR_TAG (names its data directory, default "custom" when GENERATOR is set),
# CHAINBREAK (binary, default target/release/chainbreak), PYTHON (with duckdb and numpy,
# default bench/.venv-trace/bin/python), BENCH_STORE_DIR (default bench/data/stores).
set -euo pipefail

SIZES="100000 1000000"
DAYS=14
WINDOW_DAYS=4
KS="1 10 100"
RUNS=5
SEED=1
INDEX_SEED=1
MIN_OVERLAP=900
SYSTEMS="chainbreak duckdb"
PROFILE=""
BUILD=1
KEEP_STORES=0
CELL_TIMEOUT=0

die() { echo "trace.sh: $*" >&2; exit 1; }
say() { echo "trace.sh: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES=${2:?}; shift 2 ;;
        --with-5m) SIZES="$SIZES 5000000"; shift ;;
        --days) DAYS=${2:?}; shift 2 ;;
        --window-days) WINDOW_DAYS=${2:?}; shift 2 ;;
        --ks) KS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --index-seed) INDEX_SEED=${2:?}; shift 2 ;;
        --min-overlap-seconds) MIN_OVERLAP=${2:?}; shift 2 ;;
        --systems) SYSTEMS=${2:?}; shift 2 ;;
        --profile) PROFILE=${2:?}; shift 2 ;;
        --cell-timeout) CELL_TIMEOUT=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep-stores) KEEP_STORES=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "trace.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
for v in $SIZES $KS "$CELL_TIMEOUT" "$DAYS" "$WINDOW_DAYS" "$RUNS" "$SEED" "$INDEX_SEED" "$MIN_OVERLAP"; do
    case "$v" in ''|*[!0-9]*) die "sizes, K, days, runs, seeds and the overlap take non-negative integers ('$v')" ;; esac
done
[ "$RUNS" -ge 1 ] || die "--runs must be at least 1"
[ "$WINDOW_DAYS" -ge 1 ] && [ "$WINDOW_DAYS" -le "$DAYS" ] || die "--window-days must be 1..--days"
for s in $SYSTEMS; do
    case "$s" in chainbreak|duckdb) ;; *) die "--systems: unknown system '$s' (chainbreak, duckdb)" ;; esac
done
has() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH=$ROOT/bench
PYTHON=${PYTHON:-$BENCH/.venv-trace/bin/python}
CHAINBREAK=${CHAINBREAK:-$ROOT/target/release/chainbreak}
STORE_DIR=${BENCH_STORE_DIR:-$BENCH/data/stores}
PROFILE=${PROFILE:-cn-2022-9th}
FIXTURE=$BENCH/testdata/trace/open_visits.toml
if [ -n "${GENERATOR:-}" ]; then
    DATA_TAG="${GENERATOR_TAG:-custom}-"
else
    GENERATOR="$PYTHON $BENCH/gen_visits.py"
    DATA_TAG=""        # the same directories as bench/import.sh
fi
if [ "$MIN_OVERLAP" -gt 0 ] && [ $((MIN_OVERLAP % 60)) = 0 ]; then
    CB_MIN_OVERLAP="$((MIN_OVERLAP / 60))m"
else
    CB_MIN_OVERLAP="${MIN_OVERLAP}s"
fi

# ---------------------------------------------------------------- tools
[ -x "$PYTHON" ] || die "no Python at $PYTHON: python3 -m venv bench/.venv-trace && bench/.venv-trace/bin/pip install -r bench/requirements-trace.txt (or set PYTHON)"
"$PYTHON" -c 'import duckdb, numpy' 2>/dev/null || die "$PYTHON lacks duckdb or numpy: $PYTHON -m pip install -r bench/requirements-trace.txt"
if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing GNU time (/usr/bin/time)"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2
    fi
    [ -x /usr/bin/time ] || die "GNU time is needed at /usr/bin/time (Debian: apt-get install time)"
fi

CB_OK=0
CB_NOTE="not run (--systems)"
if has chainbreak; then
    if [ "$BUILD" = 1 ]; then
        say "cargo build --release -p chainbreak-cli"
        cargo build --release -p chainbreak-cli >&2
    fi
    if [ ! -x "$CHAINBREAK" ]; then
        CB_NOTE="NOT RUN: no chainbreak binary at $CHAINBREAK (build it, or set CHAINBREAK)"
    elif ! "$CHAINBREAK" trace --help >/dev/null 2>&1; then
        CB_NOTE="NOT RUN: $CHAINBREAK ($("$CHAINBREAK" --version 2>&1 | head -1)) has no \`trace\` command yet"
    else
        CB_OK=1
        CB_NOTE="$CHAINBREAK trace ... --min-overlap $CB_MIN_OVERLAP --depth 2 --rule venue-overlap --format json --timings --repeat $RUNS"
    fi
    if [ "$CB_OK" = 0 ]; then
        say "*****************************************************************************"
        say "chainbreak: $CB_NOTE"
        say "running the DuckDB side only."
        say "*****************************************************************************"
    fi
fi

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
RUN=$BENCH/out/trace-$STAMP
mkdir -p "$RUN/env" "$RUN/raw"
say "output in $RUN"

# ---------------------------------------------------------------- profile
# Both systems must fill open visits from the same [open_visits] table. chainbreak's store is
# made with `init --profile PROFILE`; the DuckDB side reads the profile as chainbreak prints it
# (`chainbreak profile show PROFILE`), so a built-in name resolves to what the binary holds. Without
# a usable chainbreak, PROFILE is a path, or the name of a file in profiles/. A profile without
# [open_visits] gets the fixture's section appended to a copy (and the report says so).
PROFILE_NOTE=$PROFILE
if [ "$CB_OK" = 1 ]; then
    "$CHAINBREAK" profile show "$PROFILE" > "$RUN/profile.toml" 2>"$RUN/profile.log" \
        || { cat "$RUN/profile.log" >&2; die "chainbreak profile show $PROFILE failed"; }
    PROFILE_NOTE="$PROFILE as \`chainbreak profile show\` prints it"
else
    if [ -f "$PROFILE" ]; then cp "$PROFILE" "$RUN/profile.toml"
    elif [ -f "$ROOT/profiles/$PROFILE.toml" ]; then cp "$ROOT/profiles/$PROFILE.toml" "$RUN/profile.toml"
    else die "no profile '$PROFILE' (a path, or a name in profiles/)"; fi
    PROFILE_NOTE="$PROFILE (file)"
fi
if ! "$PYTHON" -c 'import sys, tomllib; sys.exit(0 if "open_visits" in tomllib.load(open(sys.argv[1], "rb")) else 1)' "$RUN/profile.toml"; then
    say "WARNING: profile $PROFILE has no [open_visits] section: appending ${FIXTURE#"$ROOT"/} to a copy"
    cat "$FIXTURE" >> "$RUN/profile.toml"
    PROFILE_NOTE="$PROFILE_NOTE, **without [open_visits]: ${FIXTURE#"$ROOT"/} appended**"
fi
DUCKDB_PROFILE=$RUN/profile.toml

# ---------------------------------------------------------------- environment
envrec() { printf '%s\n' "$2" > "$RUN/env/$1"; }
envrec date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
envrec git_commit "$(git rev-parse HEAD 2>/dev/null || echo 'none')"
envrec git_dirty "$(if [ -n "$(git status --porcelain 2>/dev/null)" ]; then echo yes; else echo no; fi)"
envrec chainbreak_trace "$CB_NOTE"
envrec chainbreak_binary "$CHAINBREAK"
if [ -x "$CHAINBREAK" ]; then envrec chainbreak_version "$("$CHAINBREAK" --version 2>&1 | head -1)"
else envrec chainbreak_version "none (no binary)"; fi
envrec chainbreak_sha256 "$(sha256sum "$CHAINBREAK" 2>/dev/null | cut -d' ' -f1)"
envrec duckdb_version "$("$PYTHON" -c 'import duckdb; print(duckdb.__version__)')"
envrec duckdb_threads 2
envrec python_numpy "$("$PYTHON" -c 'import sys, numpy; print(sys.version.split()[0], numpy.__version__)')"
envrec profile "$PROFILE_NOTE"
envrec profile_sha256 "$(sha256sum "$DUCKDB_PROFILE" | cut -d' ' -f1) (profile.toml, as the DuckDB side read it)"
envrec sql_sha256 "$(sha256sum "$BENCH/trace_venue_overlap.sql" | cut -d' ' -f1)"
envrec generator "$GENERATOR"
envrec index_seed "$INDEX_SEED"
envrec min_overlap_seconds "$MIN_OVERLAP"
envrec window_days "$WINDOW_DAYS"
envrec runs "$RUNS"
envrec cell_timeout "$CELL_TIMEOUT"
envrec args "sizes=$SIZES days=$DAYS window_days=$WINDOW_DAYS ks=$KS runs=$RUNS seed=$SEED index_seed=$INDEX_SEED min_overlap=$MIN_OVERLAP systems=$SYSTEMS"
envrec cpu "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
envrec memory "$(free -h | awk '/^Mem:/ {print $2}')"
# shellcheck disable=SC1091
envrec kernel_os "$(uname -srmo), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
envrec cache "warm: the input files are read once (cat > /dev/null) before each size's runs; each process loads its tables or index once and runs the query --runs times"
envrec load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

now() { echo "$EPOCHREALTIME"; }
elapsed() { "$PYTHON" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }
rm_store() { rm -f "$1" "$1-wal" "$1-shm" "$1-journal"; }
jget() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# Input of one size: generated once, checked against its manifest's SHA-256 every time.
make_input() {
    local n=$1 data=$2
    if [ ! -f "$data/manifest.json" ] || [ ! -f "$data/visits.csv" ]; then
        say "generating $data ($GENERATOR)"
        rm -rf "$data.tmp"
        # shellcheck disable=SC2086  # GENERATOR is a command line
        $GENERATOR --persons "$n" --days "$DAYS" --seed "$SEED" --out "$data.tmp" >&2
        if [ ! -f "$data.tmp/manifest.json" ]; then
            "$PYTHON" - "$data.tmp" "$GENERATOR" <<'EOF'
import hashlib, json, os, sys
d, gen = sys.argv[1], sys.argv[2]
files = {}
for name in ("places.csv", "persons.csv", "visits.csv"):
    h, rows, size = hashlib.sha256(), 0, 0
    with open(os.path.join(d, name), "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block); rows += block.count(b"\n"); size += len(block)
    files[name] = {"rows": rows - 1, "bytes": size, "sha256": h.hexdigest()}
json.dump({"generator": gen, "files": files}, open(os.path.join(d, "manifest.json"), "w"), indent=1)
EOF
        fi
        rm -rf "$data"
        mv "$data.tmp" "$data"
    fi
    say "checking $data against its manifest (sha256)"
    "$PYTHON" - "$data" <<'EOF' || die "input files differ from their manifest: delete $data and run again"
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
for name in ("places.csv", "visits.csv"):
    f = m["files"][name]
    h = hashlib.sha256()
    with open(os.path.join(d, name), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    if h.hexdigest() != f["sha256"]:
        sys.exit(f"{name}: sha256 {h.hexdigest()} != {f['sha256']}")
EOF
}

# The chainbreak store of one size (untimed): init, places, persons, visits.
make_store() {
    local data=$1 db=$2 out=$3 t0 t1
    rm_store "$db"
    say "building the chainbreak store $db (untimed)"
    t0=$(now)
    {
        "$CHAINBREAK" init --db "$db" --tz Asia/Shanghai --profile "$PROFILE" &&
        # A simulator city has areas (places name them); gen_visits.py's has none.
        { [ ! -e "$data/areas.geojson" ] || "$CHAINBREAK" import areas "$data/areas.geojson" --db "$db"; } &&
        "$CHAINBREAK" import places "$data/places.csv" --db "$db" &&
        "$CHAINBREAK" import persons "$data/persons.csv" --db "$db" &&
        "$CHAINBREAK" import visits "$data/visits.csv" --db "$db"
    } >"$out.log" 2>&1 || { tail -n 20 "$out.log" >&2; return 1; }
    t1=$(now)
    printf '{"setup_seconds": %s, "bytes": %s}\n' "$(elapsed "$t0" "$t1")" "$(stat -c %s "$db")" > "$out"
}

printf 'size\tk\tsystem\tnth\tstatus\tprefix\n' > "$RUN/cells.tsv"
nth=0
cell=0
run_system() {
    local system=$1 n=$2 k=$3 data=$4 sd=$5 db=$6 w0 w1 prefix rc status
    w0=$(jget "$sd/window.json" w0)
    w1=$(jget "$sd/window.json" w1)
    prefix=$system-$n-$k
    nth=$((nth + 1))
    local limit=()
    if [ "$CELL_TIMEOUT" -gt 0 ]; then limit=(timeout -k 10 "$CELL_TIMEOUT"); fi
    say "$n persons, K=$k: $system ($RUNS runs) ..."
    set +e
    if [ "$system" = duckdb ]; then
        /usr/bin/time -v -o "$RUN/raw/$prefix.time" "${limit[@]}" "$PYTHON" "$BENCH/trace_duckdb.py" \
            --visits "$data/visits.csv" --places "$data/places.csv" --persons-file "$sd/index-$k.txt" \
            --from "$w0" --to "$w1" --min-overlap-seconds "$MIN_OVERLAP" --profile "$DUCKDB_PROFILE" \
            --runs "$RUNS" --threads 2 --contacts-out "$RUN/raw/$prefix.contacts" \
            --temp-dir "$RUN/duckdb-tmp" >"$RUN/raw/$prefix.json" 2>"$RUN/raw/$prefix.stderr"
        rc=$?
        rm -rf "$RUN/duckdb-tmp"  # what DuckDB spilled, left behind when the time limit stopped it
    else
        # The JSON lists every contact with its evidence (gigabytes at city scale): digested as
        # it streams (hash, tiers, contacts re-hashed; the first 64 KiB kept), not stored.
        /usr/bin/time -v -o "$RUN/raw/$prefix.time" "${limit[@]}" "$CHAINBREAK" trace --db "$db" \
            --persons-file "$sd/index-$k.txt" --from "$w0" --to "$w1" --min-overlap "$CB_MIN_OVERLAP" \
            --depth 2 --rule venue-overlap --format json --timings --repeat "$RUNS" \
            2>"$RUN/raw/$prefix.stderr" \
            | "$PYTHON" "$BENCH/trace_digest.py" --head "$RUN/raw/$prefix.stdout.head" >"$RUN/raw/$prefix.digest.json"
        rc=${PIPESTATUS[0]}
    fi
    set -e
    status=ok
    if [ "$rc" = 124 ] && [ "$CELL_TIMEOUT" -gt 0 ]; then
        status="timed out (> $CELL_TIMEOUT s)"
        say "$system did not finish within --cell-timeout $CELL_TIMEOUT s"
    elif [ "$rc" != 0 ]; then
        status="failed (exit $rc)"
        say "$system failed with exit code $rc; last lines of its stderr:"
        tail -n 15 "$RUN/raw/$prefix.stderr" >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$k" "$system" "$nth" "$status" "$prefix" >> "$RUN/cells.tsv"
}

for n in $SIZES; do
    data=$BENCH/data/$DATA_TAG$n-$DAYS-$SEED
    sd=$RUN/size-$n
    mkdir -p "$sd"
    make_input "$n" "$data"
    cp "$data/manifest.json" "$sd/manifest.json"
    say "$n persons: window and index persons (bench/trace_prepare.py)"
    "$PYTHON" "$BENCH/trace_prepare.py" --data "$data" --profile "$DUCKDB_PROFILE" --window-days "$WINDOW_DAYS" \
        --seed "$INDEX_SEED" --ks "$KS" --out "$sd" >/dev/null
    db=$STORE_DIR/trace-$n.db
    cb_here=$CB_OK
    if [ "$CB_OK" = 1 ]; then
        mkdir -p "$STORE_DIR"
        if ! make_store "$data" "$db" "$sd/store.json"; then
            say "building the chainbreak store failed (log: $sd/store.json.log): chainbreak not run at $n persons"
            cb_here=0
        fi
    fi
    cat "$data/places.csv" "$data/visits.csv" > /dev/null     # warm page cache
    for k in $KS; do
        cell=$((cell + 1))
        order=""
        for s in $SYSTEMS; do
            if [ "$s" = chainbreak ] && [ "$cb_here" = 0 ]; then
                nth=$((nth + 1))
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$k" chainbreak "$nth" "not run" "chainbreak-$n-$k" >> "$RUN/cells.tsv"
                continue
            fi
            order="$order $s"
        done
        # alternate which system goes first, so drift falls on both
        if [ $((cell % 2)) = 0 ]; then order=$(printf '%s\n' $order | tac | tr '\n' ' '); fi
        for s in $order; do
            run_system "$s" "$n" "$k" "$data" "$sd" "$db"
        done
        a=$(jget "$RUN/raw/duckdb-$n-$k.json" hash 2>/dev/null || true)
        b=$(jget "$RUN/raw/chainbreak-$n-$k.digest.json" hash 2>/dev/null || true)
        if [ -n "$a" ] && [ -n "$b" ]; then
            if [ "$a" = "$(echo "$b" | tr 'A-F' 'a-f')" ]; then say "$n persons, K=$k: hashes agree ($a)"
            else say "$n persons, K=$k: HASHES DIFFER: duckdb $a, chainbreak $b"; fi
        fi
    done
    if [ "$KEEP_STORES" = 0 ]; then rm_store "$db"; fi
done
envrec load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

set +e
"$PYTHON" "$BENCH/summarize_trace.py" "$RUN"
rc=$?
set -e
cat "$RUN/report.md"
say "report: $RUN/report.md, $RUN/report.json"
[ "$rc" = 0 ] || die "FAILED: the systems' hashes differ (see the report)"
