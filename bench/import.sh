#!/usr/bin/env bash
# bench/import.sh: the visits import benchmark, chainbreak beside the sqlite3 shell.
#
# Usage: bench/import.sh [--persons N] [--days D] [--runs R] [--seed S]
#                        [--systems "chainbreak sqlite3"] [--no-build] [--keep-stores]
#
# Times `chainbreak import visits visits.csv` into a fresh store (init + places + persons
# already imported, untimed), and the same work done by one sqlite3 shell invocation
# (.import into a staging table, INSERT ... SELECT mapping string ids to keys, production
# indexes rebuilt, WAL checkpointed) into a store made by the same chainbreak commands.
# Runs alternate between the systems; the report gives the median, min and max of R runs.
# Writes bench/out/import-<date>.md and .json (plus the raw logs in bench/out/import-<date>/)
# and prints the markdown. See bench/README.md.
#
# Environment: CHAINBREAK (binary, default target/release/chainbreak), SQLITE3 (shell,
# default sqlite3 on PATH), SQLITE_PRAGMAS (the shell's connection settings), BENCH_STORE_DIR
# (where stores are made, default bench/data/stores).
set -euo pipefail

# ---------------------------------------------------------------------------------------
# chainbreak's schema as this benchmark knows it: adjust here when it changes.
VISITS_TABLE=visits
V_PERSON=person          # visits: person key (INTEGER, persons.key)
V_PLACE=place            # visits: place key (INTEGER, places.key)
V_T_IN=t_in              # visits: check-in, Unix seconds
V_T_OUT=t_out            # visits: check-out, Unix seconds or NULL
V_SOURCE=source          # visits: VisitSource code
SOURCE_VALUE=0           # VisitSource::VenueCode.code()
PERSONS_TABLE=persons; PERSONS_KEY=key; PERSONS_ID=id
PLACES_TABLE=places;   PLACES_KEY=key;  PLACES_ID=id
INIT_ARGS=(--tz Asia/Shanghai --profile cn-2022-9th)
# Connection settings for the sqlite3 shell run: the same as chainbreak's bulk import
# connection (journal_mode is stored in the database by `chainbreak init`; the others last for
# one connection). Override with the SQLITE_PRAGMAS environment variable. The PRAGMA lines
# found in crates/store-sqlite are recorded in the report to compare against.
# Measured with the sqlite3 3.40 shell on 5.5M visits: temp_store=MEMORY or a large
# cache_size make CREATE INDEX 2-4x slower (the sorter keeps one huge in-memory list);
# the shell's defaults (2 MB cache, temp files) are its fastest here.
# chainbreak's index rebuild uses cache_size=-8192 and threads=2; the shell gets the same.
SQLITE_PRAGMAS=${SQLITE_PRAGMAS:-"PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
PRAGMA foreign_keys=OFF;
PRAGMA cache_size=-8192;
PRAGMA threads=2;"}
# Where the sqlite3 shell's staging table lives: temp (the temp database: a temporary file, or
# memory with temp_store=MEMORY) or main (written through the WAL, then dropped).
STAGING_SCHEMA=temp
# ---------------------------------------------------------------------------------------

PERSONS=1000000
DAYS=14
RUNS=5
SEED=1
SYSTEMS="chainbreak sqlite3"
BUILD=1
KEEP_STORES=0

die() { echo "import.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --persons) PERSONS=${2:?}; shift 2 ;;
        --days) DAYS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        --systems) SYSTEMS=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep-stores) KEEP_STORES=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "import.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
for v in "$PERSONS" "$DAYS" "$RUNS" "$SEED"; do
    case "$v" in ''|*[!0-9]*) die "--persons, --days, --runs and --seed take non-negative integers" ;; esac
done
[ "$RUNS" -ge 1 ] || die "--runs must be at least 1"
for s in $SYSTEMS; do
    case "$s" in chainbreak|sqlite3) ;; *) die "--systems: unknown system '$s' (chainbreak, sqlite3)" ;; esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BENCH=$ROOT/bench
CHAINBREAK=${CHAINBREAK:-$ROOT/target/release/chainbreak}
SQLITE3=${SQLITE3:-$(command -v sqlite3 || true)}
STORE_DIR=${BENCH_STORE_DIR:-$BENCH/data/stores}

# ---------------------------------------------------------------- tools
{ [ -n "$SQLITE3" ] && [ -x "$SQLITE3" ]; } || die "the sqlite3 shell is needed (Debian: apt-get install sqlite3)"
command -v python3 >/dev/null || die "python3 is needed"
if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "import.sh: installing GNU time (/usr/bin/time)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2
    fi
    [ -x /usr/bin/time ] || die "GNU time is needed at /usr/bin/time (Debian: apt-get install time)"
