#!/usr/bin/env python3
"""Summarizes one bench/import.sh run directory into a markdown fragment and a JSON record.

Usage: summarize_import.py RAW_DIR --md OUT.md --json OUT.json

RAW_DIR holds runs.tsv, env/<key> files, manifest.json (the input's), <system>-<run>.time
(GNU time -v output), sqlite3-<run>.log (phase marks) and schema-*.txt.
"""

import argparse
import csv
import json
import os
import statistics
import sys

REQUIRED_RATE = 500_000
REQUIRED_PERSONS = 1_000_000
REQUIRED_DAYS = 14
REQUIRED_ROWS = 50_000_000
MIN_RUNS = 5
SQLITE_PHASES = [
    ("drop indexes, create staging", "start", "staging_ready"),
    (".import into staging", "staging_ready", "imported"),
    ("INSERT ... SELECT (id mapping)", "imported", "inserted"),
    ("drop staging, create indexes", "inserted", "indexed"),
    ("COMMIT", "indexed", "committed"),
    ("wal_checkpoint(TRUNCATE)", "committed", "checkpointed"),
]


def parse_time_v(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, val = line.strip().rpartition(": ")
            if key == "User time (seconds)":
                out["user_s"] = float(val)
            elif key == "System time (seconds)":
                out["sys_s"] = float(val)
            elif key == "Maximum resident set size (kbytes)":
                out["max_rss_kb"] = int(val)
            elif key.startswith("Elapsed (wall clock) time"):
                parts = [float(p) for p in val.split(":")]
                sec = 0.0
                for p in parts:
                    sec = sec * 60 + p
                out["time_wall_s"] = sec
            elif key == "Exit status":
                out["exit_status"] = int(val)
            elif key == "Major (requiring I/O) page faults":
                out["major_faults"] = int(val)
            elif key == "File system outputs":
                out["fs_outputs"] = int(val)
    return out


def parse_marks(path):
    marks, plan, checkpoint = {}, [], None
    with open(path) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("mark "):
            _, name, t = line.split()
            marks[name] = float(t)
            if name == "committed" and i + 1 < len(lines):
                checkpoint = lines[i + 1]
        elif line.startswith(("QUERY PLAN", "|--", "`--", "   ", "|  ")):
            plan.append(line)
    phases = {}
    for label, a, b in SQLITE_PHASES:
        if a in marks and b in marks:
            phases[label] = marks[b] - marks[a]
    return phases, plan, checkpoint


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def load3(s):
    return " ".join((s or "?").split()[:3])


def resident_pct(s):
    try:
        res, size = (int(x) for x in s.split("/"))
        return f"{min(1.0, res / size):.0%}" if size else "?"
    except ValueError:
        return s


def fmt_int(x):
    return f"{x:,.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args(argv)
    raw = a.raw

    env = {}
    for name in sorted(os.listdir(os.path.join(raw, "env"))):
        with open(os.path.join(raw, "env", name)) as f:
            env[name] = f.read().strip()
    with open(os.path.join(raw, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(raw, "runs.tsv")) as f:
        runs = list(csv.DictReader(f, delimiter="\t"))

    records = []
    for r in runs:
        rec = {
            "system": r["system"], "run": int(r["run"]), "nth": int(r["nth"]),
            "wall_s": float(r["wall_s"]), "setup_s": float(r["setup_s"]), "sync_s": float(r["sync_s"]),
            "rows": int(r["rows"]), "db_bytes": int(r["db_bytes"]), "wal_bytes": int(r["wal_bytes"]),
            "input_resident": r["input_resident"],
            "input_resident_pct": resident_pct(r["input_resident"]), "loadavg_before": r["load"],
        }
        rec.update(parse_time_v(os.path.join(raw, f"{r['system']}-{r['run']}.time")))
        rec["cpu_s"] = rec.get("user_s", 0.0) + rec.get("sys_s", 0.0)
        rec["visits_per_s"] = rec["rows"] / rec["wall_s"]
        if r["system"] == "sqlite3":
            rec["phases_s"], plan, rec["checkpoint_result"] = parse_marks(os.path.join(raw, f"sqlite3-{r['run']}.log"))
            if plan and rec["run"] == 1:
                env["sqlite3_insert_plan"] = "\n".join(plan)
        records.append(rec)

    systems = []
    for r in records:
        if r["system"] not in systems:
            systems.append(r["system"])
    summary = {}
    for s in systems:
        rs = [r for r in records if r["system"] == s]
        summ = {
            "runs": len(rs),
            "wall_s": stats([r["wall_s"] for r in rs]),
            "visits_per_s": stats([r["visits_per_s"] for r in rs]),
            "cpu_s": stats([r["cpu_s"] for r in rs]),
            "user_s": stats([r["user_s"] for r in rs]),
            "sys_s": stats([r["sys_s"] for r in rs]),
            "max_rss_kb": stats([r["max_rss_kb"] for r in rs]),
            "setup_s": stats([r["setup_s"] for r in rs]),
            "sync_after_s": stats([r["sync_s"] for r in rs]),
            "db_bytes": stats([r["db_bytes"] for r in rs]),
        }
        if s == "sqlite3":
            labels = [p[0] for p in SQLITE_PHASES]
            summ["phases_s_median"] = {
                lab: statistics.median([r["phases_s"][lab] for r in rs if lab in r["phases_s"]])
                for lab in labels if any(lab in r["phases_s"] for r in rs)
            }
        summary[s] = summ

    rows = records[0]["rows"] if records else 0
    args = manifest["args"]
    ratio = None
    if "chainbreak" in summary and "sqlite3" in summary:
        ratio = summary["chainbreak"]["visits_per_s"]["median"] / summary["sqlite3"]["visits_per_s"]["median"]
    applies = (args["persons"] >= REQUIRED_PERSONS and args["days"] >= REQUIRED_DAYS and rows >= REQUIRED_ROWS)
    n_runs = min((v["runs"] for v in summary.values()), default=0)
    if "chainbreak" not in summary:
        verdict = "not measured (chainbreak was not run)"
    elif not applies:
        verdict = (f"not applicable: the requirement is for {REQUIRED_PERSONS:,} persons × {REQUIRED_DAYS} days, "
                   f"≥ {REQUIRED_ROWS:,} rows; this run had {args['persons']:,} × {args['days']}, {rows:,} rows")
    else:
        rate = summary["chainbreak"]["visits_per_s"]["median"]
        verdict = (("MET" if rate >= REQUIRED_RATE else "NOT MET")
                   + f": chainbreak median {fmt_int(rate)} visits/s against ≥ {REQUIRED_RATE:,}")
        if n_runs < MIN_RUNS:
            verdict += f" (only {n_runs} runs: the rules ask for at least {MIN_RUNS})"

    schemas = {}
    for s in systems:
        p = os.path.join(raw, f"schema-{s}.txt")
        if os.path.exists(p):
            with open(p) as f:
                schemas[s] = f.read()
    same_schema = None
    if len(schemas) == 2:
        same_schema = len(set(schemas.values())) == 1

    vis = manifest["files"]["visits.csv"]
    result = {
        "benchmark": "visits import",
        "raw_dir": os.path.relpath(raw, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")),
        "input": {"dir": env.get("input_dir"), "manifest": manifest},
        "conditions": {
            "cache": env.get("cache"),
            "runs_per_system": n_runs,
            "order": "alternating: odd runs in the order given by --systems, even runs reversed",
            "timed": "process start to exit, measured around /usr/bin/time -v; base store (init, places, persons) made untimed before each run; `sync` after each run timed apart",
            "sqlite_pragmas": env.get("sqlite_pragmas"),
            "chainbreak_source_pragmas": env.get("chainbreak_source_pragmas"),
            "staging_schema": env.get("staging_schema"),
            "store_fs": env.get("store_fs"),
            "input_fs": env.get("input_fs"),
            "loadavg_start": env.get("load_start"),
            "loadavg_end": env.get("load_end"),
        },
        "environment": {k: env.get(k) for k in [
            "date_utc", "git_commit", "git_dirty", "chainbreak_version", "chainbreak_binary",
            "libsqlite3_sys", "bundled_sqlite", "sqlite3_shell_version", "sqlite3_shell", "rustc_version", "cpu_model",
            "cpus", "memory", "kernel", "os", "python_numpy"]},
        "summary": summary,
        "chainbreak_over_sqlite3": ratio,
        "requirement": {"visits_per_s": REQUIRED_RATE, "persons": REQUIRED_PERSONS, "days": REQUIRED_DAYS,
                        "rows": REQUIRED_ROWS, "verdict": verdict},
        "final_schemas_identical": same_schema,
        "sqlite3_insert_plan": env.get("sqlite3_insert_plan"),
        "runs": records,
    }
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    # ------------------------------------------------------------ markdown
    e = result["environment"]
    L = []
    L.append(f"### Visits import: chainbreak and the sqlite3 shell ({e['date_utc']})")
    L.append("")
    L.append(f"Input: `{env.get('input_dir')}/visits.csv`, {rows:,} visits "
             f"({args['persons']:,} persons, {args['days']} days from {args['start']}, seed {args['seed']}), "
             f"{vis['bytes']:,} bytes, sha256 `{vis['sha256'][:16]}…`; "
             f"{manifest['files']['places.csv']['rows']:,} places, {manifest['files']['persons.csv']['rows']:,} persons; "
             f"made by `bench/gen_visits.py` v{manifest['generator_version']} (numpy {manifest['numpy']}). "
             f"Same files for every system.")
    L.append("")
    L.append(f"Conditions: {env.get('cache')}. {n_runs} runs per system, alternating. "
             f"Timed: the import command only, start to exit (base store made untimed; `sync` after it timed apart). "
             f"Stores on {env.get('store_fs')}. Load average (1, 5, 15 min) at start {load3(env.get('load_start'))}, "
             f"at end {load3(env.get('load_end'))}."
             + (f" **Fewer than {MIN_RUNS} runs: a smoke test, not a result.**" if n_runs < MIN_RUNS else ""))
    L.append("")
    L.append("| system | median visits/s | min – max visits/s | median wall s | min – max wall s "
             "| median CPU s (user + sys) | peak RSS MiB (median / max) | store MB | setup s | sync after s |")
    L.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for s in systems:
        m = summary[s]
        L.append(
            f"| {s} | {fmt_int(m['visits_per_s']['median'])} | {fmt_int(m['visits_per_s']['min'])} – "
            f"{fmt_int(m['visits_per_s']['max'])} | {m['wall_s']['median']:.2f} | {m['wall_s']['min']:.2f} – "
            f"{m['wall_s']['max']:.2f} | {m['cpu_s']['median']:.2f} ({m['user_s']['median']:.2f} + "
            f"{m['sys_s']['median']:.2f}) | {m['max_rss_kb']['median'] / 1024:.0f} / {m['max_rss_kb']['max'] / 1024:.0f} "
            f"| {m['db_bytes']['median'] / 1e6:,.0f} | {m['setup_s']['median']:.2f} | {m['sync_after_s']['median']:.2f} |")
    L.append("")
    if ratio is not None:
        L.append(f"chainbreak / sqlite3 shell, median visits/s: **{ratio:.2f}×**.")
        L.append("")
    L.append(f"Requirement (≥ {REQUIRED_RATE:,} visits/s wall clock): **{verdict}**.")
    L.append("")
    if "sqlite3" in summary and summary["sqlite3"].get("phases_s_median"):
        ph = summary["sqlite3"]["phases_s_median"]
        L.append("sqlite3 shell phases (median s): " + "; ".join(f"{k} {v:.2f}" for k, v in ph.items()) + ".")
        L.append("")
    if env.get("sqlite3_insert_plan"):
        L.append("sqlite3 shell INSERT ... SELECT plan: `" + " ".join(
            l.strip().lstrip("|`-").strip() for l in env["sqlite3_insert_plan"].splitlines()) + "`.")
        L.append("")
    if same_schema is not None:
        L.append("Final schemas of the two stores (sqlite_master): "
                 + ("identical." if same_schema else "**differ** (see schema-*.txt in the raw directory)."))
        L.append("")
    L.append(f"sqlite3 shell settings: `{' '.join((env.get('sqlite_pragmas') or '').split())}`; "
             f"staging table in `{env.get('staging_schema')}`. PRAGMA statements in chainbreak's "
             f"crates/store-sqlite: `{env.get('chainbreak_source_pragmas') or 'none found'}`.")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    commit = e["git_commit"] + (" (dirty tree)" if e["git_dirty"] == "yes" else "")
    L.append(f"| commit | {commit} |")
    L.append(f"| chainbreak --version | {' / '.join(e['chainbreak_version'].splitlines())} |")
    L.append(f"| SQLite in chainbreak | {e['bundled_sqlite'] or 'unknown'} (libsqlite3-sys {e['libsqlite3_sys'] or '?'}, bundled; from Cargo.lock) |")
    L.append(f"| sqlite3 shell | {e['sqlite3_shell_version']} |")
    L.append(f"| rustc | {e['rustc_version']} |")
    L.append(f"| CPU | {e['cpu_model']}, {e['cpus']} CPUs, {e['memory']} memory |")
    L.append(f"| kernel, OS | {e['kernel']}, {e['os']} |")
    L.append(f"| python, numpy | {e['python_numpy']} |")
    L.append(f"| date (UTC) | {e['date_utc']} |")
    L.append("")
    L.append("<details><summary>Runs</summary>")
    L.append("")
    L.append("| # | system | run | wall s | visits/s | CPU s | max RSS MiB | visits.csv in page cache | load before |")
    L.append("|--:|---|--:|--:|--:|--:|--:|---|---|")
    for r in sorted(records, key=lambda r: r["nth"]):
        L.append(f"| {r['nth']} | {r['system']} | {r['run']} | {r['wall_s']:.2f} | {fmt_int(r['visits_per_s'])} "
                 f"| {r['cpu_s']:.2f} | {r['max_rss_kb'] / 1024:.0f} | {r['input_resident_pct']} | {r['loadavg_before']} |")
    L.append("")
    L.append("</details>")
    L.append("")
    L.append(f"Raw logs: `{result['raw_dir']}/`. Machine-readable: `{os.path.relpath(a.json, os.path.dirname(a.md))}`.")
    with open(a.md, "w") as f:
        f.write("\n".join(L) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
