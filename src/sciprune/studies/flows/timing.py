"""Measured time per solve: dense vs WT-masked vs compacted FT fields (``timing.csv``, never metrics).

For the first network of each task and the stages nearest ``analysis.ratios``: one test batch
solved (CNFs: the log-likelihood with its trace; classifiers: the logits), best of
``timing_repeats``, the networks alternated (on the CPU on one thread) so that load on a shared
machine hits all alike. On a GPU (``--device cuda``) each solve is timed between two
synchronisations and ``threads`` is recorded as 0 (``device`` names where it ran). A WT-masked field is timed as it is stored (dense kernels; its masks cost nothing per
evaluation, so any difference is NFE and noise); an FT field is compacted
(:func:`sciprune.core._compact.compact`) and timed as the smaller network.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from sciprune.core import torch_generator
from sciprune.files import atomic_write_csv
from sciprune.nn.ode import CNF, SolverFailed, _ODEModel
from sciprune.studies.base import RunContext
from sciprune.studies.flows.analysis import nearest_stages
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.data import Toy
from sciprune.studies.flows.methods import compact_field
from sciprune.studies.flows.tasks import flops_per_nfe, load_stage, stage_path, tasks


def solve_once(model: _ODEModel, x: torch.Tensor, seed: int) -> int:
    """One evaluation solve; its forward NFE."""
    with torch.no_grad():
        if isinstance(model, CNF):
            model.log_prob(x, generator=torch_generator(seed, "timing"))
        else:
            model(x)
    return model.nfe_forward


def time_solves(models: list[_ODEModel], x: torch.Tensor, *, repeats: int, seed: int) -> list[tuple[float, int]]:
    """Best-of-``repeats`` ms per solve and the NFE of each model, alternated (one thread on the CPU)."""
    cuda = x.device.type == "cuda"
    before = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)
    try:
        nfe = [solve_once(m, x, seed) for m in models]
        best = [float("inf")] * len(models)
        for _ in range(repeats):
            for i, m in enumerate(models):
                if cuda:
                    torch.cuda.synchronize(x.device)
                t0 = time.perf_counter()
                solve_once(m, x, seed)
                if cuda:
                    torch.cuda.synchronize(x.device)
                best[i] = min(best[i], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return [(1e3 * b, n) for b, n in zip(best, nfe)]


def write_timing(cfg: FlowsConfig, ctx: RunContext, datasets: dict[str, Toy], rows: list[dict[str, Any]]) -> None:
    """``timing.csv``: per task and timed stage, ms per solve, NFE and FLOPs of each network."""
    out = []
    stages = nearest_stages(cfg.prune.sparsities, cfg.analysis.ratios)
    for task in tasks(cfg):
        dense_file = stage_path(ctx.out, task, cfg.seed, "dense", -1)
        if not dense_file.exists():
            continue
        dense = load_stage(dense_file, ctx.device)
        x = datasets[task.key].x_test[: min(len(datasets[task.key].x_test), 1024)]
        for i in stages:
            nets: list[tuple[str, _ODEModel]] = [("dense", dense)]
            for method in ("wt", "ft"):
                f = stage_path(ctx.out, task, cfg.seed, method, i)
                if method in cfg.prune.methods and f.exists():
                    m = load_stage(f, ctx.device)
                    nets.append((method, compact_field(m) if method == "ft" else m))
            try:
                measured = time_solves([m for _, m in nets], x, repeats=cfg.analysis.timing_repeats, seed=cfg.seed)
            except SolverFailed:
                continue
            ms0, nfe0 = measured[0]
            for (name, m), (ms, nfe) in zip(nets, measured):
                out.append({
                    "task": task.name, "stage": i, "sparsity": cfg.prune.sparsities[i], "network": name,
                    "batch": len(x), "threads": 0 if ctx.device.type == "cuda" else 1, "device": str(ctx.device), "params": sum(p.numel() for p in m.parameters()),
                    "nfe": nfe, "flops": flops_per_nfe(m), "flops_nfe": flops_per_nfe(m) * nfe,
                    "ms_per_solve": ms, "ms_per_nfe": ms / max(nfe, 1), "speedup_vs_dense": ms0 / ms,
                    "flop_ratio_vs_dense": (flops_per_nfe(dense) * nfe0) / max(flops_per_nfe(m) * nfe, 1),
                })
    if out:
        atomic_write_csv(ctx.out / "timing.csv", out)