fi

if [ "$BUILD" = 1 ]; then
    echo "import.sh: cargo build --release -p chainbreak-cli" >&2
    cargo build --release -p chainbreak-cli >&2
fi
[ -x "$CHAINBREAK" ] || die "no chainbreak binary at $CHAINBREAK (build it, or set CHAINBREAK)"

# ---------------------------------------------------------------- input
DATA=$BENCH/data/$PERSONS-$DAYS-$SEED
if [ ! -f "$DATA/manifest.json" ]; then
    echo "import.sh: generating $DATA" >&2
    python3 -c 'import numpy' 2>/dev/null || die "numpy is needed: pip install -r bench/requirements.txt"
    rm -rf "$DATA.tmp"
    python3 "$BENCH/gen_visits.py" --persons "$PERSONS" --days "$DAYS" --seed "$SEED" --out "$DATA.tmp" >&2
    rm -rf "$DATA"
    mv "$DATA.tmp" "$DATA"
fi
VISITS=$DATA/visits.csv
manifest() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"m": m}))' "$DATA/manifest.json" "$1"; }
ROWS=$(manifest 'm["files"]["visits.csv"]["rows"]')
for f in places persons visits; do
    want=$(manifest "m['files']['$f.csv']['bytes']")
    have=$(stat -c %s "$DATA/$f.csv")
    [ "$want" = "$have" ] || die "$DATA/$f.csv has $have bytes, its manifest says $want: delete $DATA and run again"
done

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=$BENCH/out
RAW=$OUT/import-$STAMP
mkdir -p "$RAW/env" "$STORE_DIR"
cp "$DATA/manifest.json" "$RAW/manifest.json"
echo "import.sh: input $DATA ($ROWS visits); raw logs in $RAW" >&2

echo "import.sh: checking input files against their manifest (sha256)" >&2
python3 - "$DATA" <<'EOF' || die "input files differ from their manifest: delete the data directory and run again"
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
for name, f in m["files"].items():
    h = hashlib.sha256()
    with open(os.path.join(d, name), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    if h.hexdigest() != f["sha256"]:
        sys.exit(f"{name}: sha256 {h.hexdigest()} != {f['sha256']}")
EOF

# ---------------------------------------------------------------- environment
envrec() { printf '%s\n' "$2" > "$RAW/env/$1"; }
envrec date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
envrec git_commit "$(git rev-parse HEAD 2>/dev/null || echo 'none (no commit yet)')"
envrec git_dirty "$(if [ -n "$(git status --porcelain 2>/dev/null)" ]; then echo yes; else echo no; fi)"
envrec chainbreak_version "$("$CHAINBREAK" --version 2>&1 || echo unknown)"
envrec chainbreak_binary "$CHAINBREAK"
envrec sqlite3_shell_version "$("$SQLITE3" --version 2>&1)"
envrec sqlite3_shell "$SQLITE3"
LIBSQLITE3_SYS=$(awk '/^name = "libsqlite3-sys"/ {getline; gsub(/"/, "", $3); print $3}' Cargo.lock 2>/dev/null | head -1)
envrec libsqlite3_sys "$LIBSQLITE3_SYS"
# the SQLite that rusqlite's "bundled" feature compiles in, from the crate's copy of sqlite3.h
envrec bundled_sqlite "$(cat "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"libsqlite3-sys-$LIBSQLITE3_SYS"/sqlite3/sqlite3.h 2>/dev/null \
    | sed -n 's/^#define SQLITE_VERSION  *"\(.*\)"/\1/p' | head -1)"
envrec rustc_version "$(rustc --version 2>/dev/null || echo unknown)"
envrec cpu_model "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
envrec cpus "$(nproc)"
envrec memory "$(free -h | awk '/^Mem:/ {print $2}')"
envrec kernel "$(uname -srmo)"
# shellcheck disable=SC1091
envrec os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
envrec python_numpy "$(python3 -c 'import sys, numpy; print(sys.version.split()[0], numpy.__version__)')"
envrec store_fs "$(df -PT "$STORE_DIR" | awk 'NR==2 {print $2 " on " $7}')"
envrec input_fs "$(df -PT "$DATA" | awk 'NR==2 {print $2 " on " $7}')"
envrec sqlite_pragmas "$SQLITE_PRAGMAS"
envrec chainbreak_source_pragmas "$(grep -rhoiE 'PRAGMA +[A-Za-z_]+ *(= *[A-Za-z0-9_-]+|\([A-Za-z0-9_-]+\))?|pragma_update(_and_check)?\([^,]*, *"[a-z_]+", *[^,)]+' \
    crates/store-sqlite/src 2>/dev/null | sort -u | tr '\n' ';' || true)"
