#!/usr/bin/env python3
"""The page benchmark's driver (called by bench/pages.sh): every list page, first and deep, under
a load generator (wrk) on 127.0.0.1 while visits are ingested through the API at a steady rate.

For each URL and run: `wrk` for `--seconds` seconds with `--connections` connections as a
district-scoped user (bearer token); the server-side latency of every request it answered is
read from the server's JSON request log (`latency_ms`, from receiving the request to the
response), the client-side p95 from wrk. Meanwhile a thread posts the city's visits through
`POST /api/v1/visits:batch` at `--ingest-rate` visits a second. Writes `raw.json` (every run)
into `--out`; `summarize_pages.py` turns it into the report.
"""

import argparse
import csv
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("LUA p50=%d p95=%d p99=%d max=%d requests=%d errors=%d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def percentile(values, p):
    """The p-th percentile by the nearest-rank method (no interpolation)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


SCOPE = """WITH RECURSIVE sub(k) AS (SELECT key FROM areas WHERE id = :area
              UNION ALL SELECT a.key FROM areas a JOIN sub ON a.parent = sub.k),
  subplaces(k) AS (SELECT key FROM places WHERE area IN sub)"""


def cursors(store, area):
    """Deep keyset cursors: for each list, the middle record of the district's own records in
    that order (a page the user reaches by following `next`), read from the store (read-only)."""
    c = sqlite3.connect(f"file:{store}?mode=ro", uri=True)

    def middle(sql):
        rows = c.execute(SCOPE + " " + sql, {"area": area}).fetchall()
        return rows[len(rows) // 2]

    inside = "EXISTS (SELECT 1 FROM persons x WHERE x.key = k.person AND x.residence IN subplaces)"
    out = {}
    for sort, column in [
        ("id", "''"),
        ("reported", "k.reported_at"),
        ("onset", "COALESCE(k.onset, '')"),
        ("classification", "k.classification"),
    ]:
        key, case_id = middle(f"SELECT {column}, k.id FROM cases k WHERE {inside} ORDER BY {column}, k.id")
        out[sort] = f"{key}|{case_id}"
    key, case_id = middle(
        f"SELECT COALESCE(k.onset, ''), k.id FROM cases k WHERE {inside} AND k.classification = 'suspected' "
        "ORDER BY COALESCE(k.onset, ''), k.id"
    )
    out["suspected_onset"] = f"{key}|{case_id}"
    out["middle_case"] = middle(f"SELECT k.id FROM cases k WHERE {inside} ORDER BY k.id")[0]
    out["middle_person"] = middle("SELECT p.id FROM persons p WHERE p.residence IN subplaces ORDER BY p.id")[0]
    out["middle_place"] = middle("SELECT p.id FROM places p WHERE p.area IN sub ORDER BY p.id")[0]
    out["middle_episode"] = middle(
        "SELECT e.id FROM episodes e WHERE EXISTS (SELECT 1 FROM persons x WHERE x.key = e.person "
        "AND x.residence IN subplaces) ORDER BY e.id"
    )[0]
    return out


def urls(c):
    q = urllib.parse.quote
    pages = []
    for sort in ["reported", "onset", "classification", "id"]:
        for order in ["desc", "asc"]:
            base = f"/cases?lang=en&sort={sort}&order={order}"
            pages.append((f"cases {sort} {order} first", base))
            pages.append((f"cases {sort} {order} deep", f"{base}&after={q(c[sort])}"))
    pages.append(("cases confirmed reported desc first", "/cases?lang=en&classification=confirmed"))
    pages.append(
        ("cases suspected onset asc deep", f"/cases?lang=en&classification=suspected&sort=onset&order=asc&after={q(c['suspected_onset'])}")
    )
    pages += [
        ("api cases first", "/api/v1/cases?limit=100"),
        ("api cases deep", f"/api/v1/cases?limit=100&after={q(c['middle_case'])}"),
        ("api persons first", "/api/v1/persons?limit=100"),
        ("api persons deep", f"/api/v1/persons?limit=100&after={q(c['middle_person'])}"),
        ("api places first", "/api/v1/places?limit=100"),
        ("api places deep", f"/api/v1/places?limit=100&after={q(c['middle_place'])}"),
        ("api episodes first", "/api/v1/episodes?limit=100"),
        ("api episodes deep", f"/api/v1/episodes?limit=100&after={q(c['middle_episode'])}"),
        ("api lab-tests first", "/api/v1/lab-tests?limit=100"),
        ("api alerts first", "/api/v1/alerts?limit=100"),
        ("api zones first", "/api/v1/zones?limit=100"),
        ("api proposals first", "/api/v1/proposals?limit=100"),
        ("api requests first", "/api/v1/requests?limit=100"),
        ("overview", "/dashboard?lang=en"),
        ("board", "/board?lang=en"),
        ("zones page", "/zones?lang=en"),
        ("surveillance", "/surveillance?lang=en"),
        ("chains", "/chains?lang=en"),
        ("public page", "/public?lang=en"),
        ("public summary", "/api/v1/public/summary"),
    ]
    return pages


def rfc3339(t):
    """The simulator writes Unix seconds; the API takes RFC 3339."""
    import datetime as dt

    return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ingest(threading.Thread):
    """Posts the visits file through the API at a steady rate until stopped."""

    def __init__(self, port, token, visits_csv, rate, batch):
        super().__init__(daemon=True)
        self.port, self.token, self.visits_csv, self.rate, self.batch = port, token, visits_csv, rate, batch
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.batch_ms = []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        interval = self.batch / self.rate
        next_at = time.monotonic()
        with open(self.visits_csv, newline="") as f:
            reader = csv.DictReader(f)
            while not self.stop.is_set():
                rows = []
                for r in reader:
                    v = {"person_id": r["person_id"], "place_id": r["place_id"], "t_in": rfc3339(r["t_in"])}
                    if r.get("t_out"):
                        v["t_out"] = rfc3339(r["t_out"])
                    rows.append(v)
                    if len(rows) == self.batch:
                        break
                if not rows:
                    f.seek(0)
                    reader = csv.DictReader(f)
                    continue
                body = json.dumps({"visits": rows})
                start = time.monotonic()
                conn.request("POST", "/api/v1/visits:batch", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                self.batch_ms.append((time.monotonic() - start) * 1e3)
                if resp.status == 200:
                    self.sent += len(rows)
                else:
                    self.failed += 1
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)


def server_latencies(log_path, offset, route):
    """The `latency_ms` of the GET requests of `route` logged after `offset`, and the new offset."""
    out = []
    with open(log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = offset + len(data)
    for line in data.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        fields = e.get("fields", e)
        if fields.get("message") != "request" or fields.get("route") != route or fields.get("method") != "GET":
            continue
        out.append((float(fields["latency_ms"]), int(fields["status"])))
    return out, end


def route_of(path):
    p = path.split("?")[0]
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--ingest-token", required=True)
    ap.add_argument("--server-log", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--store", required=True, help="the store the server serves (read here, read-only)")
    ap.add_argument("--area", required=True, help="the district of the benchmark's user")
    ap.add_argument("--visits-csv", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--ingest-rate", type=float, default=1000.0)
    ap.add_argument("--ingest-batch", type=int, default=500)
    ap.add_argument("--only", default="", help="run only the URLs whose name contains this")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    c = cursors(a.store, a.area)
    pages = [p for p in urls(c) if a.only in p[0]]
    lua = os.path.join(a.out, "p95.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)

    # Every page answers before the load starts (a wrong URL fails here, not in the report).
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    for name, path in pages:
        conn.request("GET", path, headers={"Authorization": f"Bearer {a.token}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"{name}: GET {path} answered {resp.status}: {body[:300]!r}")

    ingest = Ingest(a.port, a.ingest_token, a.visits_csv, a.ingest_rate, a.ingest_batch)
    ingest.start()
    time.sleep(2)
    started = time.monotonic()
    runs = []
    offset = os.path.getsize(a.server_log)
    for run in range(a.runs):
        for name, path in pages:
            cmd = [
                "wrk", "-t1", f"-c{a.connections}", f"-d{a.seconds}s", "--timeout", "30s", "-s", lua,
                "-H", f"Authorization: Bearer {a.token}", f"http://127.0.0.1:{a.port}{path}",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            time.sleep(0.2)  # the last responses' log lines
            lat, offset = server_latencies(a.server_log, offset, route_of(path))
            line = next(l for l in out.splitlines() if l.startswith("LUA "))
            client = dict(kv.split("=") for kv in line[4:].split())
            ok = [ms for ms, status in lat if status == 200]
            runs.append(
                {
                    "run": run,
                    "name": name,
                    "path": path,
                    "requests": len(lat),
                    "non_200": len(lat) - len(ok),
                    "server_p50_ms": percentile(ok, 50),
                    "server_p95_ms": percentile(ok, 95),
                    "server_max_ms": max(ok) if ok else None,
                    "client_p95_ms": int(client["p95"]) / 1e3,
                    "client_errors": int(client["errors"]),
                }
            )
            p95 = runs[-1]["server_p95_ms"]
            print(
                f"run {run + 1}/{a.runs} {name:40s} n={len(lat):5d} server p95 "
                f"{'–' if p95 is None else f'{p95:8.2f}'} ms  client p95 {runs[-1]['client_p95_ms']:8.2f} ms",
                flush=True,
            )
    elapsed = time.monotonic() - started
    ingest.stop.set()
    ingest.join(timeout=120)
    result = {
        "runs": runs,
        "ingest": {
            "visits_sent": ingest.sent,
            "failed_batches": ingest.failed,
            "seconds": elapsed,
            "visits_per_second": ingest.sent / elapsed if elapsed else None,
            "target_rate": a.ingest_rate,
            "batch": a.ingest_batch,
            "batch_p50_ms": percentile(ingest.batch_ms, 50),
            "batch_p95_ms": percentile(ingest.batch_ms, 95),
        },
        "settings": {"seconds": a.seconds, "connections": a.connections, "runs": a.runs},
    }
    with open(os.path.join(a.out, "raw.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["ingest"]))


if __name__ == "__main__":
    main()
