#!/usr/bin/env bash
# Creates a store and imports the sample district into it, every file in dependency order.
# Usage: scripts/load-sample.sh [DB] (default target/sample.db; an existing one is replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-target/sample.db}
BIN=${CHAINBREAK:-target/release/chainbreak}
[ -x "$BIN" ] || cargo build --release --locked -p chainbreak-cli
rm -f "$DB" "$DB-wal" "$DB-shm"
"$BIN" init --db "$DB" --tz Asia/Shanghai --profile cn-2022-9th
S=data/sample
for kind_file in areas:areas.geojson units:units.csv places:places.csv persons:persons.csv \
    identifiers:identifiers.csv staff:staff.csv groups:groups.csv memberships:memberships.csv \
    visits:visits.csv trips:trips.csv passengers:passengers.csv pings:pings.csv cases:cases.csv \
    lab_tests:lab_tests.csv arrivals:arrivals.csv goods_batches:goods_batches.csv \
    goods_hops:goods_hops.csv sentinel:sentinel.csv; do
    "$BIN" import "${kind_file%%:*}" "$S/${kind_file#*:}" --db "$DB"
done
