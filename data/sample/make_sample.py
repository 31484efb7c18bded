#!/usr/bin/env python3
"""Writes the sample district: every chainbreak import format, small enough to read.

Deterministic: the same seed gives the same bytes. Run from anywhere:
    python3 data/sample/make_sample.py [--seed 42] [--out data/sample]
The files are committed; re-run this only to change the sample. A few hundred synthetic
people in one district, two weeks of venue check-ins (2022-03-01 to 03-14, Asia/Shanghai),
trips, a small outbreak (five cases, one of them excluded), lab tests, sentinel reports,
arrivals and a cold-chain batch. No real person is described.
"""
import argparse
import csv
import datetime as dt
import json
import os
import random

TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no DST since 1991
START = dt.datetime(2022, 3, 1, tzinfo=TZ)
DAYS = 14
LON0, LAT0 = 114.40, 30.50


def ts(day, hour, minute=0):
    return int((START + dt.timedelta(days=day, hours=hour, minutes=minute)).timestamp())


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def square(lon, lat, size):
    return {"type": "Polygon", "coordinates": [[[round(lon, 6), round(lat, 6)], [round(lon + size, 6), round(lat, 6)],
                                                [round(lon + size, 6), round(lat + size, 6)], [round(lon, 6), round(lat + size, 6)],
                                                [round(lon, 6), round(lat, 6)]]]}


