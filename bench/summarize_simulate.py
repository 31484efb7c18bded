#!/usr/bin/env python3
"""Summarizes one bench/simulate.sh run directory into a markdown fragment and a JSON record.

Usage: summarize_simulate.py RAW_DIR --md OUT.md --json OUT.json
"""
import argparse
import glob
import json
import os
import re
import statistics


def time_v(path):
    """Wall seconds and peak RSS (MiB) from GNU time -v output."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time .*: (\S+)", text).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return seconds, rss


def cpu_v(path):
    """CPU seconds (user + system) from GNU time -v output."""
    text = open(path).read()
    return sum(float(re.search(rf"{kind} time \(seconds\): (\S+)", text).group(1)) for kind in ("User", "System"))


def cpu_med(runs, key):
    """The median of a CPU column, formatted ('–' when absent)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return f"{statistics.median(values):.2f}" if values else "–"


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def chainbreak_runs(raw, prefix):
    runs = []
    for path in sorted(glob.glob(os.path.join(raw, prefix + "-*.json"))):
        name = os.path.basename(path)[:-5]
        if not re.fullmatch(re.escape(prefix) + r"-\d+", name):
            continue
        report = json.load(open(path))
        wall, rss = time_v(os.path.join(raw, name + ".time"))
        files = {f["file"]: f for f in report["files"]}
        runs.append({"name": name, "wall": wall, "cpu": cpu_v(os.path.join(raw, name + ".time")), "rss_mib": rss,
                     "generate": report["generate_seconds"],
                     "format": report["format_seconds"], "write": report["write_seconds"], "bytes": report["bytes"],
                     "visits": files.get("visits.csv", {}).get("rows", 0),
                     "infections": files.get("ground_truth.csv", {}).get("rows", 0)})
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(a.raw, "env.txt")) if "=" in line)
    out = {"env": env, "sections": {}}
    md = [f"Run {env.get('date')} at commit {env.get('commit')} on {env.get('cpu')} ({env.get('cores')} cores, "
          f"{env.get('mem')}), {env.get('rustc')}; load before {env.get('load_before')}, after {env.get('load_after')}.", ""]
    md.append("| command | runs | median wall s | min – max s | median CPU s (user + sys) | generate s | format s | write s "
              "| peak RSS MiB | bytes | visits | infections |")
    md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for prefix, label in [("city", "simulate city"), ("outbreak", "simulate outbreak")]:
        runs = chainbreak_runs(a.raw, prefix)
        if not runs:
            continue
        w = stats([r["wall"] for r in runs])
        med = lambda k: statistics.median([r[k] for r in runs])
        out["sections"][prefix] = {"runs": runs, "wall": w}
        md.append(f"| {label} | {w['n']} | **{w['median']:.2f}** | {w['min']:.2f} – {w['max']:.2f} | {med('cpu'):.2f} | "
                  f"{med('generate'):.2f} | "
                  f"{med('format'):.2f} | {med('write'):.2f} | {max(r['rss_mib'] for r in runs):.0f} | {int(med('bytes')):,} | "
                  f"{int(med('visits')):,} | {int(med('infections')):,} |")
    compare = []
    for path in sorted(glob.glob(os.path.join(a.raw, "compare-covasim-*.json"))):
        m = re.search(r"compare-covasim-(\d+)-(\d+)\.json", path)
        n, i = m.group(1), m.group(2)
        cov = json.loads(open(path).read().strip().splitlines()[-1])  # Covasim prints a banner first
        cov_wall, cov_rss = time_v(path[:-5] + ".time")
        cb_wall, cb_rss = time_v(os.path.join(a.raw, f"compare-chainbreak-{n}-{i}.time"))
        nv = os.path.join(a.raw, f"compare-novisits-{n}-{i}.time")
        nv_wall, nv_rss = time_v(nv) if os.path.exists(nv) else (None, None)
        compare.append({"agents": int(n), "run": int(i), "days": cov["days"], "covasim_wall": cov_wall,
                        "covasim_run": cov["run_seconds"], "covasim_rss": cov_rss, "chainbreak_wall": cb_wall,
                        "chainbreak_rss": cb_rss, "novisits_wall": nv_wall, "novisits_rss": nv_rss,
                        "covasim_cpu": cpu_v(path[:-5] + ".time"),
                        "chainbreak_cpu": cpu_v(os.path.join(a.raw, f"compare-chainbreak-{n}-{i}.time")),
                        "novisits_cpu": cpu_v(nv) if os.path.exists(nv) else None})
    if compare:
        version = open(os.path.join(a.raw, "covasim.version")).read().strip().splitlines()[-1]  # after its banner
        md += ["", f"Covasim {version} (default parameters) beside `chainbreak simulate outbreak`, with its default "
               "files written (visits of the last 14 days) and with `--visit-days 0` (no visits written; presence at "
               "places simulated all the same; Covasim writes nothing), wall clock of the whole process each:", "",
               "| agents × days | runs | chainbreak median s | chainbreak, no visits written, median s | Covasim median s "
               "| chainbreak µs/agent-day | no visits µs/agent-day | Covasim µs/agent-day | speed-up | speed-up, no visits "
               "| CPU s (user + sys): chainbreak / no visits / Covasim |",
               "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for n in sorted({c["agents"] for c in compare}):
            cs = [c for c in compare if c["agents"] == n]
            days = cs[0]["days"]
            cb = statistics.median([c["chainbreak_wall"] for c in cs])
            cov = statistics.median([c["covasim_wall"] for c in cs])
            per = lambda s: s / (n * days) * 1e6
            nvs = [c["novisits_wall"] for c in cs if c["novisits_wall"] is not None]
            nv = statistics.median(nvs) if nvs else float("nan")
            md.append(f"| {n:,} × {days} | {len(cs)} | {cb:.2f} | {nv:.2f} | {cov:.2f} | {per(cb):.3f} | {per(nv):.3f} | "
                      f"{per(cov):.3f} | **{cov / cb:.1f}×** | **{cov / nv:.1f}×** | "
                      f"{cpu_med(cs, 'chainbreak_cpu')} / {cpu_med(cs, 'novisits_cpu')} / {cpu_med(cs, 'covasim_cpu')} |")
        out["compare"] = compare
    open(a.md, "w").write("\n".join(md) + "\n")
    json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
