"""Independent shards of a run (seeds, ensemble members, sweep points), in-process or on dask.

``map_shards(fn, items, workers=..., scheduler=...)`` returns ``[fn(item) for item in items]`` in
order, computed

* in this process, one after another (``workers=1``, no scheduler: the default);
* on a local dask.distributed cluster of ``workers`` single-threaded processes; or
* on an existing cluster at ``scheduler`` (``tcp://host:8786``).

Shards must not depend on each other or on global state: each derives its randomness from its own
seed, so the results are the same whichever way they run. The one piece of global state a shard may
read, the criteria and methods the caller registered, travels with every task to dask workers
(:mod:`sciprune.core._registrations`). Every shard pins torch to one thread,
so float reductions are ordered the same in a worker and in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch

from sciprune.core import Registrations, registrations
from sciprune.core import adopt_registrations
from sciprune.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


#: glibc settings of local workers. dask's nanny starts them with ``MALLOC_TRIM_THRESHOLD_=65536``,
#: which also fixes glibc's mmap threshold at its 128 KiB default, so every step's transient tensors
#: were mapped and unmapped afresh: a moth quick-preset shard spent 181 s in the kernel beside 232 s
#: of its own work. Training reuses the same sizes every step, so workers keep freed memory in the
#: heap (measured on a shortened quick preset: 28.9 s -> 1.2 s of system time, 38 s -> 21.5 s wall).
MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**30)}
#: dask settings of local clusters (workers, and the nannies and scheduler in the calling process):
#:
#: * no statistical profiler: a worker thread that samples the running task's stack every 10 ms, taking
#:   the GIL from it (the studies' small tensors keep the task in Python): 4-5 % of a flows task;
#: * slower periodic callbacks: the event-loop health tick (20 ms by default), the memory monitor
#:   (100 ms; the spill / pause / terminate thresholds are then checked each second) and the system
#:   monitor (500 ms; it feeds only the dashboard): idle, a 2-worker cluster burned 5.1 % of two cores
#:   with dask's intervals and 0.5 % with these.
#:
#: benchmarks/dask_overhead.py measures both (docs/benchmarks.md). Local clusters also run no
#: dashboard: its address was printed nowhere.
WORKER_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


def worker_environment() -> dict[str, str]:
    """The environment a user's ``dask worker`` processes should start with to run as local workers do:
    :data:`MALLOC_ENV` and :data:`WORKER_CONFIG` in dask's variable form (``distributed.admin.tick.interval``
    is ``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL``); docs/scaleout.md prints it as an ``export`` line."""
    def name(key: str) -> str:
        return "DASK_" + "__".join(part.replace("-", "_").upper() for part in key.split("."))

    return {**MALLOC_ENV, **{name(k): str(v) for k, v in WORKER_CONFIG.items()}}


def _single_threaded(fn: Callable[[T], R], item: T, regs: Registrations | None = None) -> R:
    if regs:  # on a worker: the criteria and methods the calling process registered (a fresh process lacks them)
        adopt_registrations(regs)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(item)
    finally:
        torch.set_num_threads(before)


def map_shards(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[..., Iterator[Any]] | None = None,
    desc: str = "shards",
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(x) for x in items]``, possibly on dask workers; ``fn`` must be picklable (module level).

    ``on_result(i, result)`` is called as each shard finishes (in completion order), e.g. to save
    partial results.
    """
    wrap = progress or (lambda it, **_: iter(it))
    done = on_result or (lambda i, r: None)
    if scheduler is None and workers <= 1:
        out = []
        for i, item in enumerate(wrap(items, desc=desc, total=len(items))):
            out.append(_single_threaded(fn, item))
            done(i, out[-1])
        return out
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError("--workers > 1 and --scheduler need dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    try:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError) as err:
                raise InputError(f"cannot reach the dask scheduler {scheduler!r} ({err}); expected tcp://host:port of a running scheduler") from None
        else:
            import dask

            settings = {**{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in MALLOC_ENV.items()}, **WORKER_CONFIG}
            with dask.config.set(settings):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
            client = Client(cluster)
        with client:
            regs = registrations()
            futures = [client.submit(_single_threaded, fn, item, regs, pure=False) for item in items]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list[Any] = [None] * len(items)
            for future in wrap(as_completed(futures), desc=desc, total=len(items)):
                i = index[future.key]
                results[i] = future.result()
                done(i, results[i])
            return results
    finally:
        if cluster is not None:
            cluster.close()

