#!/usr/bin/env python3
"""The trace benchmark's window and index persons, from one input city (bench/README.md).

Usage: trace_prepare.py --data DIR [--profile PROFILE.toml] [--window-days 4] [--seed 1]
                        [--ks "1 10 100"] --out DIR

Writes into --out: window.json and index-<K>.txt for each K (one person id a line).

  * W1 = the first whole UTC hour after the largest t_in of visits.csv
    (floor(max t_in / 3600) * 3600 + 3600), so the last check-in is inside [W0, W1);
    W0 = W1 - window_days * 86400.
  * Candidates: persons with at least one visit that is not empty once clipped to [W0, W1)
    (t_out filled from the profile's [open_visits] as the query does).
  * The K index persons: the candidates ordered by SHA-256 of "{seed}\\t{person_id}" (hex,
    then the id), the first K. So K=1 is in K=10 is in K=100, and the choice depends only on
    the ids and the seed, not on any tool.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time

import trace_common as tc
import trace_duckdb


def utc(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory with visits.csv and places.csv")
    ap.add_argument("--profile", default=tc.DEFAULT_PROFILE)
    ap.add_argument("--window-days", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ks", default="1 10 100")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    ks = sorted({int(k) for k in a.ks.split()})
    t0 = time.perf_counter()
    try:
        tr = trace_duckdb.Tracer(os.path.join(a.data, "visits.csv"), os.path.join(a.data, "places.csv"),
                                 a.profile, set())
    except tc.InputError as e:
        sys.exit(f"trace_prepare: {e}")
    (max_t_in,) = tr.con.execute("SELECT max(t_in) FROM visits").fetchone()
    if max_t_in is None:
        sys.exit("trace_prepare: visits.csv has no visits")
    w1 = (max_t_in // 3600) * 3600 + 3600
    w0 = w1 - a.window_days * 86400
    ids = [r[0] for r in tr.con.execute(
        """SELECT DISTINCT p.id FROM visits AS v JOIN persons AS p ON p.key = v.person
            WHERE greatest(v.t_in, $w0) < least(v.t_out, $w1)""", {"w0": w0, "w1": w1}).fetchall()]
    ranked = sorted(ids, key=lambda i: (hashlib.sha256(f"{a.seed}\t{i}".encode()).hexdigest(), i.encode()))
    if ks and ks[-1] > len(ranked):
        sys.exit(f"trace_prepare: K={ks[-1]} but only {len(ranked)} persons have a visit in the window")
    os.makedirs(a.out, exist_ok=True)
    for k in ks:
        with open(os.path.join(a.out, f"index-{k}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{i}\n" for i in ranked[:k]))
    info = {
        "w0": w0, "w1": w1, "w0_utc": utc(w0), "w1_utc": utc(w1), "window_days": a.window_days,
        "max_t_in": max_t_in, "candidates": len(ranked), "seed": a.seed, "ks": ks,
        "index_rule": "persons with a visit not empty once clipped to [W0, W1) (open visits filled from the "
                      "profile), ordered by sha256('{seed}\\t{person_id}') hex then id; the first K",
        "window_rule": "W1 = floor(max t_in / 3600) * 3600 + 3600; W0 = W1 - window_days * 86400",
        "profile": os.path.abspath(a.profile), "profile_sha256": tc.file_sha256(a.profile),
        "seconds": time.perf_counter() - t0,
    }
    with open(os.path.join(a.out, "window.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
