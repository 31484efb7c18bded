#!/usr/bin/env python3
"""The closed-loop benchmark's baseline: what a team would write by hand with Python's sqlite3
module, on the same schema shape as chainbreak's (an append-only event table, a current-state
table upserted per event, an audit row per event), with the same batches and the same
transitions (open + confirm, notify, start: four events an episode), WAL, synchronous NORMAL.
It checks no rule: it is the floor of storing the same facts, not the same work.

Usage: closedloop_sqlite.py DB_PATH EPISODES BATCH  (prints one JSON object)
"""
import json
import os
import sqlite3
import sys
import time


def main():
    db, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    c = sqlite3.connect(db, isolation_level=None)
    c.executescript(
        """
        PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
        CREATE TABLE persons (key INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL);
        CREATE TABLE episode_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, episode TEXT NOT NULL,
          at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL);
        CREATE INDEX episode_events_episode ON episode_events(episode, seq);
        CREATE TABLE episodes (key INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, person INTEGER NOT NULL,
          category TEXT, state TEXT, owner_unit TEXT, deadline INTEGER, opened_at INTEGER, updated_at INTEGER,
          events INTEGER);
        CREATE INDEX episodes_state ON episodes(state, id);
        CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER, actor TEXT, action TEXT,
          entity TEXT, record TEXT, via TEXT);
        """
    )
    c.execute("BEGIN")
    c.executemany("INSERT INTO persons(id) VALUES (?)", ((f"P{i:07}",) for i in range(n)))
    c.execute("COMMIT")
    plan = json.dumps({"day_zero": "last_exposure", "phases": [{"kind": "home_quarantine", "days": 7,
                                                                "test_days": [1, 4, 7]}]})
    phases = []

    def run(name, actions, state):
        started = time.perf_counter()
        events = 0
        for lo in range(0, n, batch):
            c.execute("BEGIN")
            for i in range(lo, min(n, lo + batch)):
                eid = f"E{i:07}"
                for action in actions:
                    body = {"action": action, "at": "2022-03-10T00:00:00Z", "actor": "bench"}
                    if action == "open":
                        body.update({"person": f"P{i:07}", "category": "secondary", "plan": json.loads(plan),
                                     "reason": {"source": "K1", "via": "C1", "at": "2022-03-09T04:00:00Z"},
                                     "owner": "U1"})
                    c.execute("INSERT INTO episode_events(episode, at, actor, action) VALUES (?, ?, ?, ?)",
                              (eid, 1646870400, "bench", json.dumps(body)))
                    c.execute("INSERT INTO audit(at, actor, action, entity, record, via) VALUES (?, ?, ?, ?, ?, ?)",
                              (1646870400, "bench", "episode_transition", "episode", f"{eid} {action}", "bench"))
                    events += 1
                c.execute(
                    "INSERT INTO episodes(id, person, category, state, owner_unit, deadline, opened_at, updated_at, events)"
                    " VALUES (?, (SELECT key FROM persons WHERE id = ?), 'secondary', ?, 'U1', 1647000000, 1646870400,"
                    " 1646870400, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state,"
                    " updated_at = excluded.updated_at, events = episodes.events + excluded.events",
                    (eid, f"P{i:07}", state, len(actions)),
                )
            c.execute("COMMIT")
        phases.append({"phase": name, "events": events, "seconds": time.perf_counter() - started})

    run("open_and_confirm", ["open", "confirm"], "confirmed")
    run("notify", ["notify"], "notified")
    run("start", ["start"], "in_measure")
    started = time.perf_counter()
    states = {}
    for episode, action in c.execute("SELECT episode, action FROM episode_events ORDER BY seq"):
        states[episode] = json.loads(action)["action"]
    restart = time.perf_counter() - started
    events = sum(p["events"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    for p in phases:
        p["events_per_second"] = p["events"] / p["seconds"]
    print(json.dumps({"episodes": n, "batch": batch, "events": events, "seconds": seconds,
                      "events_per_second": events / seconds, "phases": phases,
                      "restart": {"episodes": len(states), "events": events, "seconds": restart},
                      "sqlite": sqlite3.sqlite_version, "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
