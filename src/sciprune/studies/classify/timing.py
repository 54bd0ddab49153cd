"""Measured inference time of compacted unit- and ID-pruned networks against the dense one.

Timing is a measurement, not a result to reproduce (one thread, dense and compact alternated): it goes to ``timing.csv`` (not ``metrics.csv``)
and never into a test. Networks come from the first seed's one-shot stage checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sciprune.core import compact, count_params, load_network, mlp_flops, stage_checkpoint, torch_generator
from sciprune.nn.mlp import MLP
from sciprune.studies.base import RunContext
from sciprune.files import atomic_write_csv
from sciprune.studies.classify.config import ClassifyConfig
from sciprune.studies.timing import paired_times

TIMED_SPARSITIES = (0.5, 0.75, 0.9)


def _load(path: Path) -> MLP:
    """A network from a stage or dense checkpoint of the cascade."""
    model = load_network(path, MLP.from_arch)
    assert isinstance(model, MLP)
    return model


def write_timing(cfg: ClassifyConfig, ctx: RunContext) -> None:
    """``timing.csv``: dense vs compacted forward time at the schedule's sparsities nearest 50/75/90 %."""
    folder = ctx.checkpoints / f"seed{cfg.seed}"
    sched = cfg.prune.sparsities
    stages = sorted({min(range(len(sched)), key=lambda i: abs(sched[i] - s)) for s in TIMED_SPARSITIES})
    dense = _load(folder / "dense.pt")
    x = torch.randn(cfg.timing_batch, dense.sizes[0], generator=torch_generator(cfg.seed, "timing"))
    rows = []
    for method in [m for m in cfg.prune.methods if m in ("unit", "id")]:
        for i in stages:
            path = stage_checkpoint(folder / f"{method}-oneshot", i)
            if not path.exists():
                continue
            net = compact(_load(path))
            t_dense, t_net = paired_times(dense, net, x)
            rows.append({
                "method": method, "sparsity": sched[i], "batch": cfg.timing_batch, "threads": 1,
                "params_dense": count_params(dense).total, "params_compact": count_params(net).total,
                "ideal_speedup": mlp_flops(dense) / mlp_flops(net), "ms_dense": t_dense, "ms_compact": t_net,
                "speedup": t_dense / t_net,
            })
    if rows:
        atomic_write_csv(ctx.out / "timing.csv", rows)
