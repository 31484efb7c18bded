#!/usr/bin/env python3
"""Brute-force reference for chainbreak's plain venue rule (`trace --rule venue-overlap --depth 2`).

Nested loops over the visits of each place, written to be read, not to be fast: for the small
cities of bench/test_trace_reference.py (and --persons 1000 smoke runs). Prints JSON
{"hash", "close", "secondary"} (with --contacts, also the contacts and their exposure times).

Usage: trace_oracle.py --visits visits.csv --places places.csv --persons-file index.txt
                       --from W0 --to W1 [--min-overlap-seconds 900] [--profile PROFILE.toml]

The rule (bench/README.md, "The rule"):
  * visits without t_out get t_out = t_in + the profile's dwell for the place's kind;
  * an index person's visit a is clipped to a' = [max(a.t_in, W0), min(a.t_out, W1)), and
    dropped when a'.out <= a'.in;
  * another visit b at the same place is an exposure to a' when
    min(a'.out, b.t_out) - max(a'.in, b.t_in) >= m; b is not clipped;
  * close contacts C: persons not in I with an exposure to some clipped visit of I, and
    e_c = the earliest max(a'.in, b.t_in) over c's exposures;
  * secondary contacts: persons in neither I nor C exposed in the same way to any visit of
    some c in C clipped to [e_c, W1).
"""

import argparse
import csv
import json
import sys

import trace_common as tc


def read_places(path):
    """{place id: kind}"""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["id"]: row["kind"] for row in csv.DictReader(f)}


def read_visits(path, kinds, default_dwell, dwell):
    """[(person, place, t_in, t_out)] with open visits filled in."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t_in = int(row["t_in"])
            if (row.get("t_out") or "") == "":
                t_out = t_in + dwell.get(kinds.get(row["place_id"]), default_dwell)
            else:
                t_out = int(row["t_out"])
            out.append((row["person_id"], row["place_id"], t_in, t_out))
    return out


def clip(t_in, t_out, lo, hi):
    """The interval clipped to [lo, hi), or None when nothing is left."""
    s, e = max(t_in, lo), min(t_out, hi)
    return (s, e) if e > s else None


def trace(visits, index, w0, w1, m):
    """(close: {person: e}, secondary: set of persons) for filled visits."""
    at_place, of_person = {}, {}
    for v in visits:
        at_place.setdefault(v[1], []).append(v)
        of_person.setdefault(v[0], []).append(v)

    def exposures(person, lo, hi):
        """(other person, start of the exposure) for every visit b exposed to a visit of
        `person` clipped to [lo, hi)."""
        for (_p, place, t_in, t_out) in of_person.get(person, []):
            a = clip(t_in, t_out, lo, hi)
            if a is None:
                continue
            for (q, _place, b_in, b_out) in at_place[place]:
                if min(a[1], b_out) - max(a[0], b_in) >= m:
                    yield q, max(a[0], b_in)

    close = {}
    for i in sorted(index):
        for q, start in exposures(i, w0, w1):
            if q in index:
                continue
            if q not in close or start < close[q]:
                close[q] = start
    secondary = set()
    for c, e in sorted(close.items()):
        for q, _start in exposures(c, e, w1):
            if q not in index and q not in close:
                secondary.add(q)
    return close, secondary


def run(visits_path, places_path, persons_path, w0, w1, m, profile):
    default_dwell, dwell = tc.read_dwell(profile)
    kinds = read_places(places_path)
    visits = read_visits(visits_path, kinds, default_dwell, dwell)
    index = tc.read_persons_file(persons_path)
    close, secondary = trace(visits, index, w0, w1, m)
    return close, secondary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visits", required=True)
    ap.add_argument("--places", required=True)
    ap.add_argument("--persons-file", required=True, help="index persons, one id a line")
    ap.add_argument("--from", dest="w0", type=int, required=True, help="W0, Unix seconds")
    ap.add_argument("--to", dest="w1", type=int, required=True, help="W1, Unix seconds (excluded)")
    ap.add_argument("--min-overlap-seconds", type=int, default=900)
    ap.add_argument("--profile", default=tc.DEFAULT_PROFILE)
    ap.add_argument("--contacts", action="store_true", help="also list the contacts")
    a = ap.parse_args(argv)
    if a.min_overlap_seconds < 0:
        ap.error("--min-overlap-seconds must be >= 0")
    try:
        close, secondary = run(a.visits, a.places, a.persons_file, a.w0, a.w1, a.min_overlap_seconds, a.profile)
    except tc.InputError as e:
        sys.exit(f"trace_oracle: {e}")
    out = {"system": "oracle", "hash": tc.result_hash(close, secondary),
           "close": len(close), "secondary": len(secondary)}
    if a.contacts:
        out["contacts"] = {"close": dict(sorted(close.items())), "secondary": sorted(secondary)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
