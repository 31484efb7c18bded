#!/usr/bin/env python3
"""Summarizes one bench/trace.sh run directory into report.md and report.json.

Usage: summarize_trace.py RUN_DIR [--md RUN_DIR/report.md] [--json RUN_DIR/report.json]

RUN_DIR holds env/<key> files, cells.tsv (one line per system run: size, k, system, nth,
status, prefix), size-<N>/{manifest.json,window.json,index-<K>.txt} and raw/: <prefix>.time
(GNU time -v) with, for DuckDB, <prefix>.json (trace_duckdb.py's stdout) and for chainbreak
<prefix>.stdout (its JSON) and <prefix>.stderr (log lines and the one --timings JSON line).
"""

import argparse
import csv
import json
import os
import statistics
import sys

import trace_digest

MIN_RUNS = 5
TARGET_PERSONS = 1_000_000
TARGET_K1_S = 0.005
TARGET_K100_S = 0.200
TARGET_INDEX_BYTES_PER_VISIT = 24
TARGET_BUILD_VISITS_PER_S = 3_000_000
TARGET_RATIO = 100


def parse_time_v(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            key, _, val = line.strip().rpartition(": ")
            try:
                if key == "User time (seconds)":
                    out["user_s"] = float(val)
                elif key == "System time (seconds)":
                    out["sys_s"] = float(val)
                elif key == "Maximum resident set size (kbytes)":
                    out["max_rss_kb"] = int(val)
                elif key.startswith("Elapsed (wall clock) time"):
                    sec = 0.0
                    for p in val.split(":"):
                        sec = sec * 60 + float(p)
                    out["wall_s"] = sec
                elif key == "Exit status":
                    out["exit_status"] = int(val)
            except ValueError:
                pass
    if "user_s" in out and "sys_s" in out:
        out["cpu_s"] = out["user_s"] + out["sys_s"]
    return out


def parse_chainbreak(stdout_path, stderr_path):
    """`chainbreak trace --format json --timings`: stdout one JSON object with "hash" and
    "tiers" [{"tier", "category", "count", "contacts"}] (read as a stream by trace_digest.py, or
    its digest when the path ends in .digest.json); stderr log lines and ONE JSON line
    {"load_seconds", "index_bytes", "visits", "query_seconds": [...], "query_median_seconds"}.
    Returns a dict; with "error" when the output cannot be read."""
    r = {}
    try:
        if stdout_path.endswith(".digest.json"):
            with open(stdout_path) as f:
                dg = json.load(f)
        else:
            with open(stdout_path, "rb") as f:
                dg = trace_digest.digest(f)
    except (OSError, ValueError) as e:
        return {"error": f"cannot read chainbreak's stdout: {e}"}
    if not isinstance(dg.get("hash"), str) or not dg.get("tiers"):
        return {"error": "chainbreak's stdout has no \"hash\" string or no tiers", "stdout_bytes": dg.get("bytes")}
    r["hash"] = dg["hash"].lower()
    r["stdout_bytes"] = dg.get("bytes")
    r["tiers"] = [{k: t.get(k) for k in ("tier", "category", "count", "listed")} for t in dg["tiers"]]
    r["close"] = sum(t["count"] or 0 for t in dg["tiers"] if t["tier"] == 1)
    r["secondary"] = sum(t["count"] or 0 for t in dg["tiers"] if t["tier"] == 2)
    if dg.get("contacts_hash"):
        r["contacts_hash"] = dg["contacts_hash"]
    timings = None
    try:
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        j = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(j, dict) and "query_seconds" in j:
                        timings = j
    except OSError:
        pass
    if timings is None:
        r["error"] = "no --timings JSON line (with query_seconds) on stderr"
        return r
    for k in ("load_seconds", "index_bytes", "visits", "query_seconds", "query_median_seconds"):
        r[k] = timings.get(k)
    if r.get("query_median_seconds") is None and r.get("query_seconds"):
        r["query_median_seconds"] = statistics.median(r["query_seconds"])
    phases = timings.get("query_phases") or []
    for k in ("contacts_seconds", "report_seconds"):
        v = [p[k] for p in phases if isinstance(p, dict) and isinstance(p.get(k), (int, float))]
        if v:
            r[k.replace("_seconds", "_median_seconds")] = statistics.median(v)
    return r


def duckdb_progress(stderr_path):
    """What a DuckDB process that did not finish got done: its progress lines on stderr."""
    r = {"query_seconds_done": []}
    try:
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                w = line.split()
                if len(w) >= 3 and w[0] == "trace_duckdb:" and w[1] == "load_seconds":
                    r["load_seconds"] = float(w[2])
                    if len(w) >= 5 and w[3] == "visits":
                        r["visits"] = int(w[4])
                elif len(w) >= 5 and w[0] == "trace_duckdb:" and w[1] == "run" and w[3] == "query_seconds":
                    r["query_seconds_done"].append(float(w[4]))
                    if len(w) >= 9:
                        r["close"], r["secondary"] = int(w[6]), int(w[8])
    except OSError:
        pass
    return r


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)} if xs else None


