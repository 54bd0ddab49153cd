"""Measured inference speed of the compacted networks against the dense one (``timing.csv``).

A measurement, not a result to reproduce: it goes to ``timing.csv`` (never ``metrics.csv``, so a
resumed run's metrics stay byte-identical) and into no test. Every compacted network is loaded
back from its checkpoint (so the checkpoint is known to rebuild) and timed against the dense
network alternately on one thread (best of 9), on ``timing_batch`` held-out samples.
"""

from __future__ import annotations

from typing import Any

import torch

from sciprune.core import count_params, flops, load_model_and_meta
from sciprune.files import atomic_write_csv
from sciprune.studies.base import RunContext
from sciprune.studies.timing import paired_times
from sciprune.studies.prune.config import PruneStudyConfig
from sciprune.studies.prune.samples import Samples
from sciprune.studies.prune.names import stage_name
from sciprune.studies.prune.usermodel import cwd_on_path


def write_timing(cfg: PruneStudyConfig, ctx: RunContext, test: Samples) -> None:
    """``timing.csv``: dense vs compacted forward time of every method's stages."""
    folder = ctx.checkpoints / "compact"
    batch = test.take(torch.arange(cfg.timing_batch, device=test.y.device) % test.n)
    with cwd_on_path():
        dense = load_model_and_meta(folder / "dense.safetensors")[0].to(ctx.device).eval()
        rows: list[dict[str, Any]] = []
        for method in cfg.methods:
            for i, sparsity in enumerate(cfg.sparsities):
                path = folder / f"{stage_name(method, i, sparsity)}.safetensors"
                if not path.exists():
                    continue
                net = load_model_and_meta(path)[0].to(ctx.device).eval()
                t_dense, t_net = paired_times(_Call(dense, batch), _Call(net, batch), batch.y)
                rows.append({"method": method, "sparsity": sparsity, "batch": cfg.timing_batch, "threads": 1,
                             "params_dense": count_params(dense).total, "params_compact": count_params(net).total,
                             "ideal_speedup": flops(dense) / max(flops(net), 1), "ms_dense": t_dense,
                             "ms_compact": t_net, "speedup": t_dense / t_net})
    if rows:
        atomic_write_csv(ctx.out / "timing.csv", rows)


class _Call(torch.nn.Module):
    """``net`` applied to the samples' inputs whatever tensor it is called with (for :func:`paired_times`)."""

    def __init__(self, net: torch.nn.Module, samples: Samples) -> None:
        super().__init__()
        self.net, self.samples = net, samples

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        return self.samples.call(self.net)
