#!/usr/bin/env python3
"""Summarizes one bench/detect.sh run directory into a markdown fragment and a JSON record.

Usage: summarize_detect.py RAW_DIR --md OUT.md --json OUT.json

Per system: wall clock (median, min, max), user + system CPU seconds and peak RSS from GNU
time -v; µs per model fit (a fit: one monitored week of one series) on the wall clock and per
CPU second; the ratio R ÷ chainbreak per fit. Agreement: chainbreak's output on the series R
ran against R's, |a − b| ≤ 1e-6 · max(1, |b|), alarms identical, NA where R has NA.
"""
import argparse
import csv
import glob
import json
import os
import re
import statistics


def time_v(path):
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time .*: (\S+)", text).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    cpu_pct = re.search(r"Percent of CPU this job got: (\d+)%", text).group(1)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return {"wall": seconds, "cpu": user + system, "cpu_pct": int(cpu_pct), "rss_mib": rss}


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def read_rows(path):
    with open(path) as f:
        return {(r["series"], r["t"]): r for r in csv.DictReader(f)}


def agreement(ours_path, r_path):
    ours, r = read_rows(ours_path), read_rows(r_path)
    checked, bad, worst = 0, [], 0.0
    if set(ours) != set(r):
        bad.append(f"rows differ: {len(ours)} ours, {len(r)} R")
    for key, rr in r.items():
        o = ours.get(key)
        if o is None:
            continue
        for col in ("expected", "upperbound"):
            a, b = o[col], rr[col]
            checked += 1
            if a == "NA" or b == "NA":
                if a != b:
                    bad.append(f"{key} {col}: ours {a}, R {b}")
                continue
            a, b = float(a), float(b)
            d = abs(a - b) / max(1.0, abs(b))
            worst = max(worst, d)
            if d > 1e-6:
                bad.append(f"{key} {col}: ours {a}, R {b}")
        checked += 1
        if o["alarm"] != rr["alarm"]:
            bad.append(f"{key} alarm: ours {o['alarm']}, R {rr['alarm']}")
    alarms = sum(1 for rr in r.values() if rr["alarm"] == "true")
    return {"checked": checked, "mismatches": len(bad), "examples": bad[:10], "worst_scaled": worst, "r_alarms": alarms}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(a.raw, "env.txt")) if "=" in line)
    n_series = int(re.match(r"(\d+)", env["series"]).group(1))
    r_series = int(re.search(r"r_series=(\d+)", env["series"]).group(1))
    fr = re.search(r"from=(\d+) to=(\d+)", env["series"])
    weeks = int(fr.group(2)) - int(fr.group(1)) + 1
    cb = []
    for path in sorted(glob.glob(os.path.join(a.raw, "chainbreak-*.time"))):
        run = time_v(path)
        name = path[:-5]
        run["timings"] = json.loads(open(name + ".timings").read().strip().splitlines()[-1])
        run["load"] = open(name + ".load").read().strip().split("=", 1)[1]
        cb.append(run)
    rr = []
    for path in sorted(glob.glob(os.path.join(a.raw, "r-*.time"))):
        run = time_v(path)
        name = path[:-5]
        m = re.search(r"r_fit_seconds=(\S+) fits=(\d+)", open(name + ".stdout").read())
        run["fit_seconds"], run["fits"] = float(m.group(1)), int(m.group(2))
        run["load"] = open(name + ".load").read().strip().split("=", 1)[1]
        rr.append(run)
    fits = n_series * weeks
    out = {"env": env, "fits": fits, "chainbreak": cb, "r": rr}
    cw = stats([r["wall"] for r in cb])
    cc = stats([r["timings"]["compute_s"] for r in cb])
    cpu = statistics.median([r["cpu"] for r in cb])
    rss = max(r["rss_mib"] for r in cb)
    us_wall = cw["median"] / fits * 1e6
    us_cpu = cpu / fits * 1e6
    out["chainbreak_summary"] = {"wall": cw, "compute": cc, "cpu_median": cpu, "rss_mib_max": rss,
                                 "us_per_fit_wall": us_wall, "us_per_fit_cpu": us_cpu}
    md = [f"Run {env.get('date')} at commit {env.get('commit')} on {env.get('cpu')} ({env.get('cores')} cores, "
          f"{env.get('mem')}); {env.get('rustc')}; {env.get('R')}, surveillance {env.get('surveillance')}; "
          f"load average before {env.get('load_before')}, after {env.get('load_after')}.", ""]
    md.append("| system | series | fits | runs | median wall s | min – max s | CPU s (median) | CPU % | peak RSS MiB "
              "| µs/fit (wall) | µs/fit (CPU) | load at start of each run |")
    md.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    md.append(f"| chainbreak | {n_series:,} | {fits:,} | {cw['n']} | **{cw['median']:.2f}** | {cw['min']:.2f} – "
              f"{cw['max']:.2f} | {cpu:.2f} | {statistics.median([r['cpu_pct'] for r in cb])} | {rss:.0f} | "
              f"{us_wall:.1f} | {us_cpu:.1f} | {'; '.join(r['load'] for r in cb)} |")
    if rr:
        r_fits = rr[0]["fits"]
        rw = stats([r["fit_seconds"] for r in rr])
        rcpu = statistics.median([r["cpu"] for r in rr])
        r_us = rw["median"] / r_fits * 1e6
        out["r_summary"] = {"fit_seconds": rw, "fits": r_fits, "us_per_fit_wall": r_us,
                            "process_wall": stats([r["wall"] for r in rr])}
        md.append(f"| R farringtonFlexible | {r_series:,} | {r_fits:,} | {rw['n']} | {rw['median']:.2f} (fits only; "
                  f"process {statistics.median([r['wall'] for r in rr]):.2f}) | {rw['min']:.2f} – {rw['max']:.2f} | "
                  f"{rcpu:.2f} (process) | {statistics.median([r['cpu_pct'] for r in rr])} | "
                  f"{max(r['rss_mib'] for r in rr):.0f} | {r_us:.0f} | – | {'; '.join(r['load'] for r in rr)} |")
        ratio = r_us / us_wall
        out["ratio_r_over_chainbreak_per_fit"] = ratio
        md.append("")
        r_cpu_us = rcpu / r_fits * 1e6
        out["ratio_r_over_chainbreak_per_cpu"] = r_cpu_us / us_cpu
        md.append(f"Per fit on the wall clock: R {r_us:,.0f} µs, chainbreak {us_wall:.1f} µs (both cores): "
                  f"**chainbreak {ratio:,.0f}× faster** per fit. Per CPU second (R runs on one core; its "
                  f"process CPU, start and reading included, {r_cpu_us:,.0f} µs a fit; chainbreak "
                  f"{us_cpu:.1f} µs): {r_cpu_us / us_cpu:,.0f}×.")
        ag = agreement(os.path.join(a.raw, "chainbreak-r-series.csv"), os.path.join(a.raw, "r-out.csv"))
        out["agreement"] = ag
        md.append("")
        md.append(f"Agreement on the {r_series} series R ran: {ag['checked']:,} values (expected, upper bound, "
                  f"alarm; {ag['r_alarms']} alarms), {ag['mismatches']} differ beyond 1e-6·max(1,|R|), worst "
                  f"scaled difference {ag['worst_scaled']:.1e}.")
        for e in ag["examples"]:
            md.append(f"- {e}")
    md.append("")
    md.append(f"chainbreak split (median of runs): read {statistics.median([r['timings']['read_s'] for r in cb]):.2f} s, "
              f"compute {cc['median']:.2f} s, write {statistics.median([r['timings']['write_s'] for r in cb]):.2f} s.")
    open(a.md, "w").write("\n".join(md) + "\n")
    json.dump(out, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
