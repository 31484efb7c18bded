#!/usr/bin/env python3
"""Runs Covasim with its default parameters for N agents × D days; prints JSON with the wall
seconds of initialisation and of the run (bench/simulate.sh compares per agent-day)."""
import argparse
import json
import time

import covasim as cv

ap = argparse.ArgumentParser()
ap.add_argument("--agents", type=int, required=True)
ap.add_argument("--days", type=int, required=True)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
t0 = time.perf_counter()
sim = cv.Sim(pop_size=a.agents, n_days=a.days, rand_seed=a.seed, verbose=0)
sim.initialize()
t1 = time.perf_counter()
sim.run()
t2 = time.perf_counter()
print(json.dumps({"agents": a.agents, "days": a.days, "init_seconds": t1 - t0, "run_seconds": t2 - t1,
                  "seconds": t2 - t0, "infections": int(sim.results["cum_infections"][-1])}))
