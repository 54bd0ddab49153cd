r"""One shard of the Monte Carlo ensemble: its members trained, pruned and evaluated as one model.

The members of a shard live in one :class:`~sciprune.nn.stacked.StackedMLP` (weights
``[P, out, in]``): every step is one batched forward/backward over all members on a shared
minibatch. Member ``p`` (its global index) starts from ``MLP(sizes, generator=torch_generator(seed,
"member", p))``, so it is the same network whichever shard holds it. The loss is the **sum** of the
members' MSEs, so member ``p``'s gradient is exactly its own MSE's gradient (independent of the
other members); Adam (one state, carried through every stage) keeps per-entry moments, so each
member has its own optimizer state.

Each stage (dense, then each sparsity of the schedule) prunes every member's layers to the
stage's fraction of its weights by magnitude (``core.pruning.prune``, layerwise, per member; the
masks are cumulative, so pruned weights never come back) and retrains to the **plateau rule**, per
member on validation data: every ``check_every`` batches each member's MSE on the validation rows
is recorded; once ``2·window`` batches are recorded, a member whose mean over the older window is
less than ``1 + improvement`` times its mean over the newer one has plateaued and **stops**: it
keeps its weights and its Adam moments exactly (they are restored after each step of the stacked
optimizer) while the others continue. The stage ends when every member has stopped, or after
``max_batches`` batches. A member whose validation loss is not finite stops too (diverged; its
rows record it).

Every (member, stage) is then evaluated on the whole test set. The weights of each member's
latest stage with test MSE ≤ threshold (its *sparsest capable network* so far) are kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sciprune.core.io import load_state, save_state
from sciprune.core.masks import apply_masks, enforce_masks, load_state_dict
from sciprune.core.pruning import prune
from sciprune.core.seeding import torch_generator
from sciprune.nn.mlp import MLP
from sciprune.nn.stacked import StackedMLP
from sciprune.studies.moth.config import MothConfig
from sciprune.studies.moth.data import INPUTS, MothData, Split, load


@dataclass(frozen=True)
class ShardJob:
    """What a shard needs; picklable, so it can run on a dask worker."""

    cfg: MothConfig
    data_path: str
    members: tuple[int, ...]
    checkpoint_dir: str
    resume: bool


def build(cfg: MothConfig, members: tuple[int, ...]) -> StackedMLP:
    sizes = [10, *cfg.model.hidden, 7]
    mlps = [MLP(sizes, cfg.model.activation, generator=torch_generator(cfg.seed, "member", p)) for p in members]
    return StackedMLP.from_members(mlps)


def member_mse(model: StackedMLP, split: Split, rows: int | None = None) -> Tensor:
    """MSE of each member (mean over rows and the 7 outputs), ``[P]`` float64, in row chunks."""
    x, y = (split.x, split.y) if rows is None else (split.x[:rows], split.y[:rows])
    chunk = max(256, 2**22 // (model.members * max(model.sizes)))
    total = torch.zeros(model.members, dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            err = model(x[s : s + chunk]) - y[s : s + chunk]
            total += (err.double() ** 2).sum(dim=(1, 2))
    return total / (len(x) * y.shape[1])


def _restore(params: Sequence[Tensor], optimizer: torch.optim.Optimizer, frozen: Tensor, members: int) -> list[Any]:
    """Copies of the frozen members' slices of every parameter and per-entry optimizer state."""
    saved = []
    for p in params:
        state = {k: v[frozen].clone() for k, v in optimizer.state.get(p, {}).items()
                 if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == members}
        saved.append((p.detach()[frozen].clone(), state))
    return saved


def train_to_plateau(model: StackedMLP, optimizer: torch.optim.Optimizer, data: MothData, cfg: MothConfig,
                     generator: torch.Generator, max_batches: int) -> tuple[Tensor, Tensor]:
    """Train until every member plateaus (see the module docstring); ``(batches per member, stopped)``."""
    t = cfg.train
    x, y, n = data.train.x, data.train.y, len(data.train.x)
    members = model.members
    params = list(model.parameters())
    active = torch.ones(members, dtype=torch.bool)
    batches = torch.zeros(members, dtype=torch.long)
    history: list[Tensor] = []
    k = t.window // t.check_every
    order, pos = torch.randperm(n, generator=generator), 0
    model.train()
    for b in range(max_batches):
        if pos + t.batch_size > n:
            order, pos = torch.randperm(n, generator=generator), 0
        idx = order[pos : pos + t.batch_size]
        pos += t.batch_size
        optimizer.zero_grad(set_to_none=True)
        err = model(x[idx]) - y[idx]
        (err**2).mean(dim=(1, 2)).sum().backward()
        frozen = (~active).nonzero().squeeze(1)
        saved = _restore(params, optimizer, frozen, members) if len(frozen) else []
        optimizer.step()
        with torch.no_grad():
            for p, (value, state) in zip(params, saved):
                p[frozen] = value
                for key, v in state.items():
                    optimizer.state[p][key][frozen] = v
        batches += active.long()
        if (b + 1) % t.check_every == 0:
            history.append(member_mse(model, data.val, t.val_rows))
            last = history[-1]
            stop = ~torch.isfinite(last)
            if len(history) >= 2 * k:
                older = torch.stack(history[-2 * k : -k]).mean(dim=0)
                newer = torch.stack(history[-k:]).mean(dim=0)
                stop |= older / newer < 1.0 + t.improvement
            active &= ~stop
            if not bool(active.any()):
                break
    return batches, ~active


