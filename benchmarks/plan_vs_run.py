"""``--plan``'s wall-time estimate against the measured wall time of the same command, side by side.

    python benchmarks/plan_vs_run.py [--cases classify:demo:1 moth:quick:2 ...] [--out DIR]

Each case ``study:preset:workers`` first makes the plan (calibrated now, on this machine, under its
present load), then runs the command into a fresh folder and measures its wall time and its CPU time
(user + system of the process and the worker processes it waited for; start-up, report and plots
included). Threads are pinned (``OMP_NUM_THREADS=1``; shards and calibration use one torch thread).
On a shared machine the wall time moves with the load (printed: 1-minute load average before and
after); the CPU time moves much less, so both are compared with the plan.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ["classify:demo:1", "classify:demo:2", "amr:demo:1", "moth:demo:1", "nif:demo:1", "flows:demo:1"]
COMMAND = {"moth": ["moth", "train"]}
UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * UNITS[unit]


def cpu_estimate(out: str) -> float:
    m = re.search(r"CPU time: ([\d.e+]+ \w+)", out)
    if m is None:
        raise SystemExit(f"no CPU time in:\n{out}")
    return _seconds(m.group(1))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def estimate(out: str, workers: int) -> float:
    """The wall estimate for ``workers`` from a plan's printout."""
    pattern = r"1 worker:\s+([\d.e+]+ \w+)" if workers == 1 else rf"{workers} local workers \(--workers {workers}\): ([\d.e+]+ \w+)"
    m = re.search(pattern, out)
    if m is None:
        raise SystemExit(f"no wall estimate for {workers} workers in:\n{out}")
    return _seconds(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=CASES)
    ap.add_argument("--out", default=None, help="folder for the runs (default: a temporary one, removed)")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    exe = [sys.executable, "-m", "sciprune.cli"]
    root = Path(args.out or tempfile.mkdtemp(prefix="plan_vs_run_"))
    print("| study | preset | workers | plan CPU | measured CPU | ratio | plan wall | measured wall | ratio | load before / after | calibration |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    try:
        for case in args.cases:
            study, preset, workers_text = case.split(":")
            workers = int(workers_text)
            cmd = [*exe, *COMMAND.get(study, [study]), "--preset", preset, "--quiet", "--workers", str(workers)]
            planned = subprocess.run([*cmd, "--plan"], env=env, capture_output=True, text=True, check=True).stdout
            calib = re.search(r"calibrated on this machine in ([\d.]+ s)", planned)
            load0 = os.getloadavg()[0]
            c0, t0 = _children_cpu(), time.perf_counter()
            subprocess.run([*cmd, "--out", str(root / f"{study}-{preset}-{workers}")], env=env, check=True,
                           capture_output=True)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
            load1 = os.getloadavg()[0]
            plan_s, plan_cpu = estimate(planned, workers), cpu_estimate(planned)
            print(f"| {study} | {preset} | {workers} | {plan_cpu:.1f} s | {cpu:.1f} s | {cpu / plan_cpu:.2f} | {plan_s:.1f} s | "
                  f"{wall:.1f} s | {wall / plan_s:.2f} | {load0:.1f} / {load1:.1f} | {calib.group(1) if calib else '?'} |",
                  flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