envrec staging_schema "$STAGING_SCHEMA"
envrec systems "$SYSTEMS"
envrec args "persons=$PERSONS days=$DAYS runs=$RUNS seed=$SEED"
envrec input_dir "${DATA#"$ROOT"/}"
envrec load_start "$(cat /proc/loadavg)"

# ---------------------------------------------------------------- helpers
SQ() { "$SQLITE3" -bail -batch "$@"; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.6f}")' "$1" "$2"; }
rm_store() { rm -f "$1" "$1-wal" "$1-shm" "$1-journal"; }

# Makes a store with chainbreak: init, places, persons. Prints the seconds it took.
base_store() {
    local db=$1 log=$2 t0 t1
    rm_store "$db"
    t0=$(now)
    {
        "$CHAINBREAK" init --db "$db" "${INIT_ARGS[@]}" &&
        "$CHAINBREAK" import places "$DATA/places.csv" --db "$db" &&
        "$CHAINBREAK" import persons "$DATA/persons.csv" --db "$db"
    } >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "making the base store $db failed (log: $log)"; }
    t1=$(now)
    elapsed "$t0" "$t1"
}

check_schema() {
    local db=$1 cols c t
    for t in "$VISITS_TABLE:$V_PERSON $V_PLACE $V_T_IN $V_T_OUT $V_SOURCE" \
             "$PERSONS_TABLE:$PERSONS_KEY $PERSONS_ID" "$PLACES_TABLE:$PLACES_KEY $PLACES_ID"; do
        cols=" $(SQ "$db" "SELECT group_concat(name, ' ') FROM pragma_table_info('${t%%:*}')") "
        [ "$cols" != "  " ] || die "chainbreak's store has no table '${t%%:*}': adjust the names at the top of bench/import.sh"
        for c in ${t#*:}; do
            case "$cols" in *" $c "*) ;; *)
                die "table '${t%%:*}' has no column '$c' (it has:$cols): adjust the names at the top of bench/import.sh" ;;
            esac
        done
    done
    [ "$(SQ "$db" "SELECT count(*) FROM $VISITS_TABLE")" = 0 ] || die "a fresh store already holds visits"
    [ "$(SQ "$db" "SELECT count(*) FROM $PERSONS_TABLE")" = "$(manifest 'm["files"]["persons.csv"]["rows"]')" ] \
        || die "the store does not hold every person of persons.csv"
}

schema_dump() { SQ "$1" "SELECT type || ' ' || name || ': ' || ifnull(sql, '(automatic)') FROM sqlite_master ORDER BY type, name"; }

verify_rows() {
    local db=$1 system=$2 n
    n=$(SQ "$db" "SELECT count(*) FROM $VISITS_TABLE")
    if [ "$n" != "$ROWS" ]; then
        echo "import.sh: FAILED: $system stored $n visits, $VISITS has $ROWS" >&2
        exit 1
    fi
}

# Writes the sqlite3 shell script for one run into $2, for the base store $1.
sqlite_script() {
    local db=$1 script=$2
    mark() { printf "SELECT 'mark %s ' || printf('%%.3f', (julianday('now') - 2440587.5) * 86400.0);\n" "$1"; }
    {
        echo ".bail on"
        echo ".mode list"
        echo "$SQLITE_PRAGMAS"
        mark start
        echo "BEGIN;"
        SQ "$db" "SELECT 'DROP INDEX \"' || replace(name, '\"', '\"\"') || '\";' FROM sqlite_master
                  WHERE type = 'index' AND tbl_name = '$VISITS_TABLE' AND sql IS NOT NULL ORDER BY name"
        echo "CREATE TABLE $STAGING_SCHEMA.staging(person_id TEXT, place_id TEXT, t_in INTEGER, t_out INTEGER);"
        mark staging_ready
        echo ".import --csv --skip 1 --schema $STAGING_SCHEMA \"$VISITS\" staging"
        mark imported
        echo "EXPLAIN QUERY PLAN"
        insert_select
        echo "INSERT INTO $VISITS_TABLE($V_PERSON, $V_PLACE, $V_T_IN, $V_T_OUT, $V_SOURCE)"
        insert_select
        mark inserted
        echo "DROP TABLE $STAGING_SCHEMA.staging;"
        SQ "$db" "SELECT sql || ';' FROM sqlite_master
                  WHERE type = 'index' AND tbl_name = '$VISITS_TABLE' AND sql IS NOT NULL ORDER BY name"
        mark indexed
        echo "COMMIT;"
        mark committed
        echo "PRAGMA wal_checkpoint(TRUNCATE);"
        mark checkpointed
    } > "$script"
}
insert_select() {
    cat <<EOF
SELECT p.$PERSONS_KEY, l.$PLACES_KEY, s.t_in, NULLIF(s.t_out, ''), $SOURCE_VALUE
  FROM $STAGING_SCHEMA.staging AS s
  JOIN $PERSONS_TABLE AS p ON p.$PERSONS_ID = s.person_id
  JOIN $PLACES_TABLE AS l ON l.$PLACES_ID = s.place_id
 ORDER BY s.rowid;
EOF
}

