#!/usr/bin/env python3
"""The plain venue rule (`chainbreak trace --rule venue-overlap --depth 2`) in DuckDB.

Loads places.csv and visits.csv into in-memory DuckDB tables once (integer keys for persons and
places, open visits given t_out = t_in + the profile's dwell for the place's kind), then runs the
query of bench/trace_venue_overlap.sql --runs times (warm: the same connection, the tables
already loaded), and prints one JSON object on stdout:

  {"system": "duckdb", "hash", "close", "secondary", "load_seconds", "load_phases_seconds",
   "query_seconds": [per run], "query_median_seconds", "visits", "index_persons", ...}

query_seconds of a run = executing the query and fetching its rows (tier, person id); the hash
of the sorted lines is taken after the clock stops (and checked to be the same in every run).

Usage: trace_duckdb.py --visits visits.csv --places places.csv --persons-file index.txt
                       --from W0 --to W1 [--min-overlap-seconds 900] [--profile PROFILE.toml]
                       [--runs N] [--threads 2] [--contacts-out FILE]
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

import duckdb

import trace_common as tc

SQL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trace_venue_overlap.sql")
LOAD_STEPS = ["load_places", "load_raw_visits", "load_person_keys", "load_place_keys", "load_visits",
              "drop_raw_visits", "load_index"]


def read_sql(path=SQL_PATH):
    """{name: statement} from the `-- name: NAME` sections of the SQL file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parts = re.split(r"^-- name: *(\w+) *$", text, flags=re.M)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def params_of(stmt, values):
    """The named parameters a statement uses (DuckDB refuses unused ones)."""
    used = set(re.findall(r"\$([a-z_0-9]+)", stmt))
    missing = used - set(values)
    if missing:
        raise KeyError(f"no value for SQL parameter(s) {sorted(missing)}")
    return {k: values[k] for k in used}


class Tracer:
    def __init__(self, visits, places, profile, index_ids, threads=2, sql_path=SQL_PATH, temp_dir=None):
        self.sql = read_sql(sql_path)
        self.default_dwell, self.dwell = tc.read_dwell(profile)
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET threads = {int(threads)}")
        if temp_dir:
            # Where DuckDB spills what does not fit in memory (default: .tmp in the working
            # directory, left behind when the process is stopped by the cell's time limit).
            self.con.execute("SET temp_directory = ?", [temp_dir])
        self.values = {"visits": visits, "places": places, "default_dwell_seconds": self.default_dwell}
        self.phases = {}
        t0 = time.perf_counter()
        self.con.execute("CREATE TABLE dwell(kind VARCHAR PRIMARY KEY, seconds BIGINT NOT NULL)")
        if self.dwell:
            self.con.executemany("INSERT INTO dwell VALUES (?, ?)", sorted(self.dwell.items()))
        self.con.execute("CREATE TABLE index_ids(id VARCHAR NOT NULL)")
        if index_ids:
            self.con.executemany("INSERT INTO index_ids VALUES (?)", [(i,) for i in sorted(index_ids)])
        for step in LOAD_STEPS:
            s0 = time.perf_counter()
            stmt = self.sql[step]
            self.con.execute(stmt, params_of(stmt, self.values))
            self.phases[step] = time.perf_counter() - s0
        self.load_seconds = time.perf_counter() - t0
        self.visits = self.con.execute("SELECT count(*) FROM visits").fetchone()[0]
        self.index_with_visits = self.con.execute("SELECT count(*) FROM idx").fetchone()[0]

    def query(self, w0, w1, m):
        """((close ids, secondary ids), seconds)."""
        stmt = self.sql["query"]
        p = params_of(stmt, {"w0": w0, "w1": w1, "m": m})
        t0 = time.perf_counter()
        rows = self.con.execute(stmt, p).fetchall()
        dt = time.perf_counter() - t0
        close = [i for t, i in rows if t == 1]
        secondary = [i for t, i in rows if t == 2]
        return (close, secondary), dt


def run(visits, places, persons_file, w0, w1, m, profile, runs=1, threads=2, progress=None, temp_dir=None):
    """(JSON-able result, close ids, secondary ids). progress: a file for one line per step
    (so a run stopped by a time limit still shows what it did)."""
    index_ids = tc.read_persons_file(persons_file)
    tr = Tracer(visits, places, profile, index_ids, threads=threads, temp_dir=temp_dir)
    if progress:
        print(f"trace_duckdb: load_seconds {tr.load_seconds:.3f} visits {tr.visits}", file=progress, flush=True)
    times, first = [], None
    for n in range(runs):
        (close, secondary), dt = tr.query(w0, w1, m)
        times.append(dt)
        if progress:
            print(f"trace_duckdb: run {n + 1} query_seconds {dt:.6f} close {len(close)} secondary {len(secondary)}",
                  file=progress, flush=True)
        h = tc.result_hash(close, secondary)
        if first is None:
            first = (h, close, secondary)
        elif h != first[0]:
            raise RuntimeError(f"DuckDB gave different results in two runs ({first[0]} then {h})")
    h, close, secondary = first
    out = {
        "system": "duckdb",
        "hash": h,
        "close": len(close),
        "secondary": len(secondary),
        "load_seconds": tr.load_seconds,
        "load_phases_seconds": tr.phases,
        "query_seconds": times,
        "query_median_seconds": statistics.median(times),
        "runs": runs,
        "visits": tr.visits,
        "index_persons": len(index_ids),
        "index_persons_with_visits": tr.index_with_visits,
        "window": [w0, w1],
        "min_overlap_seconds": m,
        "threads": int(tr.con.execute("SELECT current_setting('threads')").fetchone()[0]),
        "duckdb_version": duckdb.__version__,
        "python": sys.version.split()[0],
        "profile": os.path.abspath(profile),
        "profile_sha256": tc.file_sha256(profile),
        "dwell_seconds": {"default": tr.default_dwell, **dict(sorted(tr.dwell.items()))},
        "sql": os.path.relpath(SQL_PATH, os.getcwd()),
        "sql_sha256": tc.file_sha256(SQL_PATH),
    }
    return out, close, secondary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visits", required=True)
    ap.add_argument("--places", required=True)
    ap.add_argument("--persons-file", required=True, help="index persons, one id a line")
    ap.add_argument("--from", dest="w0", type=int, required=True, help="W0, Unix seconds")
    ap.add_argument("--to", dest="w1", type=int, required=True, help="W1, Unix seconds (excluded)")
    ap.add_argument("--min-overlap-seconds", type=int, default=900)
    ap.add_argument("--profile", default=tc.DEFAULT_PROFILE, help="profile TOML with [open_visits]")
    ap.add_argument("--runs", type=int, default=1, help="query runs on the loaded tables (warm)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temp-dir", help="DuckDB's spill directory (default: .tmp in the working directory)")
    ap.add_argument("--contacts-out", help="write the sorted '{tier}\\t{person_id}' lines here")
    a = ap.parse_args(argv)
    if a.min_overlap_seconds < 0:
        ap.error("--min-overlap-seconds must be >= 0")
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    if a.w1 <= a.w0:
        ap.error("--to must be after --from")
    try:
        out, close, secondary = run(a.visits, a.places, a.persons_file, a.w0, a.w1, a.min_overlap_seconds,
                                    a.profile, runs=a.runs, threads=a.threads, progress=sys.stderr,
                                    temp_dir=a.temp_dir)
    except tc.InputError as e:
        sys.exit(f"trace_duckdb: {e}")
    if a.contacts_out:
        with open(a.contacts_out, "wb") as f:
            f.writelines(tc.result_lines(close, secondary))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
