"""``run(cfg, ctx)``: data (simulated unless given), then the ensemble's shards, then the rows.

The members ``0..P-1`` are split into ``cfg.shards`` contiguous shards, each an independent task
(:func:`sciprune.shards.map_shards`: in-process, on ``--workers`` local dask processes, or on the
cluster at ``--scheduler``; workers must see the data file and the results directory). Each shard
checkpoints after every stage under ``checkpoints/shard_<k>``, so ``--resume`` continues every shard
after its last complete stage. ``metrics.csv`` holds one row per member × stage, sorted by member
and stage, and is rewritten as shards finish; wall times go to ``timing.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sciprune.files import atomic_write_csv, atomic_write_json, read_result_json
from sciprune.shards import map_shards
from sciprune.studies.base import RunContext
from sciprune.studies.moth.config import MothConfig
from sciprune.studies.moth.data import failed_count, load
from sciprune.studies.moth.ensemble import ShardJob, run_shard
from sciprune.studies.moth.simulate import file_state, simulate_file

DATA_INFO = "data.json"


def data_file(cfg: MothConfig, ctx: RunContext) -> Path:
    """The data file: ``cfg.data.path``, or ``<out>/data.h5`` simulated (resumably) now."""
    if cfg.data.path is not None:
        return Path(cfg.data.path)
    path = ctx.out / "data.h5"
    if file_state(path) != (cfg.data.samples, cfg.data.samples):  # absent or unfinished (a damaged one is refused)
        simulate_file(path, cfg.data.samples, seed=cfg.data.sim_seed, chunk=8192, workers=ctx.workers,
                      scheduler=ctx.scheduler, resume=path.exists(), progress=ctx.progress, device=str(ctx.device))
    return path


def shard_members(members: int, shards: int) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in part) for part in np.array_split(np.arange(members), shards)]


def run(cfg: MothConfig, ctx: RunContext) -> None:
    path = data_file(cfg, ctx)
    data = load(path, seed=cfg.seed, val_fraction=cfg.data.val_fraction, test_fraction=cfg.data.test_fraction,
                max_rows=cfg.data.max_rows)
    failed = failed_count(path)
    atomic_write_json(ctx.out / DATA_INFO, {
        "file": str(path), "rows": data.rows, "dropped_nan": data.dropped_nan, "failed_integrations": failed,
        "complete": not data.note, "train": len(data.train.x), "val": len(data.val.x), "test": len(data.test.x),
    })
    if data.note:
        print(f"moth: {data.note}")
    if data.dropped_nan:
        print(f"moth: dropped {data.dropped_nan} data rows with NaN/inf from {path}")
    jobs = [ShardJob(cfg, str(path), members, str(ctx.checkpoints / f"shard_{k:03d}"), ctx.resume, str(ctx.device))
            for k, members in enumerate(shard_members(cfg.members, cfg.shards))]
    results: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}

    def write(i: int, result: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        results[i] = result
        rows = sorted((r for k in sorted(results) for r in results[k][0]), key=lambda r: (r["member"], r["stage"]))
        ctx.write_rows(rows)
        atomic_write_csv(ctx.out / "timing.csv", [t for k in sorted(results) for t in results[k][1]])

    map_shards(run_shard, jobs, workers=ctx.workers, scheduler=ctx.scheduler, progress=ctx.progress,
               desc="moth shards", on_result=write)


def read_data_info(run_dir: Path) -> dict[str, Any]:
    """``data.json`` (the data's counts); ``{}`` with a report note when it is missing, one line when damaged."""
    info = read_result_json(run_dir / DATA_INFO, "moth data summary")
    return info if info is not None else {}
