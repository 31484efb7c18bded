#!/usr/bin/env python3
"""Turns one bench/pages.sh run directory (raw.json, env.json) into report.md and report.json."""

import json
import os
import statistics
import sys

TARGET_MS = 50.0
# Pages that are not lists (counts, a picture): reported, not bound by the list pages' target.
NOT_LISTS = {"overview", "board", "chains"}


def main():
    out = sys.argv[1]
    raw = json.load(open(os.path.join(out, "raw.json")))
    env = json.load(open(os.path.join(out, "env.json")))
    by_name = {}
    for r in raw["runs"]:
        by_name.setdefault(r["name"], []).append(r)
    rows = []
    for name, runs in by_name.items():
        p95s = [r["server_p95_ms"] for r in runs if r["server_p95_ms"] is not None]
        p50s = [r["server_p50_ms"] for r in runs if r["server_p50_ms"] is not None]
        rows.append(
            {
                "name": name,
                "path": runs[0]["path"],
                "runs": len(runs),
                "requests": sum(r["requests"] for r in runs),
                "non_200": sum(r["non_200"] for r in runs) + sum(r["client_errors"] for r in runs),
                "server_p50_ms": statistics.median(p50s) if p50s else None,
                "server_p95_ms": statistics.median(p95s) if p95s else None,
                "server_p95_worst_run_ms": max(p95s) if p95s else None,
                "client_p95_ms": statistics.median(r["client_p95_ms"] for r in runs),
            }
        )
    met = all(
        r["server_p95_ms"] is not None and r["server_p95_ms"] <= TARGET_MS and r["non_200"] == 0
        for r in rows
        if r["name"] not in NOT_LISTS
    )
    report = {"env": env, "ingest": raw["ingest"], "settings": raw["settings"], "pages": rows, "target_met": met}
    json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)
    ing = raw["ingest"]
    s = raw["settings"]
    lines = [
        f"# Page benchmark, {env['date']}, commit {env['commit']}",
        "",
        f"{env['cases']:,} cases over a city of {env['persons']:,} persons; a district-scoped epidemiologist; "
        f"wrk, {s['connections']} connections, {s['seconds']} s per page and run, {s['runs']} runs (warm: every page "
        f"answered once before); meanwhile visits posted through `POST /api/v1/visits:batch` at "
        f"{ing['visits_per_second']:.0f} visits/s (batches of {ing['batch']}, batch p50 {ing['batch_p50_ms']:.1f} ms, "
        f"p95 {ing['batch_p95_ms']:.1f} ms, {ing['failed_batches']} failed).",
        "",
        f"Server: {env['server_cpu_seconds']} s CPU, peak RSS {env['server_peak_rss_kb'] / 1024:.0f} MiB; store "
        f"{env['sqlite_store_bytes'] / 2**30:.2f} GiB; {env['cpus']} CPUs, load before {env['load_before']}; "
        f"{env['wrk']}; {env['chainbreak']}; {env['cases_import']}.",
        "",
        f"Target: server-side p95 <= {TARGET_MS:.0f} ms on every list page: **{'met' if met else 'not met'}** "
        f"({', '.join(sorted(NOT_LISTS))}: not lists, reported only).",
        "",
        "| page | requests | non-200 | server p50 ms | server p95 ms (median of runs) | worst run p95 ms | client p95 ms |",
        "| --- | --: | --: | --: | --: | --: | --: |",
    ]
    def ms(x):
        return "–" if x is None else f"{x:.2f}"

    for r in rows:
        flag = "" if r["server_p95_ms"] is not None and r["server_p95_ms"] <= TARGET_MS else " ✗"
        name = r["name"] + (" (not a list)" if r["name"] in NOT_LISTS else "")
        lines.append(
            f"| {name} | {r['requests']} | {r['non_200']} | {ms(r['server_p50_ms'])} | "
            f"{ms(r['server_p95_ms'])}{flag} | {ms(r['server_p95_worst_run_ms'])} | {ms(r['client_p95_ms'])} |"
        )
    open(os.path.join(out, "report.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