def write_csv(out, name, header, rows):
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v) for v in r])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = a.out

    # ------------------------------------------------------------------ areas
    features = []

    def area(id_, name, level, parent, geom):
        features.append({"type": "Feature", "properties": {"id": id_, "name": name, "level": level, "parent": parent},
                         "geometry": geom})

    area("HB", "Hubei (sample)", "province", None, None)
    area("WH", "Wuhan (sample)", "city", "HB", None)
    area("HS", "Hongshan District (sample)", "district", "WH", square(LON0, LAT0, 0.08))
    buildings = []
    for s in range(2):
        sid = f"HS-S{s + 1}"
        area(sid, f"Subdistrict {s + 1}", "subdistrict", "HS", square(LON0 + 0.04 * s, LAT0, 0.04))
        for c in range(2):
            cid = f"{sid}-C{c + 1}"
            clon, clat = LON0 + 0.04 * s, LAT0 + 0.02 * c
            area(cid, f"Community {s + 1}-{c + 1}", "community", sid, square(clon, clat, 0.02))
            for k in range(2):
                kid = f"{cid}-K{k + 1}"
                klon = clon + 0.01 * k
                area(kid, f"Compound {s + 1}-{c + 1}-{k + 1}", "compound", cid, square(klon, clat, 0.01))
                for b in range(3):
                    bid = f"{kid}-B{b + 1}"
                    blon, blat = klon + 0.003 * b + 0.0005, clat + 0.003
                    area(bid, f"Building {b + 1}", "building", kid, square(blon, blat, 0.002))
                    buildings.append((bid, blon + 0.001, blat + 0.001))
    with open(os.path.join(out, "areas.geojson"), "w") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # ------------------------------------------------------------------ units
    units = [("CMD", "District epidemic command centre", None, "HS"), ("CDC", "District CDC", "CMD", "HS")]
    for s in range(2):
        units.append((f"SO{s + 1}", f"Subdistrict office {s + 1}", "CMD", f"HS-S{s + 1}"))
        for c in range(2):
            units.append((f"CS{s + 1}{c + 1}", f"Community station {s + 1}-{c + 1}", f"SO{s + 1}", f"HS-S{s + 1}-C{c + 1}"))
    write_csv(out, "units.csv", ["id", "name", "parent", "area"], units)

    # ------------------------------------------------------------------ places
    places = []
    for i, (bid, lon, lat) in enumerate(buildings):
        places.append((f"R{i + 1:02}", f"Residence {bid}", "residence", False, round(lat, 6), round(lon, 6), bid))
    others = [("workplace", 4, False), ("school", 2, True), ("hospital", 1, True), ("fever_clinic", 1, True),
              ("pharmacy", 3, False), ("market", 2, False), ("mall", 1, False), ("restaurant", 5, False),
              ("transit_station", 2, False), ("train_station", 1, True), ("cold_chain_warehouse", 1, False),
              ("quarantine_facility", 1, False)]
    kind_of = {}
    n = 0
    for kind, count, key in others:
        for j in range(count):
            n += 1
            bid, lon, lat = buildings[rng.randrange(len(buildings))]
            pid = f"V{n:02}"
            kind_of[pid] = kind
            places.append((pid, f"{kind.replace('_', ' ').title()} {j + 1}", kind, key,
                           round(lat + rng.uniform(-0.001, 0.001), 6), round(lon + rng.uniform(-0.001, 0.001), 6),
                           bid.rsplit("-B", 1)[0]))
    write_csv(out, "places.csv", ["id", "name", "kind", "key_place", "lat", "lon", "area"], places)
    by_kind = {}
    for pid, kind in kind_of.items():
        by_kind.setdefault(kind, []).append(pid)
    residences = [p[0] for p in places if p[2] == "residence"]

    # ------------------------------------------------------------------ persons and households
    persons, households, members = [], [], []
    occupations = ["office_worker"] * 6 + ["teacher", "courier", "health_worker", "cold_chain_worker", "retired", "student"]
    pid = 0
    h = 0
    while pid < 300:
        h += 1
        size = min(rng.choice([1, 2, 2, 3, 3, 3, 4, 5]), 300 - pid)
        home = residences[rng.randrange(len(residences))]
        hid = f"H{h:03}"
        households.append((hid, "household", None, home, None, None))
        for m in range(size):
            pid += 1
            age = rng.randint(25, 70) if m < 2 else rng.randint(3, 17)
            occ = "student" if age < 18 else rng.choice(occupations)
            persons.append((f"P{pid:03}", home, 2022 - age, rng.choice(["female", "male"]), occ))
            members.append((hid, f"P{pid:03}", "head" if m == 0 else None))
    write_csv(out, "persons.csv", ["id", "residence", "birth_year", "sex", "occupation"], persons)
    ident = []
    for p in persons:
        num = int(p[0][1:])
        ident.append((p[0], "phone", f"1380000{num:04}"))
        ident.append((p[0], "id_document", f"42011119{p[2]}0101{num:04}"))
    write_csv(out, "identifiers.csv", ["person_id", "kind", "value"], ident)

    # classes and teams
    groups = list(households)
    students = [p[0] for p in persons if p[4] == "student"]
    for c in range(2):
        groups.append((f"CL{c + 1}", "class", f"Class {c + 1}", by_kind["school"][c], None, None))
        for s in students[c::2]:
            members.append((f"CL{c + 1}", s, None))
    workers = [p for p in persons if p[4] not in ("student", "retired")]
    workplace_of = {}
    staff = []
    for i, p in enumerate(workers):
        if p[4] == "teacher":
            wp = by_kind["school"][i % 2]
        elif p[4] == "health_worker":
            wp = rng.choice(by_kind["hospital"] + by_kind["fever_clinic"])
        elif p[4] == "cold_chain_worker":
            wp = by_kind["cold_chain_warehouse"][0]
        elif p[4] == "courier":
            wp = rng.choice(by_kind["market"])
        else:
            wp = by_kind["workplace"][i % 4]
        workplace_of[p[0]] = wp
        staff.append((wp, p[0], p[4]))
    for w in range(4):
        groups.append((f"T{w + 1}", "team", f"Team {w + 1}", by_kind["workplace"][w], None, None))
    for p, wp in workplace_of.items():
        if wp in by_kind["workplace"]:
            members.append((f"T{by_kind['workplace'].index(wp) + 1}", p, None))
    # a gathering on day 6 at a restaurant
    gathering = [p[0] for p in persons[40:52]]
    groups.append(("G1", "gathering", "Birthday dinner", by_kind["restaurant"][0], iso(ts(5, 18)), iso(ts(5, 21))))
    for p in gathering:
        members.append(("G1", p, None))
    write_csv(out, "groups.csv", ["id", "kind", "name", "place_id", "start", "end"], groups)
    write_csv(out, "memberships.csv", ["group_id", "person_id", "role"], members)
    write_csv(out, "staff.csv", ["place_id", "person_id", "role"], staff)

    # ------------------------------------------------------------------ visits (venue-code scans)
    visits = []

    def visit(p, place, t_in, minutes):
        t_out = None if rng.random() < 0.1 else t_in + minutes * 60
        visits.append((p, place, t_in, t_out))

    school_of = {s: by_kind["school"][i % 2] for i, s in enumerate(students)}
    for day in range(DAYS):
        weekday = (START + dt.timedelta(days=day)).weekday() < 5
        for p in persons:
            person = p[0]
            if weekday and person in workplace_of:
                visit(person, workplace_of[person], ts(day, 8, rng.randint(0, 59)), rng.randint(420, 540))
            if weekday and person in school_of:
                visit(person, school_of[person], ts(day, 7, rng.randint(30, 59)), rng.randint(400, 480))
            if rng.random() < 0.35:
                kind = rng.choice(["market", "pharmacy", "restaurant", "restaurant", "mall" if not weekday else "market"])
                visit(person, rng.choice(by_kind[kind]), ts(day, rng.randint(11, 20), rng.randint(0, 59)), rng.randint(10, 90))
            if rng.random() < 0.2:
                visit(person, rng.choice(by_kind["transit_station"]), ts(day, rng.randint(7, 19), rng.randint(0, 59)), rng.randint(3, 15))
        if day == 5:
            for person in gathering:
                visit(person, by_kind["restaurant"][0], ts(5, 18, rng.randint(0, 15)), 170)
    visits.sort(key=lambda v: (v[2], v[0]))
    write_csv(out, "visits.csv", ["person_id", "place_id", "t_in", "t_out"], visits)

    # location pings for a few consenting app users (grid co-location)
    pings = []
    for p in persons[:12]:
        home = next(x for x in places if x[0] == p[1])
        for day in range(DAYS):
            for hour in (9, 13, 19):
                pings.append((p[0], iso(ts(day, hour, rng.randint(0, 59))),
                              round(home[4] + rng.uniform(-0.004, 0.004), 6), round(home[5] + rng.uniform(-0.004, 0.004), 6), 30))
    write_csv(out, "pings.csv", ["person_id", "t", "lat", "lon", "accuracy_m"], pings)

    # ------------------------------------------------------------------ trips
    trips = [("T-G1234", "train", "G1234", iso(ts(3, 9)), iso(ts(3, 13)), "Beijing West", "Wuhan", True),
             ("T-CZ3456", "flight", "CZ3456", iso(ts(4, 8, 30)), iso(ts(4, 10, 45)), "CAN", "WUH", False),
             ("T-BUS12", "bus", "12", iso(ts(6, 7, 50)), iso(ts(6, 8, 40)), "Guanggu", "Jiedaokou", True)]
    write_csv(out, "trips.csv", ["id", "mode", "number", "departure", "arrival", "origin", "destination", "sealed"], trips)
    passengers = []
    for i, p in enumerate(persons[100:112]):
        passengers.append(("T-G1234", p[0], "passenger", 5 + i % 3, 2 + i % 8, f"{2 + i % 8}{'ABCDF'[i % 5]}"))
    for i, p in enumerate(persons[120:130]):
        passengers.append(("T-CZ3456", p[0], "passenger", None, 10 + i, f"{10 + i}{'ABCDEF'[i % 6]}"))
    passengers.append(("T-CZ3456", persons[131][0], "crew", None, None, None))
    for i, p in enumerate(persons[140:150]):
        passengers.append(("T-BUS12", p[0], "passenger", None, 1 + i, None))
    write_csv(out, "passengers.csv", ["trip_id", "person_id", "role", "carriage", "seat_row", "seat"], passengers)

    arrivals = [(persons[120][0], "HK", "abroad", iso(ts(4, 7)), iso(ts(4, 10, 45)), "T-CZ3456", persons[120][1]),
                (persons[101][0], "BJ-CY", "high", iso(ts(3, 8)), iso(ts(3, 13)), "T-G1234", persons[101][1]),
                (persons[102][0], "BJ-HD", "low", iso(ts(3, 8)), iso(ts(3, 13)), "T-G1234", persons[102][1])]
    write_csv(out, "arrivals.csv", ["person_id", "origin", "origin_risk", "left_origin_at", "arrived_at", "trip_id", "destination"], arrivals)

    # ------------------------------------------------------------------ the outbreak
    # C1: a cold-chain worker (index case); C2: their household; C3: a colleague at the
    # warehouse, asymptomatic, found by screening; C4: suspected, pending; C5: excluded.
    cc = [p for p in persons if p[4] == "cold_chain_worker"]
    c1 = cc[0]
    hh = next(g for g, pp, _ in members if pp == c1[0] and g.startswith("H"))
    c2 = next(pp for g, pp, _ in members if g == hh and pp != c1[0]) if sum(1 for g, _, _ in members if g == hh) > 1 else persons[1][0]
    c3 = cc[1][0] if len(cc) > 1 else persons[2][0]
    cases = [
        ("K1", c1[0], "confirmed", "2022-03-08", iso(ts(8, 10)), iso(ts(8, 16)), False, "community", "mild", "ongoing", 3, None, "CL-1"),
        ("K2", c2, "confirmed", "2022-03-10", iso(ts(9, 9)), iso(ts(9, 20)), False, "in_quarantine", "mild", "ongoing", 2, "K1", "CL-1"),
        ("K3", c3, "asymptomatic", None, iso(ts(9, 8)), iso(ts(9, 18)), False, "screening", "asymptomatic", "ongoing", 3, "K1", "CL-1"),
        ("K4", persons[60][0], "suspected", "2022-03-12", iso(ts(12, 11)), iso(ts(12, 15)), False, "community", "mild", "ongoing", 0, None, None),
        ("K5", persons[120][0], "excluded", None, iso(ts(4, 11)), iso(ts(4, 20)), True, "arrival", None, None, 3, None, None),
    ]
    write_csv(out, "cases.csv", ["id", "person_id", "classification", "onset", "sampled_at", "reported_at", "imported", "detection",
                                 "severity", "outcome", "vaccine_doses", "infector_case_id", "cluster"], cases)
    lab = by_kind["hospital"][0]
    tests = [
        ("LT1", "person", c1[0], None, "pcr", "positive", 24.5, iso(ts(8, 10)), iso(ts(8, 15)), lab, "BA.2"),
        ("LT2", "person", c2, None, "pcr", "positive", 29.1, iso(ts(9, 9)), iso(ts(9, 19)), lab, "BA.2"),
        ("LT3", "person", c3, "POOL-0309-7", "pcr", "positive", 33.8, iso(ts(9, 8)), iso(ts(9, 17)), lab, None),
        ("LT4", "person", persons[60][0], None, "antigen", "positive", None, iso(ts(12, 11)), iso(ts(12, 11, 20)), None, None),
        ("LT5", "person", persons[60][0], None, "pcr", "pending", None, iso(ts(12, 11, 30)), None, lab, None),
        ("LT6", "person", persons[120][0], None, "pcr", "negative", None, iso(ts(4, 11)), iso(ts(4, 19)), lab, None),
        ("LT7", "goods", "GB-EC-0215", None, "pcr", "positive", 35.2, iso(ts(7, 14)), iso(ts(8, 9)), lab, None),
        ("LT8", "environment", by_kind["cold_chain_warehouse"][0], None, "pcr", "positive", 36.0, iso(ts(7, 15)), iso(ts(8, 9)), lab, None),
    ]
    for i, p in enumerate(persons[200:230]):
        tests.append((f"LT{9 + i}", "person", p[0], "POOL-0309-7" if i < 9 else None, "pcr", "negative", None,
                      iso(ts(9, 8, i)), iso(ts(9, 17)), lab, None))
    write_csv(out, "lab_tests.csv", ["id", "subject_kind", "subject_id", "pool_id", "method", "result", "ct", "sampled_at",
                                     "reported_at", "lab_id", "variant"], tests)

    # ------------------------------------------------------------------ goods
    wh = by_kind["cold_chain_warehouse"][0]
    batches = [("GB-EC-0215", "frozen white shrimp", "EC", "EC-PLANT-0571", "Tianjin", "2022-02-15", "CIQ-220215-01",
                "NAT-220214-88", "DIS-220216-03", "TC-9F3A", None),
               ("GB-EC-0215-A", "frozen white shrimp, repacked 1 kg", "EC", "EC-PLANT-0571", "Tianjin", "2022-02-15",
                None, None, None, "TC-9F3B", "GB-EC-0215"),
               ("GB-BR-0220", "frozen beef", "BR", "BR-SIF-2014", "Shanghai", "2022-02-20", "CIQ-220220-07",
                "NAT-220219-12", "DIS-220221-02", "TC-77C1", None)]
    write_csv(out, "goods_batches.csv", ["id", "product", "origin_country", "plant", "port", "entry_date", "inspection_cert",
                                         "test_cert", "disinfection_cert", "trace_code", "parent_batch_id"], batches)
    hops = [("GB-EC-0215", "transfer", None, wh, None, "2022-02-18", 1200),
            ("GB-EC-0215", "repack", wh, None, "GB-EC-0215-A", "2022-02-25", 200),
            ("GB-EC-0215-A", "transfer", wh, by_kind["market"][0], None, "2022-03-02", 120),
            ("GB-EC-0215-A", "transfer", wh, by_kind["restaurant"][1], None, "2022-03-03", 40),
            ("GB-BR-0220", "transfer", None, wh, None, "2022-02-23", 800)]
    write_csv(out, "goods_hops.csv", ["batch_id", "kind", "from_place", "to_place", "to_batch_id", "date", "quantity"], hops)

    # ------------------------------------------------------------------ sentinels
    sentinel = []
    area_of = {p[0]: p[6] for p in places}
    for day in range(DAYS):
        date = (START + dt.timedelta(days=day)).date().isoformat()
        surge = 1.0 + (0.25 * (day - 8) if day >= 9 else 0.0)
        for ph in by_kind["pharmacy"]:
            if ph == by_kind["pharmacy"][2] and day >= 11:
                continue  # a pharmacy that has stopped reporting: silent, not zero
            for cls, base in (("antipyretic", 9), ("cough", 6), ("antiviral", 2), ("antibiotic", 4)):
                lam = base * (surge if cls in ("antipyretic", "cough") else 1.0)
                sentinel.append((ph, area_of[ph], "pharmacy", date, cls, max(0, int(rng.gauss(lam, lam ** 0.5))), None))
        fc = by_kind["fever_clinic"][0]
        visits_fc = max(0, int(rng.gauss(14 * surge, 4)))
        sentinel.append((fc, area_of[fc], "fever_clinic", date, None, visits_fc, 1 if day == 8 else 0))
    write_csv(out, "sentinel.csv", ["place_id", "area_id", "feed", "date", "category", "count", "positives"], sentinel)

    counts = {"areas": len(features), "places": len(places), "persons": len(persons), "visits": len(visits),
              "cases": len(cases), "lab_tests": len(tests)}
    print("sample:", ", ".join(f"{v} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
