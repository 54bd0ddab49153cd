"""Wall-time speed-up of N local dask workers over 1 on a study preset, with the metrics compared byte for byte.

    python benchmarks/workers_speedup.py [--cases nif:quick flows:quick] [--workers 2] [--out DIR]

Each case ``study:preset`` runs ``sciprune <study> --preset <preset> --workers W --quiet`` into a fresh
folder, first with W = 1 and then with W = ``--workers``, one after the other (run it on an idle machine:
the two runs share it with nothing else). Printed per case: wall and CPU time (user + system of the
process and the worker processes it waited for) of both runs, the ratio of the wall times, and whether
the two ``metrics.csv`` are byte-identical (results must not depend on the number of workers).
Threads are pinned (``OMP_NUM_THREADS=1``). Not part of ``run_all.py``: the default cases take about
23 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = {"moth": ["moth", "train"]}


def timed_run(study: str, preset: str, workers: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``study``'s ``preset`` on ``workers`` workers into ``out``."""
    exe = Path(sys.executable).with_name("sciprune")
    cmd = [str(exe), *COMMAND.get(study, [study]), "--preset", preset, "--workers", str(workers), "--quiet",
           "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["nif:quick", "flows:quick"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="workers_speedup_"))
    n = args.workers
    print(f"{'case':16s} {'1 worker s (CPU)':>18s} {f'{n} workers s (CPU)':>19s} {'speed-up':>9s}  metrics")
    for case in args.cases:
        study, preset = case.split(":")
        runs = []
        for w in (1, n):
            out = root / f"{study}_{preset}_w{w}"
            shutil.rmtree(out, ignore_errors=True)
            runs.append((timed_run(study, preset, w, out), out / "metrics.csv"))
        (wall1, cpu1), m1 = runs[0]
        (walln, cpun), mn = runs[1]
        same = "byte-identical" if filecmp.cmp(m1, mn, shallow=False) else "DIFFER"
        print(f"{case:16s} {wall1:9.1f} ({cpu1:6.0f}) {walln:10.1f} ({cpun:6.0f}) {wall1 / walln:8.2f}x  {same}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