# One timed run of one system. Appends a line to runs.tsv.
run_one() {
    local system=$1 run=$2 nth=$3 db setup t0 t1 s0 s1 wall sync rc tfile log resident load
    db=$STORE_DIR/$system-$run.db
    log=$RAW/$system-$run.log
    tfile=$RAW/$system-$run.time
    setup=$(base_store "$db" "$RAW/$system-$run.setup.log")
    if [ "$run" = 1 ]; then
        check_schema "$db"
        schema_dump "$db" > "$RAW/schema-base.txt"
    fi
    if [ "$system" = sqlite3 ]; then
        sqlite_script "$db" "$RAW/sqlite3-$run.sql"
    fi
    sync
    resident=$(fincore --bytes --noheadings --output RES,SIZE "$VISITS" 2>/dev/null | awk '{print $1 "/" $2}' || true)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "import.sh: run $run/$RUNS: $system (setup ${setup%.*} s) ..." >&2
    t0=$(now)
    set +e
    if [ "$system" = chainbreak ]; then
        /usr/bin/time -v -o "$tfile" "$CHAINBREAK" import visits "$VISITS" --db "$db" >"$log" 2>&1
    else
        /usr/bin/time -v -o "$tfile" "$SQLITE3" -bail -batch "$db" <"$RAW/sqlite3-$run.sql" >"$log" 2>&1
    fi
    rc=$?
    set -e
    t1=$(now)
    if [ "$rc" != 0 ]; then
        tail -n 30 "$log" >&2
        die "$system run $run failed with exit code $rc (log: $log)"
    fi
    s0=$(now); sync; s1=$(now)
    wall=$(elapsed "$t0" "$t1")
    sync=$(elapsed "$s0" "$s1")
    verify_rows "$db" "$system"
    local dbb walb
    dbb=$(stat -c %s "$db")
    walb=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
    schema_dump "$db" > "$RAW/schema-$system.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$run" "$nth" "$wall" "$setup" "$sync" \
        "$ROWS" "$dbb" "$walb" "${resident:-unknown}" "$load" >> "$RAW/runs.tsv"
    echo "import.sh: run $run/$RUNS: $system $wall s, $(python3 -c "print(f'{$ROWS / $wall:,.0f}')") visits/s" >&2
    if [ "$KEEP_STORES" = 0 ] || [ "$run" != "$RUNS" ]; then rm_store "$db"; fi
}

# ---------------------------------------------------------------- runs
printf 'system\trun\tnth\twall_s\tsetup_s\tsync_s\trows\tdb_bytes\twal_bytes\tinput_resident\tload\n' > "$RAW/runs.tsv"
# Warm page cache: read the input once, untimed, before the first run.
cat "$DATA/places.csv" "$DATA/persons.csv" "$VISITS" > /dev/null
envrec cache "warm: input files read once before the runs; resident pages of visits.csv recorded at each run"
# shellcheck disable=SC2086  # a list of words
set -- $SYSTEMS
nth=0
for run in $(seq 1 "$RUNS"); do
    # alternate which system goes first, so drift (heat, other load) falls on both
    if [ $((run % 2)) = 1 ]; then order="$*"; else order=$(printf '%s\n' "$@" | tac | tr '\n' ' '); fi
    for system in $order; do
        nth=$((nth + 1))
        run_one "$system" "$run" "$nth"
    done
done
envrec load_end "$(cat /proc/loadavg)"

python3 "$BENCH/summarize_import.py" "$RAW" --md "$OUT/import-$STAMP.md" --json "$OUT/import-$STAMP.json"
cat "$OUT/import-$STAMP.md"
