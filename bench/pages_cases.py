#!/usr/bin/env python3
"""Seeded generator of a large case file for the page benchmark (bench/pages.sh).

The simulator's outbreaks stop near 14% of the city (270,000 cases in a city of 2,000,000 over
150 days), so a store with 1,000,000 cases needs cases written for the purpose. This writes
`--cases` cases over distinct persons of a simulated city's `persons.csv`, shaped like an
outbreak: onsets on a rising and falling curve over `--days` days ending the day before
`--end`, a report 0 to 4 days after onset (asymptomatic cases: a report a day after sampling),
the simulator's shares of classification, severity and detection route, and for 40% of cases
an infector among the cases reported before them (chains, for the chains page). The same
seed gives the same bytes.

Usage: pages_cases.py --persons PERSONS.csv --out cases.csv --cases 1000000 --days 120 \
    --end 2022-03-01 [--seed 1]
"""

import argparse
import csv
import datetime as dt
import random
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, required=True)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--end", required=True, help="the day after the last onset (local date)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    with open(a.persons, newline="") as f:
        persons = [row["id"] for row in csv.DictReader(f)]
    if a.cases > len(persons):
        print(f"{a.persons}: {len(persons)} persons, fewer than the {a.cases} cases asked for", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)
    chosen = rng.sample(persons, a.cases)
    end = dt.date.fromisoformat(a.end)
    first = end - dt.timedelta(days=a.days)
    local = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no daylight saving

    # Each case: (reported_at, onset or None, sampled_at, classification, severity, detection).
    rows = []
    for _ in range(a.cases):
        day = min(int(rng.betavariate(3.0, 2.0) * a.days), a.days - 1)
        onset_day = first + dt.timedelta(days=day)
        sampled = dt.datetime.combine(onset_day, dt.time(), local) + dt.timedelta(minutes=rng.randrange(0, 24 * 60))
        u = rng.random()
        if u < 0.13:
            classification, severity, onset = "asymptomatic", "asymptomatic", None
            reported = sampled + dt.timedelta(hours=rng.uniform(6, 30))
        else:
            classification = "excluded" if u > 0.995 else ("suspected" if u > 0.985 else "confirmed")
            severity = rng.choices(["mild", "moderate", "severe", "critical"], [85, 11, 3, 1])[0]
            onset = onset_day
            reported = sampled + dt.timedelta(hours=rng.uniform(4, 4 * 24))
        detection = rng.choices(["community", "screening", "in_quarantine", "arrival"], [62, 20, 17, 1])[0]
        rows.append((reported, onset, sampled, classification, severity, detection))
    rows.sort(key=lambda r: r[0])

    width = len(str(a.cases))
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
                "id", "person_id", "classification", "onset", "sampled_at", "reported_at", "imported",
                "detection", "severity", "outcome", "vaccine_doses", "infector_case_id", "cluster",
            ]
        )
        for i, (reported, onset, sampled, classification, severity, detection) in enumerate(rows):
            infector = ""
            # An infector reported before this case and not long before (chains of a few weeks).
            if i > 0 and rng.random() < 0.4:
                j = max(0, i - 1 - int(rng.expovariate(1.0 / 2000)))
                infector = f"C{j + 1:0{width}d}"
            w.writerow(
                [
                    f"C{i + 1:0{width}d}",
                    chosen[i],
                    classification,
                    onset.isoformat() if onset else "",
                    sampled.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    reported.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "true" if detection == "arrival" else "false",
                    detection,
                    severity,
                    "ongoing",
                    "",
                    infector,
                    "",
                ]
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
