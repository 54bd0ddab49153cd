"""What running a study's shards on local dask workers costs, against the same work in plain processes.

    python benchmarks/dask_overhead.py [--procs 2] [--seconds 15]

One piece of work is training steps of the flows ``quick`` preset's density network (the work of a
flows quick task; ``parallel_ceiling.py``'s workload), calibrated alone to take about ``--seconds``.
``--procs`` equal pieces are then run at once

* by plain spawned processes (one torch thread each): the machine's ceiling;
* by ``sciprune.shards.map_shards`` on ``--procs`` local workers as the studies run them;
* the same with dask's default worker settings (its statistical profiler on: ``WORKER_CONFIG = {}``).

Printed per way: the mean time of a piece measured inside it (the work alone, without start-up), the
wall time of the whole call (with the cluster's start-up and shutdown), and the piece time against
the plain processes' (1.00 = no cost). Threads are pinned (``OMP_NUM_THREADS=1``). Run it on an idle
machine; results go into docs/benchmarks.md ("Cost of the dask workers").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

from parallel_ceiling import _run

WORKLOAD = "flows quick CNF step"
HERE = str(Path(__file__).resolve().parent)  # a worker imports parallel_ceiling from here


def piece(iters: int) -> float:
    """Seconds of ``iters`` steps of the workload, after one untimed step (a dask task)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    from parallel_ceiling import WORKLOADS

    step = WORKLOADS[WORKLOAD]()
    step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - t0


def on_dask(iters: int, procs: int, config: dict[str, object] | None) -> tuple[list[float], float]:
    from sciprune import shards

    saved = shards.WORKER_CONFIG
    if config is not None:
        shards.WORKER_CONFIG = config
    try:
        t0 = time.perf_counter()
        times = shards.map_shards(piece, [iters] * procs, workers=procs)
        return times, time.perf_counter() - t0
    finally:
        shards.WORKER_CONFIG = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2, help="pieces and workers at once (default 2)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of one piece alone, about (default 15)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    probe = _run(WORKLOAD, 5, 1)[0] / 5
    iters = max(5, round(args.seconds / probe))
    t0 = time.perf_counter()
    plain = _run(WORKLOAD, iters, args.procs)
    plain_wall = time.perf_counter() - t0
    base = sum(plain) / len(plain)
    rows = [("plain processes (the ceiling)", plain, plain_wall)]
    rows.append(("map_shards, as the studies run it", *on_dask(iters, args.procs, None)))
    rows.append(("map_shards, dask's default worker settings", *on_dask(iters, args.procs, {})))
    print(f"{WORKLOAD}: {iters} steps a piece, {args.procs} pieces at once, {mp.cpu_count()} cores")
    print(f"{'way':<44} {'piece s (mean)':>15} {'call wall s':>12} {'piece / plain':>14}")
    for name, times, wall in rows:
        mean = sum(times) / len(times)
        print(f"{name:<44} {mean:>15.2f} {wall:>12.2f} {mean / base:>13.3f}x")


if __name__ == "__main__":
    main()
