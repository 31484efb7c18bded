"""The trace benchmark's references agree: bench/trace_oracle.py (brute force) against
bench/trace_duckdb.py (bench/trace_venue_overlap.sql), on hand-made cases with known answers and on
seeded random small worlds; and bench/summarize_trace.py reads chainbreak's output.

Run from the repository root or bench/ (needs duckdb: bench/.venv-trace, see bench/README.md):

    bench/.venv-trace/bin/python -m unittest discover -s bench -p 'test_trace*.py' -v
"""

import csv
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import summarize_trace  # noqa: E402
import trace_common as tc  # noqa: E402
import trace_digest  # noqa: E402
import trace_duckdb  # noqa: E402
import trace_oracle  # noqa: E402

FIXTURE_PROFILE = os.path.join(HERE, "testdata", "trace", "open_visits.toml")
B = 1_700_000_000          # times below are offsets from B
N_RANDOM_WORLDS = 60


def write_world(d, places, visits, index, profile_text=None):
    """places: [(id, kind)]; visits: [(person, place, t_in, t_out or None)]; index: [ids]."""
    with open(os.path.join(d, "places.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "kind", "key_place"])
        for pid, kind in places:
            w.writerow([pid, kind, "false"])
    with open(os.path.join(d, "visits.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["person_id", "place_id", "t_in", "t_out"])
        for p, l, t_in, t_out in visits:
            w.writerow([p, l, t_in, "" if t_out is None else t_out])
    with open(os.path.join(d, "index.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{i}\n" for i in index))
    profile = FIXTURE_PROFILE
    if profile_text is not None:
        profile = os.path.join(d, "profile.toml")
        with open(profile, "w") as f:
            f.write(profile_text)
    return {"visits": os.path.join(d, "visits.csv"), "places": os.path.join(d, "places.csv"),
            "persons_file": os.path.join(d, "index.txt"), "profile": profile}


def both(paths, w0, w1, m):
    close, secondary = trace_oracle.run(paths["visits"], paths["places"], paths["persons_file"], w0, w1, m,
                                        paths["profile"])
    out, d_close, d_secondary = trace_duckdb.run(paths["visits"], paths["places"], paths["persons_file"],
                                                 w0, w1, m, paths["profile"], runs=2)
    return (close, secondary), (out, d_close, d_secondary)


class HandMade(unittest.TestCase):
    """One small world whose answer was worked out by hand (bench/README.md, "The rule")."""

    # window [B+1000, B+5000), m = 900; the fixture profile: restaurant 45 min, residence 600
    # min, other kinds not listed -> 60 min.
    PLACES = [("L1", "restaurant"), ("L2", "residence"), ("L3", "other"), ("L4", "restaurant"),
              ("L5", "market")]
    VISITS = [
        # index A: L1 crosses W0 -> [1000, 2000); L3 crosses W1 -> [4500, 5000);
        # L2 clips to nothing ([900, 1000) -> empty) and is dropped
        ("A", "L1", 0, 2000), ("A", "L3", 4500, 6000), ("A", "L2", 900, 1000),
        # index X, also exposed to A at L1 (1000 s): stays out of the contacts
        ("X", "L1", 1000, 3000), ("X", "L4", 4000, 5000), ("X", "L2", 3500, 4400),
        # C1: 900 s with A' at L1, exactly the threshold -> close, e = 1100; the row twice
        ("C1", "L1", 1100, 2000), ("C1", "L1", 1100, 2000),
        # N1: 1899 s with A unclipped, 899 with A' and with X' -> nothing
        ("N1", "L1", 0, 1899),
        # C2: 900 s with A unclipped at L3, 500 s with A' (clipped at W1) -> nothing
        ("C2", "L3", 4000, 5400),
        # O1: open at a restaurant -> [1500, 4200): 200 s with X' at L4 -> nothing (the default
        # dwell of 60 min would have made it 1000 s)
        ("O1", "L4", 1500, None),
        # O2: open at a residence -> [3000, 39000): 900 s with X' [3500, 4400) -> close, e = 3500
        ("O2", "L2", 3000, None),
        # C1's visits at L3: [0, 1500) clips to [e=1100, 1500); [1200, 3000) stays
        ("C1", "L3", 0, 1500), ("C1", "L3", 1200, 3000),
        # S1: 300 s with C1's [1200, 3000), 400 s with C1's clipped [1100, 1500) -> nothing
        # (1400 s had C1's visit not been clipped to e)
        ("S1", "L3", 0, 1500),
        # S2: 900 s with C1's [1200, 3000) -> secondary
        ("S2", "L3", 2000, 2900),
        # O2 is also exposed to C1 at L3 (1000 s): stays tier 1
        ("O2", "L3", 1500, 2500),
        # S3: 400 s with X' at L2 (not close), 900 s with O2's [3500, 5000) -> secondary
        ("S3", "L2", 4000, 4900),
        # T1: exposed only to S2 (a secondary contact), 1000 s at L4, and to O1 who is no
        # contact: depth 2 stops -> nothing
        ("S2", "L4", 2000, 3000), ("T1", "L4", 2000, 3000),
        # Z: a zero-length visit inside A's L5 stay; Y a visit with A at L5 after W1
        ("A", "L5", 1000, 1000), ("Z", "L5", 1000, 1000), ("Y", "L5", 5000, 7000), ("A", "L5", 4900, 7000),
    ]
    INDEX = ["A", "X", "GHOST"]   # GHOST has no visits

    def test_hand_made(self):
        expect_close = {"C1": B + 1100, "O2": B + 3500}
        expect_secondary = {"S2", "S3"}
        with tempfile.TemporaryDirectory() as d:
            visits = [(p, l, B + s, None if e is None else B + e) for p, l, s, e in self.VISITS]
            paths = write_world(d, self.PLACES, visits, self.INDEX)
            (close, secondary), (out, d_close, d_secondary) = both(paths, B + 1000, B + 5000, 900)
        self.assertEqual(close, expect_close)
        self.assertEqual(secondary, expect_secondary)
        self.assertEqual(sorted(d_close), sorted(expect_close))
        self.assertEqual(sorted(d_secondary), sorted(expect_secondary))
        text = "1\tC1\n1\tO2\n2\tS2\n2\tS3\n"
        self.assertEqual(out["hash"], hashlib.sha256(text.encode()).hexdigest())
        self.assertEqual(tc.result_hash(close, secondary), out["hash"])
        self.assertEqual((out["close"], out["secondary"]), (2, 2))
        self.assertEqual(out["index_persons"], 3)
        self.assertEqual(out["index_persons_with_visits"], 2)

    def test_zero_length_clip_with_zero_overlap(self):
        # m = 0: a clipped visit that is empty is dropped, so touching it is no exposure;
        # touching a kept one is (min - max = 0 >= 0).
        places = [("L1", "other"), ("L2", "other")]
        visits = [("A", "L1", B + 900, B + 1000), ("Z", "L1", B + 500, B + 1000),
                  ("A", "L2", B + 1000, B + 2000), ("Q", "L2", B + 2000, B + 2500),
                  ("R", "L2", B + 2000, B + 2000)]
        with tempfile.TemporaryDirectory() as d:
            paths = write_world(d, places, visits, ["A"])
            (close, secondary), (out, d_close, _) = both(paths, B + 1000, B + 5000, 0)
        self.assertEqual(close, {"Q": B + 2000, "R": B + 2000})
        self.assertEqual(secondary, set())
        self.assertEqual(sorted(d_close), ["Q", "R"])

    def test_bytewise_order(self):
        ids = ["b", "B", "a10", "a9", "Ü", "Z"]
        lines = b"".join(tc.result_lines(ids, ["x"]))
        self.assertEqual(lines, "1\tB\n1\tZ\n1\ta10\n1\ta9\n1\tb\n1\tÜ\n2\tx\n".encode())
        self.assertEqual(tc.result_hash([], []), hashlib.sha256(b"").hexdigest())

    def test_profile_without_open_visits(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "p.toml")
            with open(p, "w") as f:
                f.write('name = "x"\n')
            with self.assertRaises(tc.InputError):
                tc.read_dwell(p)

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            visits = [(p, l, B + s, None if e is None else B + e) for p, l, s, e in HandMade.VISITS]
            paths = write_world(d, HandMade.PLACES, visits, HandMade.INDEX)
            args = ["--visits", paths["visits"], "--places", paths["places"], "--persons-file",
                    paths["persons_file"], "--from", str(B + 1000), "--to", str(B + 5000),
                    "--min-overlap-seconds", "900", "--profile", paths["profile"]]
            o = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "trace_oracle.py"), *args],
                                          check=True, capture_output=True, text=True).stdout)
            contacts = os.path.join(d, "contacts.tsv")
            k = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "trace_duckdb.py"), *args,
                                           "--runs", "3", "--contacts-out", contacts],
                                          check=True, capture_output=True, text=True).stdout)
            with open(contacts, "rb") as f:
                text = f.read()
        self.assertEqual(o["hash"], k["hash"])
        self.assertEqual(hashlib.sha256(text).hexdigest(), k["hash"])
        self.assertEqual(len(k["query_seconds"]), 3)
        self.assertEqual(k["threads"], 2)


