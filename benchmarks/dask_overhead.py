"""What running a study's shards on local dask workers costs, against the same work in plain processes.

    python benchmarks/dask_overhead.py [--procs 2] [--seconds 15] [--rounds 3] [--idle 30]

One piece of work is training steps of the flows ``quick`` preset's density network (the work of a
flows quick task; ``parallel_ceiling.py``'s workload), calibrated alone to take about ``--seconds``.
``--procs`` equal pieces are then run at once

* by plain spawned processes (one torch thread each, ``shards.MALLOC_ENV`` as the workers): the ceiling;
* by ``sciprune.shards.map_shards`` on ``--procs`` local workers as the studies run them;
* the same with dask's default worker settings (profiler on, 20 ms ticks: ``WORKER_CONFIG = {}``).

The ways run in ``--rounds`` interleaved rounds (one run of each way per round), since on a shared
2-core machine one run of a way varies by 10-20 %. Printed per way: the median over rounds of the mean
time of a piece measured inside it (the work alone, without the cluster's start-up), and the median
(and range) over rounds of the piece time against the plain processes' of the same round (1.00 = no cost).
Then, the cost no task timing can hide in noise: the CPU seconds an *idle* local cluster of ``--procs``
workers burns in ``--idle`` seconds (its worker processes, and the calling process that holds the
scheduler and the nannies), with the studies' settings and with dask's. Threads are pinned
(``OMP_NUM_THREADS=1``). Run it on an idle machine; results go into docs/benchmarks.md ("Cost of the
dask workers").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
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


def on_dask(iters: int, procs: int, config: dict[str, object] | None) -> list[float]:
    from sciprune import shards

    saved = shards.WORKER_CONFIG
    if config is not None:
        shards.WORKER_CONFIG = config
    try:
        return shards.map_shards(piece, [iters] * procs, workers=procs)
    finally:
        shards.WORKER_CONFIG = saved


def idle_cpu(procs: int, config: dict[str, object], seconds: float) -> tuple[list[float], float]:
    """CPU seconds (user + system) that each worker process and the calling process (scheduler, nannies,
    client) burn in ``seconds`` while a local cluster with ``config`` runs no task. The workers are the
    ``procs`` busiest child processes (the others, multiprocessing's resource tracker, sleep)."""
    import dask
    import psutil
    from distributed import Client, LocalCluster

    with dask.config.set(config):
        cluster = LocalCluster(n_workers=procs, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1")
    with cluster, Client(cluster):
        time.sleep(2.0)  # past the start-up
        me = psutil.Process()
        children = me.children(recursive=True)

        def cpu(p: psutil.Process) -> float:
            t = p.cpu_times()
            return t.user + t.system

        before = [cpu(p) for p in children], cpu(me)
        time.sleep(seconds)
        after = [cpu(p) for p in children], cpu(me)
    busy = sorted((a - b for a, b in zip(after[0], before[0])), reverse=True)[:procs]
    return busy, after[1] - before[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2, help="pieces and workers at once (default 2)")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of one piece alone, about (default 15)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every way (default 3)")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of the idle-cluster measurement (default 30)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    from sciprune.shards import MALLOC_ENV

    os.environ.update(MALLOC_ENV)  # plain processes start with the glibc settings map_shards gives its workers
    import torch

    torch.set_num_threads(1)
    probe = _run(WORKLOAD, 5, 1)[0] / 5
    iters = max(5, round(args.seconds / probe))
    from sciprune import shards

    ways: list[tuple[str, Callable[[], list[float]]]] = [
        ("plain processes (the ceiling)", lambda: _run(WORKLOAD, iters, args.procs)),
        ("map_shards, as the studies run it", lambda: on_dask(iters, args.procs, None)),
        ("map_shards, dask's default worker settings", lambda: on_dask(iters, args.procs, {})),
    ]
    pieces: dict[str, list[float]] = {name: [] for name, _ in ways}
    ratios: dict[str, list[float]] = {name: [] for name, _ in ways}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits every way of its round
        means = {name: statistics.fmean(run()) for name, run in ways}
        for name, mean in means.items():
            pieces[name].append(mean)
            ratios[name].append(mean / means[ways[0][0]])
    print(f"{WORKLOAD}: {iters} steps a piece, {args.procs} pieces at once, {mp.cpu_count()} cores, "
          f"{args.rounds} interleaved rounds")
    print(f"{'way':<44} {'piece s (median)':>17} {'piece / plain, median (min-max)':>33}")
    for name, _ in ways:
        r = ratios[name]
        print(f"{name:<44} {statistics.median(pieces[name]):>17.2f} "
              f"{statistics.median(r):>18.3f}x ({min(r):.3f}-{max(r):.3f})")
    print(f"idle local cluster of {args.procs} workers, {args.idle:g} s: CPU seconds burnt (% of {args.procs} cores)")
    for name, config in (("the studies' settings", shards.WORKER_CONFIG), ("dask's defaults", {})):
        workers, caller = idle_cpu(args.procs, config, args.idle)
        share = 100 * (sum(workers) + caller) / (args.idle * args.procs)
        print(f"  {name:<24} workers {' + '.join(f'{w:.2f}' for w in workers)}, caller {caller:.2f}: {share:.1f} %")


if __name__ == "__main__":
    main()
