#!/usr/bin/env python3
"""Weekly count series for the surveillance benchmark (issue 7), seeded.

    python3 bench/detect_series.py --series 10000 --weeks 315 --seed 1 --out FILE.csv

Writes CSV `series,t,observed` (t = 1..weeks), the format `chainbreak detect --series` reads.
Each series is a negative binomial (or Poisson) count around a seasonal mean: a baseline level
log-uniform in [0.5, 60] a week, a yearly sine of random amplitude (0-0.8 on the log scale) and
phase, a log-linear trend for a third of the series (±0.3 % a week), an overdispersion (`size`
2-20, a fifth of the series Poisson), outbreaks in a quarter of the series (3-8 weeks, anywhere
in the last two years, adding 1-4 times the weekly level), and a few missing weeks in 2 % of
the series. Only the standard library is used (random.Random, Mersenne Twister), so the same
seed writes the same bytes on any Python 3.
"""

import argparse
import math
import random


def poisson(rng, lam):
    """Poisson by inversion (lam is at most a few hundred here)."""
    if lam <= 0:
        return 0
    if lam > 500:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    u = rng.random()
    k = 0
    p = math.exp(-lam)
    c = p
    while u > c and k < 10000:
        k += 1
        p *= lam / k
        c += p
    return k


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--weeks", type=int, default=315)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.out, "w", newline="") as f:
        f.write("series,t,observed\n")
        for s in range(1, a.series + 1):
            level = math.exp(rng.uniform(math.log(0.5), math.log(60)))
            amp = rng.uniform(0, 0.8)
            phase = rng.uniform(0, 2 * math.pi)
            slope = rng.uniform(-0.003, 0.003) if rng.random() < 1 / 3 else 0.0
            size = None if rng.random() < 0.2 else rng.uniform(2, 20)
            outbreaks = {}
            if rng.random() < 0.25:
                start = rng.randint(a.weeks - 104, a.weeks - 3)
                extra = rng.uniform(1, 4) * level
                for w in range(start, min(a.weeks, start + rng.randint(3, 8)) + 1):
                    outbreaks[w] = extra
            missing = set()
            if rng.random() < 0.02:
                missing = {rng.randint(1, a.weeks) for _ in range(rng.randint(1, 4))}
            rows = []
            for t in range(1, a.weeks + 1):
                mu = level * math.exp(amp * math.sin(2 * math.pi * t / 52 + phase) + slope * (t - a.weeks))
                mu += outbreaks.get(t, 0.0)
                lam = mu if size is None else rng.gammavariate(size, mu / size)
                y = poisson(rng, lam)
                rows.append(f"s{s:05d},{t},{'NA' if t in missing else y}\n")
            f.write("".join(rows))


if __name__ == "__main__":
    main()