TEST_PROFILE = """
[open_visits]
default_dwell_minutes = 20
[[open_visits.places]]
kind = "residence"
dwell_minutes = 60
[[open_visits.places]]
kind = "restaurant"
dwell_minutes = 15
[[open_visits.places]]
kind = "transit_station"
dwell_minutes = 0
"""
KINDS = ["residence", "restaurant", "transit_station", "other", "market"]
IDS = ["P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "p1", "p10",
       "p2", "Q", "QQ", "Ü3", "x-5", "P001", "P1", "Z9", "a", "b"]


def random_world(seed):
    """A small world on a 5-minute grid, so that overlaps land exactly on the threshold often."""
    r = random.Random(seed)
    step = 300
    persons = r.sample(IDS, r.randint(3, len(IDS)))
    n_places = r.randint(1, 6)
    places = [(f"L{i}", r.choice(KINDS)) for i in range(n_places)]
    place_ids = [p for p, _ in places]
    if r.random() < 0.3:
        place_ids.append("L_unlisted")      # a place missing from places.csv: default dwell
    horizon = 48
    visits = []
    for _ in range(r.randint(5, 90)):
        t_in = B + r.randint(0, horizon) * step
        dur = r.choice([0, 0, 1, 2, 3, 3, 3, 4, 6, 8, 12, 24]) * step + r.choice([0, 0, 0, 0, -1, 1])
        dur = max(0, dur)
        t_out = None if r.random() < 0.2 else t_in + dur
        visits.append((r.choice(persons), r.choice(place_ids), t_in, t_out))
    for _ in range(r.randint(0, 5)):         # duplicates
        if visits:
            visits.append(r.choice(visits))
    r.shuffle(visits)                        # any order
    index = r.sample(persons, r.randint(1, min(4, len(persons))))
    if r.random() < 0.2:
        index.append("NOBODY")
    w0 = B + r.randint(0, horizon // 2) * step + r.choice([0, 0, 0, 7])
    w1 = w0 + r.randint(1, horizon) * step
    m = r.choice([900, 900, 900, 900, 600, 300, 0, 1200])
    return places, visits, index, w0, w1, m


class RandomWorlds(unittest.TestCase):
    def test_random_worlds(self):
        nonempty = tiers2 = 0
        for seed in range(N_RANDOM_WORLDS):
            places, visits, index, w0, w1, m = random_world(seed)
            with self.subTest(seed=seed), tempfile.TemporaryDirectory() as d:
                paths = write_world(d, places, visits, index, TEST_PROFILE)
                (close, secondary), (out, d_close, d_secondary) = both(paths, w0, w1, m)
                self.assertEqual(sorted(d_close), sorted(close))
                self.assertEqual(sorted(d_secondary), sorted(secondary))
                self.assertEqual(out["hash"], tc.result_hash(close, secondary))
                self.assertFalse(set(close) & set(index))
                self.assertFalse(set(secondary) & (set(close) | set(index)))
                nonempty += bool(close)
                tiers2 += bool(secondary)
        # the worlds are not all trivial
        self.assertGreater(nonempty, N_RANDOM_WORLDS // 2)
        self.assertGreater(tiers2, N_RANDOM_WORLDS // 5)


class ChainbreakOutput(unittest.TestCase):
    """summarize_trace.py reads `chainbreak trace --format json --timings` (a fake run here)."""

    def test_parse_fixture(self):
        d = os.path.join(HERE, "testdata", "trace")
        r = summarize_trace.parse_chainbreak(os.path.join(d, "chainbreak-stdout.json"),
                                             os.path.join(d, "chainbreak-stderr.txt"))
        self.assertEqual(r["hash"], "8d1e7c0e9d8c6b2a3f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a")
        self.assertEqual(r["close"], 2)
        self.assertEqual(r["secondary"], 2)
        self.assertEqual(r["query_seconds"], [0.0021, 0.0019, 0.0020, 0.0018, 0.0022])
        self.assertAlmostEqual(r["query_median_seconds"], 0.0020)
        self.assertEqual(r["load_seconds"], 1.5)
        self.assertEqual(r["index_bytes"], 2000)
        self.assertEqual(r["visits"], 100)
        # the fixture's contacts hash to the hand-made case's answer
        self.assertEqual(r["contacts_hash"], hashlib.sha256(b"1\tC1\n1\tO2\n2\tS2\n2\tS3\n").hexdigest())

    def test_digest_in_small_chunks(self):
        with open(os.path.join(HERE, "testdata", "trace", "chainbreak-stdout.json"), "rb") as f:
            data = f.read()
        whole = trace_digest.digest(io.BytesIO(data))
        self.assertEqual([(t["tier"], t["count"], t["listed"]) for t in whole["tiers"]], [(1, 2, 2), (2, 2, 2)])
        self.assertEqual(whole["bytes"], len(data))
        keep = trace_digest.KEEP
        try:
            trace_digest.KEEP = 100
            for chunk in (1, 2, 3, 7, 64, 1000):
                self.assertEqual(trace_digest.digest(io.BytesIO(data), chunk=chunk), whole, chunk)
        finally:
            trace_digest.KEEP = keep

    def test_duckdb_progress_of_a_stopped_run(self):
        with tempfile.TemporaryDirectory() as d:
            err = os.path.join(d, "err")
            with open(err, "w") as f:
                f.write("trace_duckdb: load_seconds 58.4 visits 55624605\n"
                        "trace_duckdb: run 1 query_seconds 23.5 close 2780 secondary 670724\n")
            r = summarize_trace.duckdb_progress(err)
        self.assertEqual(r, {"query_seconds_done": [23.5], "load_seconds": 58.4, "visits": 55624605,
                             "close": 2780, "secondary": 670724})

    def test_parse_errors(self):
        with tempfile.TemporaryDirectory() as d:
            out, err = os.path.join(d, "out"), os.path.join(d, "err")
            with open(out, "w") as f:
                f.write("not json")
            with open(err, "w") as f:
                f.write("log line\n")
            r = summarize_trace.parse_chainbreak(out, err)
        self.assertIn("error", r)


if __name__ == "__main__":
    unittest.main()