def network_rows(model: StackedMLP, members: tuple[int, ...]) -> list[dict[str, Any]]:
    """Size and structure of each member: non-zeros, per-layer density, first-layer connectivity."""
    layers = model.stacked
    rows = []
    for j, p in enumerate(members):
        w = [layer.weight[j].detach() for layer in layers]
        nnz_w = sum(int((wi != 0).sum()) for wi in w)
        nnz_b = sum(int((layer.bias[j] != 0).sum()) for layer in layers)
        dense = sum(wi.numel() for wi in w)
        first = w[0] != 0  # [hidden, 10]
        row: dict[str, Any] = {
            "member": p, "achieved_sparsity": 1.0 - nnz_w / dense, "weights_nnz": nnz_w, "params_nnz": nnz_w + nnz_b,
            "layer_density": ";".join(f"{float((wi != 0).double().mean()):.6f}" for wi in w),
        }
        for i, name in enumerate(INPUTS):
            row[f"conn_{name}"] = float(first[:, i].double().mean())
        rows.append(row)
    return rows


def _stage_file(directory: Path, stage: int) -> Path:
    return directory / f"stage_{stage:03d}.pt"


def run_shard(job: ShardJob) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Dense training, then prune → retrain → evaluate per stage; returns ``(rows, timings)``."""
    cfg = job.cfg
    data = load(job.data_path, seed=cfg.seed, val_fraction=cfg.data.val_fraction,
                test_fraction=cfg.data.test_fraction, max_rows=cfg.data.max_rows)
    directory = Path(job.checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stages = [0.0, *cfg.schedule]
    model = build(cfg, job.members)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    rows: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    optimum = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("_mask")}
    optimum_stage = [-1] * len(job.members)
    start = 0
    done = sorted(directory.glob("stage_*.pt"))
    if job.resume and done:
        saved = load_state(done[-1])
        load_state_dict(model, saved["state"])
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        optimizer.load_state_dict(saved["optimizer"])
        rows, timings, optimum, optimum_stage = saved["rows"], saved["timings"], saved["optimum"], saved["optimum_stage"]
        start = int(saved["stage"]) + 1
    enforce_masks(model, optimizer)
    for stage in range(start, len(stages)):
        t0 = time.perf_counter()
        sparsity = stages[stage]
        if stage > 0:
            prune(model, sparsity, criterion="magnitude", allocation="layerwise")
            apply_masks(model)
        max_batches = cfg.train.max_batches_dense if stage == 0 else cfg.train.max_batches_stage
        batches, stopped = train_to_plateau(model, optimizer, data, cfg, torch_generator(cfg.seed, "moth-batches", stage), max_batches)
        model.eval()
        test = member_mse(model, data.test)
        val = member_mse(model, data.val)
        for j, net in enumerate(network_rows(model, job.members)):
            rows.append({"method": "magnitude", "seed": cfg.seed, "stage": stage, "sparsity": sparsity, **net,
                         "test_mse": float(test[j]), "val_mse": float(val[j]), "batches": int(batches[j]),
                         "plateaued": bool(stopped[j])})
            if float(test[j]) <= cfg.threshold:
                optimum_stage[j] = stage
                for k, v in model.state_dict().items():
                    if k in optimum:
                        optimum[k][j] = v[j]
        timings.append({"shard_first_member": job.members[0], "members": len(job.members), "stage": stage,
                        "seconds": time.perf_counter() - t0, "member_batches": int(batches.sum()),
                        "max_batches": int(batches.max())})
        save_state(_stage_file(directory, stage), {
            "stage": stage, "state": model.state_dict(), "optimizer": optimizer.state_dict(), "rows": rows,
            "timings": timings, "optimum": optimum, "optimum_stage": optimum_stage,
        })
        for old in directory.glob("stage_*.pt"):
            if old != _stage_file(directory, stage):
                old.unlink()
    save_state(directory / "optimum.pt", {"members": list(job.members), "arch": model.arch, "state": optimum,
                                          "stage": optimum_stage})
    return rows, timings