def ms(x):
    return "–" if x is None else (f"{x * 1000:.2f}" if x < 0.1 else f"{x * 1000:,.0f}")


def q_cell(r):
    q = r.get("query_seconds") or []
    if not q:
        return "–"
    return f"{ms(statistics.median(q))} ({ms(min(q))}–{ms(max(q))})"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    d = a.run_dir
    md_path = a.md or os.path.join(d, "report.md")
    json_path = a.json or os.path.join(d, "report.json")

    env = {}
    for name in sorted(os.listdir(os.path.join(d, "env"))):
        with open(os.path.join(d, "env", name)) as f:
            env[name] = f.read().strip()
    with open(os.path.join(d, "cells.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))

    sizes = {}
    for s in sorted({int(r["size"]) for r in rows}):
        sd = os.path.join(d, f"size-{s}")
        info = {}
        for name in ("manifest", "window", "store"):
            p = os.path.join(sd, f"{name}.json")
            if os.path.exists(p):
                with open(p) as f:
                    info[name] = json.load(f)
        sizes[s] = info

    records = []
    for r in rows:
        rec = {"size": int(r["size"]), "k": int(r["k"]), "system": r["system"], "nth": int(r["nth"]),
               "status": r["status"], "prefix": r["prefix"]}
        base = os.path.join(d, "raw", r["prefix"])
        rec["process"] = parse_time_v(base + ".time")
        if r["status"] != "ok" and r["system"] == "duckdb":
            rec["partial"] = duckdb_progress(base + ".stderr")
        if r["status"] == "ok":
            if r["system"] == "duckdb":
                try:
                    with open(base + ".json") as f:
                        rec.update(json.load(f))
                except (OSError, ValueError) as e:
                    rec["error"] = f"no JSON from trace_duckdb.py: {e}"
            else:
                out = base + ".digest.json" if os.path.exists(base + ".digest.json") else base + ".stdout"
                rec.update(parse_chainbreak(out, base + ".stderr"))
        records.append(rec)

    cells = []
    for s in sizes:
        for k in sorted({x["k"] for x in records if x["size"] == s}):
            by = {x["system"]: x for x in records if x["size"] == s and x["k"] == k}
            c = {"size": s, "k": k, "systems": by}
            dk, cb = by.get("duckdb"), by.get("chainbreak")
            ok = [x for x in (dk, cb) if x and x["status"] == "ok" and "error" not in x]
            c["hashes_agree"] = (len({x["hash"] for x in ok}) == 1) if len(ok) == 2 else None
            if cb and cb.get("contacts_hash") and cb.get("hash"):
                c["chainbreak_hash_matches_its_contacts"] = cb["contacts_hash"] == cb["hash"]
            if len(ok) == 2 and dk.get("query_median_seconds") and cb.get("query_median_seconds"):
                c["ratio_duckdb_over_chainbreak"] = dk["query_median_seconds"] / cb["query_median_seconds"]
            cells.append(c)

    disagree = [c for c in cells if c["hashes_agree"] is False]
    result = {
        "benchmark": "trace (plain venue rule, depth 2)",
        "run_dir": os.path.relpath(d, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")),
        "environment": env,
        "sizes": {str(s): v for s, v in sizes.items()},
        "cells": [{**{k: v for k, v in c.items() if k != "systems"},
                   "systems": {n: x for n, x in c["systems"].items()}} for c in cells],
        "verdict": ("HASHES DISAGREE in " + ", ".join(f"{c['size']:,}/K={c['k']}" for c in disagree)) if disagree
        else "hashes agree in every cell" if all(c["hashes_agree"] for c in cells)
        else "hashes agree in every cell where both systems ran" if any(c["hashes_agree"] for c in cells)
        else "no comparison: the two systems did not both run in any cell",
    }
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")

    L = []
    L.append(f"# Trace benchmark {env.get('date_utc', '')}")
    L.append("")
    L.append(f"Plain venue rule (`--rule venue-overlap`), depth 2, minimum overlap {env.get('min_overlap_seconds')} s, "
             f"window the last {env.get('window_days')} days of the data, K index persons chosen by the seeded rule "
             f"(bench/README.md). Query times: median (min–max) of {env.get('runs')} warm runs in one process, "
             f"tables or index loaded once; load timed apart. Peak RSS of the whole process (GNU time).")
    L.append("")
    if env.get("chainbreak_trace"):
        L.append(f"**chainbreak:** {env['chainbreak_trace']}")
        L.append("")
    L.append(f"**Result check:** {result['verdict']}.")
    own = [c["chainbreak_hash_matches_its_contacts"] for c in cells if "chainbreak_hash_matches_its_contacts" in c]
    if own:
        L.append(("chainbreak's `hash` is the hash of the contacts it lists in every cell." if all(own) else
                  "**chainbreak's `hash` differs from the hash of the contacts it lists** in "
                  + ", ".join(f"{c['size']:,}/K={c['k']}" for c in cells
                              if c.get("chainbreak_hash_matches_its_contacts") is False) + "."))
    L.append("")
    L.append("| persons | visits | K | close | secondary | hash | DuckDB load s | DuckDB query ms | DuckDB RSS MiB "
             "| chainbreak load s | index B/visit | chainbreak query ms | of which contacts / report ms "
             "| chainbreak RSS MiB | DuckDB ÷ chainbreak |")
    L.append("|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c in cells:
        dk = c["systems"].get("duckdb") or {}
        cb = c["systems"].get("chainbreak") or {}
        src = dk if dk.get("hash") else cb if cb.get("hash") else (dk.get("partial") or {})
        visits = dk.get("visits") or cb.get("visits") or (dk.get("partial") or {}).get("visits")
        h = src.get("hash", "")[:12] if src else ""
        if c["hashes_agree"] is True:
            h += " (agree)"
        elif c["hashes_agree"] is False:
            h = f"**DIFFER** {dk.get('hash', '')[:12]} / {cb.get('hash', '')[:12]}"

        def rss(x):
            v = x.get("process", {}).get("max_rss_kb")
            return f"{v / 1024:,.0f}" if v else "–"

        def status(x, text):
            if not x:
                return "–"
            if x.get("status") != "ok":
                done = (x.get("partial") or {}).get("query_seconds_done")
                if done:
                    return f"{x.get('status')}; {len(done)} run(s) done: " + ", ".join(ms(q) for q in done)
                return x.get("status", "?")
            if x.get("error"):
                return "error"
            return text

        bpv = (f"{cb['index_bytes'] / cb['visits']:.1f}" if cb.get("index_bytes") and cb.get("visits") else "–")
        ratio = c.get("ratio_duckdb_over_chainbreak")
        ratio_s = "–" if ratio is None else f"{ratio:,.0f}×"
        dk_load = "%.1f" % (dk.get("load_seconds") or (dk.get("partial") or {}).get("load_seconds") or 0)
        cb_load = "%.2f" % (cb.get("load_seconds") or 0)
        phases = (f"{ms(cb['contacts_median_seconds'])} / {ms(cb['report_median_seconds'])}"
                  if cb.get("contacts_median_seconds") is not None and cb.get("report_median_seconds") is not None
                  else "–")
        if visits is None:
            L.append(f"| {c['size']:,} | – | {c['k']} | – | – | – | {status(dk, '?')} | | | {status(cb, '?')} "
                     f"| | | | | |")
            continue
        L.append(f"| {c['size']:,} | {visits:,} | {c['k']} | {src.get('close', '–')} | {src.get('secondary', '–')} "
                 f"| {h} | {dk_load if dk.get('partial', {}).get('load_seconds') else status(dk, dk_load)} "
                 f"| {status(dk, q_cell(dk))} | {rss(dk)} "
                 f"| {status(cb, cb_load)} | {bpv} | {status(cb, q_cell(cb))} | {phases} | {rss(cb)} | {ratio_s} |")
    L.append("")
    L.append("Targets (issue 5), judged at 1,000,000 persons: chainbreak query K=1 ≤ 5 ms, K=100 ≤ 200 ms; index ≤ 24 "
             "bytes per visit; built at ≥ 3 million visits/s; DuckDB ÷ chainbreak ≥ 100× expected.")
    L.append("")
    L.append("## Inputs")
    L.append("")
    L.append("| persons | generator | visits.csv rows | visits.csv SHA-256 | window [W0, W1) UTC | index persons "
             "(candidates) |")
    L.append("|--:|---|--:|---|---|---|")
    for s, info in sizes.items():
        m = info.get("manifest", {})
        w = info.get("window", {})
        vis = m.get("files", {}).get("visits.csv", {})
        L.append(f"| {s:,} | {m.get('generator', '?')} | {vis.get('rows', '?'):,} | `{vis.get('sha256', '?')}` "
                 f"| {w.get('w0_utc', '?')} – {w.get('w1_utc', '?')} ({w.get('w0')}–{w.get('w1')}) "
                 f"| {w.get('candidates', '?'):,} |"
                 if isinstance(vis.get("rows"), int) and isinstance(w.get("candidates"), int) else
                 f"| {s:,} | {m.get('generator', '?')} | ? | ? | ? | ? |")
    for s, info in sizes.items():
        st = info.get("store")
        if st:
            L.append("")
            L.append(f"chainbreak store for {s:,} persons: built in {st.get('setup_seconds', 0):.0f} s untimed "
                     f"(init, import places, persons, visits), {st.get('bytes', 0):,} bytes.")
    L.append("")
    L.append("## Conditions")
    L.append("")
    keys = [("commit", "git_commit"), ("tree dirty", "git_dirty"), ("chainbreak --version", "chainbreak_version"),
            ("chainbreak binary", "chainbreak_binary"),
            ("chainbreak binary SHA-256", "chainbreak_sha256"), ("DuckDB", "duckdb_version"),
            ("DuckDB threads", "duckdb_threads"), ("python, numpy", "python_numpy"),
            ("profile", "profile"), ("profile SHA-256", "profile_sha256"), ("SQL SHA-256", "sql_sha256"),
            ("index person seed", "index_seed"), ("cache", "cache"), ("CPU", "cpu"), ("memory", "memory"),
            ("kernel, OS", "kernel_os"), ("load average at start / end", "load")]
    L.append("| | |")
    L.append("|---|---|")
    for label, k in keys:
        if k == "load":
            v = f"{env.get('load_start', '?')} / {env.get('load_end', '?')}"
        else:
            v = " / ".join((env.get(k) or "?").splitlines())
        L.append(f"| {label} | {v} |")
    L.append("")
    L.append("<details><summary>Runs</summary>")
    L.append("")
    L.append("| # | persons | K | system | status | load s | query s (each run) | wall s | CPU s | max RSS MiB |")
    L.append("|--:|--:|--:|---|---|--:|---|--:|--:|--:|")
    for x in sorted(records, key=lambda x: x["nth"]):
        p = x["process"]
        qs = ", ".join(f"{q:.4f}" for q in (x.get("query_seconds") or []))
        load = x.get("load_seconds")
        L.append(f"| {x['nth']} | {x['size']:,} | {x['k']} | {x['system']} | {x['status']}"
                 f"{' (' + x['error'] + ')' if x.get('error') else ''} | {'' if load is None else f'{load:.2f}'} "
                 f"| {qs} | {p.get('wall_s', 0):.1f} | {p.get('cpu_s', 0):.1f} | {p.get('max_rss_kb', 0) / 1024:,.0f} |")
    L.append("")
    L.append("</details>")
    L.append("")
    if any(x["system"] == "duckdb" and x["status"] == "ok" and len(x.get("query_seconds") or []) < MIN_RUNS
           for x in records):
        L.append(f"Fewer than {MIN_RUNS} runs in some cells: medians of fewer runs than the rules ask for.")
        L.append("")
    L.append(f"Machine-readable: `{os.path.basename(json_path)}`; raw output in `raw/`.")
    with open(md_path, "w") as f:
        f.write("\n".join(L) + "\n")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
