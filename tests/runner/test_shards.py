"""Shards run the same in-process, on a local dask cluster and on a scheduler given by address."""

import pytest
import torch

from sciprune.core import torch_generator
from sciprune.errors import InputError
from sciprune.shards import MALLOC_ENV, WORKER_CONFIG, map_shards


def draw(seed: int) -> tuple[int, list[float]]:
    """A shard: its own seeded draws plus a float reduction (thread-count sensitive in general)."""
    g = torch_generator(seed, "shard")
    a = torch.randn(300, 300, generator=g)
    return torch.get_num_threads(), (a @ a).sum(dim=0)[:5].tolist()


def test_in_process_dask_and_scheduler_address_agree():
    from distributed import LocalCluster

    items = [0, 1, 2, 3]
    seen: list[int] = []
    local = map_shards(draw, items, on_result=lambda i, r: seen.append(i))
    assert seen == items and all(threads == 1 for threads, _ in local)
    assert map_shards(draw, items, workers=2) == local
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address="127.0.0.1:0",
                      host="127.0.0.1") as cluster:
        assert map_shards(draw, items, scheduler=cluster.scheduler_address) == local


def worker_settings(_: int) -> tuple[dict[str, str | None], dict[str, object]]:
    import os

    import dask

    return {k: os.environ.get(k) for k in MALLOC_ENV}, {k: dask.config.get(k) for k in WORKER_CONFIG}


def test_local_workers_start_with_the_heap_kept_no_profiler_and_slow_ticks():
    """dask's nanny would start them with MALLOC_TRIM_THRESHOLD_=65536 (glibc mapping and unmapping
    every step's tensors), its profiler sampling the task every 10 ms and its event loop ticking every
    20 ms; map_shards' local workers get MALLOC_ENV and WORKER_CONFIG instead (each a change from
    dask's default, so none is a no-op)."""
    import dask
    import distributed  # noqa: F401 - loads dask's distributed defaults

    assert WORKER_CONFIG["distributed.worker.profile.enabled"] is False
    assert all(dask.config.get(k) != v for k, v in WORKER_CONFIG.items())  # this process has dask's defaults
    assert map_shards(worker_settings, [0, 1], workers=2) == [(MALLOC_ENV, WORKER_CONFIG)] * 2


def test_unreachable_scheduler_is_one_clear_error():
    with pytest.raises(InputError, match=r"cannot reach the dask scheduler 'tcp://127.0.0.1:9'"):
        map_shards(draw, [0], scheduler="tcp://127.0.0.1:9")
