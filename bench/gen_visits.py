#!/usr/bin/env python3
"""Deterministic synthetic venue check-in data for chainbreak's import benchmark.

Writes places.csv, persons.csv and visits.csv (sorted by t_in, as a live feed arrives)
plus manifest.json (arguments, counts, sizes and SHA-256 of every file) into --out.
The same arguments and the same numpy version give the same bytes.

Usage: gen_visits.py [--persons N] [--days D] [--seed S] [--start YYYY-MM-DD]
                     [--utc-offset-hours H] --out DIR

The model (see bench/README.md): persons live in residence buildings grouped into
neighbourhoods of about 5,000 people; workers go to a job (mostly an office workplace, anywhere
in the city, heavy-tailed sizes), students to a school near home; commuters check in at
transit stations; everyone runs errands (markets, pharmacies, restaurants, malls, other
venues), mostly at a few favourite places near home, whose popularity is lognormal; a few go
to hospitals, fever clinics, train stations and airports. Days follow local time
(--utc-offset-hours, default +8 for Asia/Shanghai) and weekends differ from weekdays.
The window is [--start 00:00 UTC, + D days).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time

import numpy as np

GENERATOR_VERSION = 1

KINDS = [
    "residence", "workplace", "school", "hospital", "fever_clinic", "pharmacy", "market", "mall",
    "restaurant", "transit_station", "airport", "train_station", "cold_chain_warehouse",
    "quarantine_facility", "other",
]
K = {name: i for i, name in enumerate(KINDS)}
NK = len(KINDS)

# kind: (persons per place, local to a neighbourhood?, popularity lognormal sigma)
PLACE_MODEL = {
    "residence": (40, True, 0.5),
    "workplace": (40, True, 1.6),
    "school": (1000, True, 0.4),
    "hospital": (20000, False, 0.8),
    "fever_clinic": (10000, False, 0.6),
    "pharmacy": (2000, True, 0.7),
    "market": (2500, True, 0.9),
    "mall": (20000, False, 0.9),
    "restaurant": (250, True, 1.1),
    "transit_station": (2500, True, 0.8),
    "airport": (500000, False, 0.3),
    "train_station": (200000, False, 0.6),
    "cold_chain_warehouse": (50000, False, 0.5),
    "quarantine_facility": (100000, False, 0.3),
    "other": (40, True, 1.2),
}
KEY_KINDS = {"school", "hospital", "fever_clinic", "airport", "train_station",
             "cold_chain_warehouse", "quarantine_facility"}
PERSONS_PER_HOOD = 5000

# Dwell time by kind for errands and trips: lognormal median (minutes) and sigma.
DWELL_MEDIAN_MIN = np.array([180, 480, 480, 90, 60, 7, 25, 90, 45, 4, 110, 40, 240, 60, 45], float)
DWELL_SIGMA = np.array([0.9, 0.3, 0.2, 0.7, 0.5, 0.5, 0.5, 0.6, 0.35, 0.5, 0.35, 0.5, 0.4, 0.5, 0.8])
# Share of visits with no check-out, by kind (residence gates and transit gates are often
# scanned on the way in only).
NO_CHECKOUT = np.array([0.18, 0.06, 0.04, 0.06, 0.05, 0.06, 0.06, 0.06, 0.05, 0.16, 0.05,
                        0.08, 0.04, 0.04, 0.06])

# Jobs: kind, share of workers, probability the job is in the worker's own neighbourhood,
# start hour mean/sd, shift length hours mean/sd.
JOBS = [
    ("workplace", 0.790, 0.30, 8.8, 0.7, 8.8, 1.0),
    ("restaurant", 0.040, 0.50, 10.0, 0.6, 10.0, 1.0),
    ("market", 0.030, 0.50, 6.5, 0.8, 9.0, 1.2),
    ("mall", 0.030, 0.00, 9.5, 0.5, 10.0, 1.0),
    ("hospital", 0.030, 0.00, 7.8, 1.5, 9.0, 1.5),
    ("school", 0.025, 0.50, 7.4, 0.3, 9.0, 0.7),
    ("pharmacy", 0.010, 0.50, 8.5, 0.5, 9.5, 1.0),
    ("transit_station", 0.010, 0.30, 6.5, 1.5, 8.5, 1.0),
    ("cold_chain_warehouse", 0.010, 0.00, 6.0, 1.5, 9.0, 1.5),
    ("other", 0.010, 0.50, 9.0, 1.0, 8.5, 1.5),
    ("airport", 0.005, 0.00, 7.0, 2.5, 9.0, 1.5),
    ("train_station", 0.005, 0.00, 7.0, 2.0, 9.0, 1.5),
    ("quarantine_facility", 0.003, 0.00, 8.0, 2.0, 10.0, 2.0),
    ("fever_clinic", 0.002, 0.00, 7.8, 1.0, 9.0, 1.0),
]
WORKER, STUDENT, OTHER = 0, 1, 2
ROLE_SHARES = [0.56, 0.16, 0.28]

# Errands: kind, Poisson rate per person-day [role][weekday=0 / weekend=1], favourites column
# block ("fav" name or None for city-wide weighted), time profile.
ERRANDS = [
    ("market", [[0.22, 0.45], [0.04, 0.15], [0.65, 0.60]], "market", "day"),
    ("pharmacy", [[0.06, 0.08], [0.02, 0.03], [0.14, 0.12]], "pharmacy", "day"),
    ("restaurant", [[0.45, 0.80], [0.20, 0.50], [0.35, 0.50]], "restaurant", "meal"),
    ("mall", [[0.08, 0.40], [0.05, 0.35], [0.10, 0.20]], "mall", "day"),
    ("other", [[0.70, 0.80], [0.50, 0.80], [0.90, 0.75]], "other", "day"),
    ("transit_station", [[0.10, 0.35], [0.08, 0.30], [0.15, 0.15]], "station", "day"),
    ("hospital", [[0.004, 0.004], [0.002, 0.002], [0.010, 0.008]], None, "day"),
    ("fever_clinic", [[0.0015, 0.0015], [0.001, 0.001], [0.002, 0.002]], None, "day"),
    ("train_station", [[0.004, 0.008], [0.002, 0.006], [0.003, 0.004]], None, "day"),
    ("airport", [[0.0015, 0.003], [0.0005, 0.002], [0.001, 0.001]], None, "day"),
]
FAVOURITES = {"market": 2, "pharmacy": 1, "restaurant": 4, "mall": 1, "other": 3, "station": 1}
# Time-of-day profiles: mixtures of (mean hour, sd hours, weight).
PROFILES = {
    "day": [(10.3, 1.6, 0.45), (15.5, 1.8, 0.35), (19.2, 1.1, 0.20)],
    "evening": [(19.2, 1.0, 1.0)],
    "meal": [(12.0, 0.6, 0.40), (18.8, 0.9, 0.60)],
}
HOME_AFTER_WORK = 0.75      # residence check-in on the way back from work or school
HOME_AFTER_ERRAND = 0.30    # residence check-in after an errand
LUNCH_OUT = 0.30            # attending workers who check in at a restaurant for lunch


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2022-03-01", help="first day, YYYY-MM-DD, taken at 00:00 UTC")
    p.add_argument("--utc-offset-hours", type=float, default=8.0,
                   help="local time for daily rhythms (default +8, Asia/Shanghai)")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--chunk-rows", type=int, default=1 << 20, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.persons < 1 or a.days < 1 or a.seed < 0:
        p.error("--persons and --days must be >= 1, --seed >= 0")
    return a


class KindIndex:
    """Places of one kind, grouped by neighbourhood, for weighted sampling."""

    def __init__(self, gidx, hood, weight, n_hoods):
        order = np.lexsort((gidx, hood))
        self.g = gidx[order]
        h = hood[order]
        self.cw = np.cumsum(weight[order])
        self.base = np.concatenate(([0.0], self.cw))
        hs = np.arange(n_hoods)
        self.lo = np.searchsorted(h, hs, "left")
        self.hi = np.searchsorted(h, hs, "right")
        self.n = len(self.g)

    def city(self, rng, n):
        """n places, anywhere, by popularity."""
        i = np.searchsorted(self.cw, rng.random(n) * self.cw[-1], "right")
        return self.g[np.minimum(i, self.n - 1)]

    def local(self, rng, hoods):
        """One place per entry of hoods, in that neighbourhood (anywhere when it has none)."""
        lo, hi = self.lo[hoods], self.hi[hoods]
        empty = lo == hi
        lo = np.where(empty, 0, lo)
        hi = np.where(empty, self.n, hi)
        a, b = self.base[lo], self.base[hi]
        i = np.searchsorted(self.cw, a + rng.random(len(hoods)) * (b - a), "right")
        return self.g[np.clip(i, lo, hi - 1)]


def width_for(n):
    return max(7, len(str(n)))


def put_digits(buf, col, values, width):
    """Writes values (non-negative ints) as zero-padded ASCII into buf[:, col:col+width]."""
    v = values.astype(np.uint64, copy=True)
    ten = np.uint64(10)
    for j in range(width - 1, -1, -1):
        q = v // ten
        buf[:, col + j] = (v - q * ten).astype(np.uint8) + 48
        v = q


def build_world(rng, n_persons):
    n_hoods = max(1, round(n_persons / PERSONS_PER_HOOD))
    kind_l, hood_l, weight_l = [], [], []
    for name in KINDS:
        per, local, sigma = PLACE_MODEL[name]
        n = max(1, round(n_persons / per))
        if local:
            # every neighbourhood gets one before any gets a second
            first = np.arange(min(n, n_hoods))
            rest = rng.integers(0, n_hoods, n - len(first))
            hood = np.concatenate((first, rest))
        else:
            hood = np.full(n, n_hoods)          # not in any neighbourhood: city-wide only
        kind_l.append(np.full(n, K[name], np.int8))
        hood_l.append(hood)
        weight_l.append(rng.lognormal(0.0, sigma, n))
    kind = np.concatenate(kind_l)
    hood = np.concatenate(hood_l).astype(np.int32)
    weight = np.concatenate(weight_l)
    n_places = len(kind)
    # ids are assigned in a random order: an id says nothing about kind or neighbourhood
    perm = rng.permutation(n_places)
    kind, hood, weight = kind[perm], hood[perm], weight[perm]
    key_place = np.isin(kind, [K[k] for k in KEY_KINDS])
    big_market = (kind == K["market"]) & (rng.random(n_places) < 0.15)   # wholesale markets
    key_place |= big_market
    index = {}
    for name in KINDS:
        g = np.nonzero(kind == K[name])[0].astype(np.int32)
        index[name] = KindIndex(g, hood[g], weight[g], n_hoods + 1)

    # persons
    N = n_persons
    residence = index["residence"].city(rng, N)
    home = hood[residence]
    role = rng.choice(3, size=N, p=ROLE_SHARES).astype(np.int8)
    job_place = np.full(N, -1, np.int32)
    job_kind = np.full(N, -1, np.int8)
    workers = np.nonzero(role == WORKER)[0]
    shares = np.array([j[1] for j in JOBS])
    jk = rng.choice(len(JOBS), size=len(workers), p=shares / shares.sum())
    for j, (name, _share, p_local, *_rest) in enumerate(JOBS):
        w = workers[jk == j]
        loc = rng.random(len(w)) < p_local
        places = np.empty(len(w), np.int32)
        places[loc] = index[name].local(rng, home[w[loc]])
        places[~loc] = index[name].city(rng, int((~loc).sum()))
        job_place[w] = places
        job_kind[w] = j
    students = np.nonzero(role == STUDENT)[0]
    job_place[students] = index["school"].local(rng, home[students])
    has_job = job_place >= 0
    job_hood = np.where(has_job, hood[np.maximum(job_place, 0)], home)
    far = job_hood != home
    # a job at a city-wide place (hospital, airport...) is in some neighbourhood all the same
    job_hood = np.where(job_hood >= n_hoods, rng.integers(0, n_hoods, N), job_hood)
    commuter = has_job & (rng.random(N) < np.where(far, 0.65, 0.08))
    home_station = index["transit_station"].local(rng, home)
    work_station = index["transit_station"].local(rng, job_hood)
    fav = {}
    for block, m in FAVOURITES.items():
        if block == "station":
            fav[block] = home_station[:, None]
            continue
        idx = index[block]
        cols = []
        for c in range(m):
            if block == "restaurant" and c == m - 1:
                cols.append(idx.local(rng, job_hood))  # near work
            elif block == "mall":
                cols.append(idx.city(rng, N))
            else:
                cols.append(idx.local(rng, home))
        fav[block] = np.stack(cols, axis=1)
    return dict(n_hoods=n_hoods, kind=kind, hood=hood, key_place=key_place, index=index,
                residence=residence, home=home, role=role, job_place=job_place,
                job_kind=job_kind, commuter=commuter, home_station=home_station,
                work_station=work_station, fav=fav)


def sample_profile(rng, name, n):
    comps = PROFILES[name]
    w = np.array([c[2] for c in comps])
    which = rng.choice(len(comps), size=n, p=w / w.sum())
    mean = np.array([c[0] for c in comps])[which]
    sd = np.array([c[1] for c in comps])[which]
    return mean + sd * rng.standard_normal(n)


def dwell_minutes(rng, kinds):
    return DWELL_MEDIAN_MIN[kinds] * np.exp(DWELL_SIGMA[kinds] * rng.standard_normal(len(kinds)))


def day_events(rng, W, weekend):
    """One local day: (person, place, t_in seconds since local midnight, dwell seconds)."""
    N = len(W["role"])
    role, kind = W["role"], W["kind"]
    persons, places, tin_h, dur_min = [], [], [], []

    def add(p, l, t_hours, d_minutes):
        persons.append(p.astype(np.int32))
        places.append(l.astype(np.int32))
        tin_h.append(t_hours)
        dur_min.append(d_minutes)

    def home_return(p, t_hours, prob):
        r = rng.random(len(p)) < prob
        p, t = p[r], t_hours[r] + rng.uniform(0.2, 1.2, int(r.sum()))
        evening = t >= 19.0
        d = np.where(evening, 600.0 + 120.0 * rng.standard_normal(len(p)),
                     dwell_minutes(rng, np.zeros(len(p), np.int64)))
        add(p, W["residence"][p], t, d)

    # work and school
    wd = 1 if weekend else 0
    p_att = np.where(role == WORKER, (0.93, 0.20)[wd], np.where(role == STUDENT, (0.97, 0.03)[wd], 0.0))
    att = np.nonzero(rng.random(N) < p_att)[0]
    jk = W["job_kind"][att]
    is_student = jk < 0
    jk0 = np.maximum(jk, 0)
    start_mean = np.where(is_student, 7.6, np.array([j[3] for j in JOBS])[jk0])
    start_sd = np.where(is_student, 0.25, np.array([j[4] for j in JOBS])[jk0])
    len_mean = np.where(is_student, 8.6, np.array([j[5] for j in JOBS])[jk0])
    len_sd = np.where(is_student, 0.5, np.array([j[6] for j in JOBS])[jk0])
    arrive = start_mean + start_sd * rng.standard_normal(len(att))
    shift = np.clip(len_mean + len_sd * rng.standard_normal(len(att)), 1.5, 14.0)
    add(att, W["job_place"][att], arrive, shift * 60.0)
    leave = arrive + shift
    c = W["commuter"][att]
    pc = att[c]
    add(pc, W["home_station"][pc], arrive[c] - rng.uniform(0.3, 1.2, len(pc)),
        dwell_minutes(rng, np.full(len(pc), K["transit_station"])))
    add(pc, W["work_station"][pc], leave[c] + rng.uniform(0.05, 0.4, len(pc)),
        dwell_minutes(rng, np.full(len(pc), K["transit_station"])))
    home_return(att, leave + np.where(c, 0.6, 0.2), HOME_AFTER_WORK)
    # lunch out (workers only)
    lw = att[(~is_student) & (rng.random(len(att)) < LUNCH_OUT)]
    add(lw, W["fav"]["restaurant"][lw, -1], 12.0 + 0.4 * rng.standard_normal(len(lw)),
        dwell_minutes(rng, np.full(len(lw), K["restaurant"])))
    attended = np.zeros(N, bool)
    attended[att] = True

    # errands
    for name, rates, block, profile in ERRANDS:
        lam = np.array([r[wd] for r in rates])[role]
        n_each = rng.poisson(lam)
        p = np.repeat(np.arange(N, dtype=np.int32), n_each)
        n = len(p)
        if n == 0:
            continue
        if block is None:
            l = W["index"][name].city(rng, n)
        else:
            f = W["fav"][block]
            u = rng.random(n)
            l = f[p, rng.integers(0, f.shape[1], n)]
            loc = (u >= 0.80) & (u < 0.95)
            l[loc] = W["index"][name].local(rng, W["home"][p[loc]])
            cw = u >= 0.95
            l[cw] = W["index"][name].city(rng, int(cw.sum()))
        if profile == "day":
            t = np.where(attended[p], sample_profile(rng, "evening", n), sample_profile(rng, "day", n))
        else:
            t = sample_profile(rng, profile, n)
        d = dwell_minutes(rng, kind[l].astype(np.int64))
        add(p, l, t, d)
        home_return(p, t + d / 60.0, HOME_AFTER_ERRAND)

    person = np.concatenate(persons)
    place = np.concatenate(places)
    tin = np.round(np.concatenate(tin_h) * 3600.0).astype(np.int64)
    dur = np.maximum(60, np.round(np.concatenate(dur_min) * 60.0)).astype(np.int64)
    keep = (tin >= 0) & (tin < 86400)
    return person[keep], place[keep], tin[keep], dur[keep]


class HashingWriter:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.h = hashlib.sha256()
        self.bytes = 0

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.bytes += len(b)

    def close(self):
        self.f.close()
        return {"bytes": self.bytes, "sha256": self.h.hexdigest()}


def main(argv=None):
    a = parse_args(argv)
    t0 = time.perf_counter()
    start = dt.datetime.strptime(a.start, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    start_ts = int(start.timestamp())
    end_ts = start_ts + a.days * 86400
    offset = int(round(a.utc_offset_hours * 3600))
    if start_ts - offset - 86400 < 10**9 or end_ts + 86400 * 2 >= 10**10:
        sys.exit("gen_visits: --start must keep timestamps to 10 digits (2001-09-09 .. 2286-11-20)")
    os.makedirs(a.out, exist_ok=True)

    W = build_world(np.random.default_rng(np.random.SeedSequence([a.seed, 0])), a.persons)
    n_places = len(W["kind"])
    wl, wp = width_for(n_places), width_for(a.persons)
    files = {}

    # places.csv
    hw = HashingWriter(os.path.join(a.out, "places.csv"))
    hw.write(b"id,kind,key_place\n")
    kinds = W["kind"]
    kp = W["key_place"]
    hw.write("".join(f"L{i + 1:0{wl}d},{KINDS[kinds[i]]},{'true' if kp[i] else 'false'}\n"
                     for i in range(n_places)).encode())
    files["places.csv"] = dict(rows=n_places, **hw.close())

    # persons.csv (fixed width: P<id>,L<residence>)
    hw = HashingWriter(os.path.join(a.out, "persons.csv"))
    hw.write(b"id,residence\n")
    width = 1 + wp + 1 + 1 + wl + 1
    for s in range(0, a.persons, a.chunk_rows):
        e = min(a.persons, s + a.chunk_rows)
        buf = np.empty((e - s, width), np.uint8)
        buf[:, 0] = ord("P")
        put_digits(buf, 1, np.arange(s + 1, e + 1), wp)
        buf[:, 1 + wp] = ord(",")
        buf[:, 2 + wp] = ord("L")
        put_digits(buf, 3 + wp, W["residence"][s:e].astype(np.int64) + 1, wl)
        buf[:, width - 1] = ord("\n")
        hw.write(buf.tobytes())
    files["persons.csv"] = dict(rows=a.persons, **hw.close())

    # visits.csv: one local day at a time; days are disjoint in t_in, so sorting each day
    # sorts the file.
    hw = HashingWriter(os.path.join(a.out, "visits.csv"))
    hw.write(b"person_id,place_id,t_in,t_out\n")
    c_tin = 1 + wp + 1 + 1 + wl + 1
    c_tout = c_tin + 11
    width = c_tout + 11
    rows = no_out = 0
    per_kind = np.zeros(NK, np.int64)
    t_min = t_max = None
    start_date = start.date()
    for d in range(-1, a.days + 1):
        frame = start_ts + d * 86400 - offset
        if frame + 86400 <= start_ts or frame >= end_ts:
            continue
        weekend = (start_date + dt.timedelta(days=d)).weekday() >= 5
        rng = np.random.default_rng(np.random.SeedSequence([a.seed, 1, d + 2]))
        person, place, tin, dur = day_events(rng, W, weekend)
        tin += frame
        keep = (tin >= start_ts) & (tin < end_ts)
        person, place, tin, dur = person[keep], place[keep], tin[keep], dur[keep]
        k = W["kind"][place].astype(np.int64)
        missing = rng.random(len(tin)) < NO_CHECKOUT[k]
        order = np.argsort(tin, kind="stable")
        person, place, tin, dur, missing = person[order], place[order], tin[order], dur[order], missing[order]
        per_kind += np.bincount(k, minlength=NK)
        rows += len(tin)
        no_out += int(missing.sum())
        if len(tin):
            t_min = int(tin[0]) if t_min is None else t_min
            t_max = int(tin[-1])
        for s in range(0, len(tin), a.chunk_rows):
            e = min(len(tin), s + a.chunk_rows)
            n = e - s
            buf = np.empty((n, width), np.uint8)
            buf[:, 0] = ord("P")
            put_digits(buf, 1, person[s:e].astype(np.int64) + 1, wp)
            buf[:, 1 + wp] = ord(",")
            buf[:, 2 + wp] = ord("L")
            put_digits(buf, 3 + wp, place[s:e].astype(np.int64) + 1, wl)
            buf[:, c_tin - 1] = ord(",")
            put_digits(buf, c_tin, tin[s:e], 10)
            buf[:, c_tout - 1] = ord(",")
            put_digits(buf, c_tout, tin[s:e] + dur[s:e], 10)
            buf[:, width - 1] = ord("\n")
            m = missing[s:e]
            if m.any():
                mask = np.ones((n, width), bool)
                mask[np.nonzero(m)[0][:, None], np.arange(c_tout, c_tout + 10)] = False
                hw.write(buf[mask].tobytes())
            else:
                hw.write(buf.tobytes())
        print(f"gen_visits: day {d:>3} ({'weekend' if weekend else 'weekday'}): {len(tin):,} visits, "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    files["visits.csv"] = dict(rows=rows, **hw.close())
    seconds = time.perf_counter() - t0

    manifest = {
        "generator": "bench/gen_visits.py",
        "generator_version": GENERATOR_VERSION,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "args": {"persons": a.persons, "days": a.days, "seed": a.seed, "start": a.start,
                 "utc_offset_hours": a.utc_offset_hours},
        "window_utc": [start_ts, end_ts],
        "t_in_min": t_min,
        "t_in_max": t_max,
        "places_by_kind": {KINDS[i]: int((W["kind"] == i).sum()) for i in range(NK)},
        "key_places": int(W["key_place"].sum()),
        "visits_by_kind": {KINDS[i]: int(per_kind[i]) for i in range(NK)},
        "visits_without_t_out": no_out,
        "visits_per_person_day": rows / (a.persons * a.days),
        "files": files,
        "seconds": round(seconds, 2),
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    v = files["visits.csv"]
    print(f"gen_visits: {a.out}: {n_places:,} places, {a.persons:,} persons, {rows:,} visits "
          f"({rows / (a.persons * a.days):.2f} per person-day, {no_out / max(rows, 1):.1%} without t_out), "
          f"visits.csv {v['bytes']:,} bytes, {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
