r"""One shard of the Monte Carlo ensemble: its members trained, pruned and evaluated as one model.

The members of a shard live in one :class:`~sciprune.nn.stacked.StackedMLP` (weights
``[P, out, in]``): every step is one batched forward/backward over all members on a shared
minibatch. Member ``p`` (its global index) starts from ``MLP(sizes, generator=torch_generator(seed,
"member", p))``, so it is the same network whichever shard holds it. The loss is the **sum** of the
members' MSEs, so member ``p``'s gradient is exactly its own MSE's gradient (independent of the
other members); Adam (one state, carried through every stage) keeps per-entry moments, so each
member has its own optimizer state. Adam steps one member-major buffer ``[P, N]`` holding every
parameter (:func:`make_adam`), so freezing a member indexes one row of it and of each moment.

Each stage (dense, then each sparsity of the schedule) prunes every member's layers to the
stage's fraction of its weights (``core.pruning.prune``, per member, by the config's
``prune.criterion`` and ``prune.allocation``: magnitude, layerwise by default; the masks are
cumulative, so pruned weights never come back) and retrains to the **plateau rule**, per
member on validation data: every ``check_every`` batches each member's MSE on the validation rows
is recorded; once ``2·window`` batches are recorded, a member whose mean over the older window is
less than ``1 + improvement`` times its mean over the newer one has plateaued and **stops**: it
keeps its weights and its Adam moments exactly (they are restored after each step of the stacked
optimizer) while the others continue. The stage ends when every member has stopped, or after
``max_batches`` batches. A member whose validation loss is not finite stops too (diverged; its
rows record it).

Every (member, stage) is then evaluated on the whole test set. The weights of each member's
latest stage with test MSE ≤ threshold (its *sparsest capable network* so far) are kept.

The loop is the core's: ``train_dense`` (one "epoch" = :func:`train_to_plateau` with the dense
budget) and ``run_cascade`` (iterative, ``retrain="finetune"``: the Adam state carried across
stages, one "epoch" per stage = :func:`train_to_plateau` with the stage budget), with the study's
pieces in one :class:`ShardSteps` object whose ``evaluate`` returns one metrics dict per member.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Method, Pruning, StageInfo, dense_weights, flat_optimizer, load_state,
    network_stats, run_cascade, save_state, torch_generator, train_dense,
)
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
    device: str = "cpu"


def on_device(data: MothData, device: torch.device) -> MothData:
    """The splits moved to ``device`` (read and scaled on the CPU: the same numbers on every device)."""
    if device.type == "cpu":
        return data
    def move(s: Split) -> Split:
        return Split(s.x.to(device), s.y.to(device))

    return replace(data, train=move(data.train), val=move(data.val), test=move(data.test))


def build(cfg: MothConfig, members: tuple[int, ...]) -> StackedMLP:
    sizes = [10, *cfg.model.hidden, 7]
    mlps = [MLP(sizes, cfg.model.activation, generator=torch_generator(cfg.seed, "member", p)) for p in members]
    return StackedMLP.from_members(mlps)


def make_adam(params: Any, lr: float, members: int) -> torch.optim.Optimizer:
    """The ensemble's Adam: fused (one kernel per step) over one member-major
    :class:`~sciprune.core._flat.FlatParameters` buffer ``[P, N]`` holding every parameter, so a step is a
    few calls whatever the depth, and a member's weights and moments are row ``p`` of the buffer and
    of each moment (what freezing a member indexes)."""
    return flat_optimizer(params, torch.optim.Adam, members=members, lr=lr, fused=True)


def member_mse(model: StackedMLP, split: Split, rows: int | None = None) -> Tensor:
    """MSE of each member (mean over rows and the 7 outputs), ``[P]`` float64 on the CPU, in row chunks
    (summed on the data's device)."""
    x, y = (split.x, split.y) if rows is None else (split.x[:rows], split.y[:rows])
    chunk = max(256, 2**22 // (model.members * max(model.sizes)))
    total = torch.zeros(model.members, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            err = model(x[s : s + chunk]) - y[s : s + chunk]
            total += (err.double() ** 2).sum(dim=(1, 2))
    return (total / (len(x) * y.shape[1])).cpu()


def _frozen_copies(params: Sequence[Tensor], optimizer: torch.optim.Optimizer,
                   frozen: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(tensor, copy of its frozen members' slices)`` (``index_select`` on the member axis) for every
    parameter and every per-entry optimizer state tensor (see :func:`_put_back`)."""
    return [(t, t.index_select(0, frozen)) for t in _member_tensors(params, optimizer)]


def _put_back(frozen: Tensor, copies: list[tuple[Tensor, Tensor]]) -> None:
    """Write the slices of :func:`_frozen_copies` back (``index_copy_``): the frozen members are unchanged."""
    with torch.no_grad():
        for t, saved in copies:
            t.index_copy_(0, frozen, saved)


def _member_tensors(params: Sequence[Tensor], optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """Every parameter and every optimizer state tensor shaped like it (Adam's moments), detached."""
    out = []
    for p in params:
        out.append(p.detach())
        out.extend(v for v in optimizer.state.get(p, {}).values()
                   if isinstance(v, Tensor) and v.shape == p.shape)
    return out


def earliest_stop(cfg: MothConfig, max_batches: int, min_batches: int = 0) -> int:
    """Batches :func:`train_to_plateau` runs when every member stops at the first check the plateau rule
    allows: the rule compares two windows, so it needs ``2·window`` batches of checks, and no member
    stops before ``min_batches``; at most ``max_batches``."""
    t = cfg.train
    first = max(2 * (t.window // t.check_every), math.ceil(min_batches / t.check_every)) * t.check_every
    return min(max_batches, first)


def train_to_plateau(model: StackedMLP, optimizer: torch.optim.Optimizer, data: MothData, cfg: MothConfig,
                     generator: torch.Generator, max_batches: int, min_batches: int = 0) -> tuple[Tensor, Tensor, float]:
    """Train until every member plateaus (see the module docstring).

    No member stops before ``min_batches`` batches (but a non-finite loss still stops it).
    Returns ``(batches per member, stopped per member, mean training MSE per member and batch)``.

    Per step the loop does the work of the step and nothing else: the set of active members changes
    only at a validation check, so the frozen members' indices, their batch counts and the
    choice to save and restore their slices are settled there; the per-step training losses stay
    tensors (no host round trip) until the end.
    """
    t = cfg.train
    x, y, n = data.train.x, data.train.y, len(data.train.x)
    device = x.device  # the bookkeeping stays on the CPU; what a step indexes lives beside the data
    members = model.members
    params = [p for group in optimizer.param_groups for p in group["params"]]  # the flat buffer, or the model's
    active = torch.ones(members, dtype=torch.bool)
    active_on = active.to(device)
    frozen = torch.zeros(0, dtype=torch.long, device=device)  # indices of the stopped members (fixed between two checks)
    batches = torch.zeros(members, dtype=torch.long)
    counted = 0  # batches already added to ``batches``
    # per batch: the sum of the active members' losses, written into one buffer, as the validation
    # MSEs are (a list of per-batch 0-d tensors pinned the allocator's heap: +200 kB of RSS a batch
    # at the paper size)
    sums = torch.empty(max_batches, dtype=torch.float32, device=device)
    done = 0  # batches run
    history = torch.empty(max_batches // t.check_every, members, dtype=torch.float64)  # validation MSEs
    checks = 0  # rows of ``history`` written
    k = t.window // t.check_every
    order, pos = torch.randperm(n, generator=generator).to(device), 0
    model.train()
    for b in range(max_batches):
        if pos + t.batch_size > n:
            order, pos = torch.randperm(n, generator=generator).to(device), 0
        idx = order[pos : pos + t.batch_size]
        pos += t.batch_size
        optimizer.zero_grad(set_to_none=True)
        err = model(x[idx]) - y[idx]
        loss = (err**2).mean(dim=(1, 2))
        loss.sum().backward()
        lost = loss.detach()
        sums[b] = lost.sum() if len(frozen) == 0 else lost[active_on].sum()
        done = b + 1
        if len(frozen):
            copies = _frozen_copies(params, optimizer, frozen)
            optimizer.step()
            _put_back(frozen, copies)
        else:
            optimizer.step()
        if (b + 1) % t.check_every == 0:
            batches += active.long() * (b + 1 - counted)
            counted = b + 1
            history[checks] = last = member_mse(model, data.val, t.val_rows)
            checks += 1
            stop = ~torch.isfinite(last)
            if checks >= 2 * k:
                older = history[checks - 2 * k : checks - k].mean(dim=0)
                newer = history[checks - k : checks].mean(dim=0)
                stop |= older / newer < 1.0 + t.improvement
            if b + 1 < min_batches:
                stop &= ~torch.isfinite(last)  # before min_batches only a diverged member stops
            active &= ~stop
            active_on = active.to(device)
            frozen = (~active).nonzero().squeeze(1).to(device)
            if not bool(active.any()):
                break
    batches += active.long() * (done - counted)
    total = 0.0
    for v in sums[:done].tolist():
        total += v  # summed in this order, in double: the same number as a running ``float`` sum
    return batches, ~active, total / max(int(batches.sum()), 1)


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


@dataclass(frozen=True)
class Plateau:
    """Training to the plateau rule with a batch budget (a :class:`~sciprune.core._cascade.Trainer`): one
    "epoch" is one :func:`train_to_plateau`; it returns each member's batches and whether it plateaued
    as ``per_member`` metrics, which the cascade puts in the rows."""

    cfg: MothConfig
    data: MothData
    members: int
    max_batches: int
    min_batches: int = 0

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return make_adam(params, self.cfg.train.lr, self.members), None

    def train(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
        assert isinstance(model, StackedMLP)
        batches, stopped, loss = train_to_plateau(model, optimizer, self.data, self.cfg, generator,
                                                  self.max_batches, self.min_batches)
        return {"loss": loss, "per_member": [{"batches": int(b), "plateaued": bool(s)}
                                             for b, s in zip(batches.tolist(), stopped.tolist())]}


@dataclass
class ShardSteps(CascadeProtocol):
    """The cascade's pieces for one shard (the cascade itself prunes, by ``prune.criterion``, magnitude by
    default, and ``prune.allocation`` per member): the plateau rule,
    per-member evaluation (which also keeps each member's optimum weights in ``optimum.pt``) and the
    wall time of each stage."""

    job: ShardJob
    data: MothData
    trainer: Plateau
    optimum: dict[str, Tensor]
    optimum_stage: list[int]
    timings: list[dict[str, Any]] = field(default_factory=list)
    clock: float = field(default_factory=time.perf_counter)

    @property
    def optimum_file(self) -> Path:
        return Path(self.job.checkpoint_dir) / "optimum.pt"

    def build(self, arch: dict[str, Any]) -> torch.nn.Module:
        return StackedMLP.from_arch(arch).to(self.job.device)

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return self.trainer.optimizer(params)

    def train(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
        return self.trainer.train(model, optimizer, generator)

    def evaluate(self, model: torch.nn.Module, stage: StageInfo) -> list[dict[str, Any]]:
        return self.evaluate_at(model, stage.index + 1)  # stage 0 is the dense network

    def evaluate_at(self, model: torch.nn.Module, stage: int) -> list[dict[str, Any]]:
        """Each member's metrics at ``stage`` (0 = dense); a capable member's weights become its optimum."""
        assert isinstance(model, StackedMLP)
        cfg, members = self.job.cfg, self.job.members
        with torch.no_grad():
            test, val = member_mse(model, self.data.test), member_mse(model, self.data.val)
        out = []
        for j, net in enumerate(network_rows(model, members)):
            out.append({**net, "method": cfg.prune.criterion, "seed": cfg.seed, "stage": stage, "test_mse": float(test[j]),
                        "val_mse": float(val[j])})
            if float(test[j]) <= cfg.threshold:
                self.optimum_stage[j] = stage
                for k, v in model.state_dict().items():
                    if k in self.optimum:
                        self.optimum[k][j] = v[j].cpu()
        save_state(self.optimum_file, {"members": list(members), "arch": model.arch, "state": self.optimum,
                                       "stage": self.optimum_stage})
        return out

    def on_stage(self, rows: list[dict[str, Any]]) -> None:
        """Record the stage's wall time (since the previous stage ended) and its batches."""
        now = time.perf_counter()
        batches = [int(r["batches"]) for r in rows]
        self.timings.append({"shard_first_member": self.job.members[0], "members": len(self.job.members),
                             "stage": rows[0]["stage"], "seconds": now - self.clock,
                             "member_batches": sum(batches), "max_batches": max(batches)})
        self.clock = now


def run_shard(job: ShardJob) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Dense training (``core.cascade.train_dense``), then the schedule on ``core.cascade.run_cascade``
    with :class:`ShardSteps`, finetuning (Adam state carried) to the plateau rule. Only the last complete
    stage's checkpoint is kept. Returns ``(rows, timings)``: one row per member × stage (``stage`` 0 =
    dense), and wall times.
    """
    cfg = job.cfg
    device = torch.device(job.device)
    data = on_device(load(job.data_path, seed=cfg.seed, val_fraction=cfg.data.val_fraction,
                          test_fraction=cfg.data.test_fraction, max_rows=cfg.data.max_rows), device)
    directory = Path(job.checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    model = build(cfg, job.members).to(device)
    steps = ShardSteps(job, data, Plateau(cfg, data, len(job.members), cfg.train.max_batches_stage),
                       *_optimum(job, model))
    # dense: core's train_dense (checkpointed); its rows are kept beside its checkpoint
    dense_rows_file = directory / "dense_rows.pt"
    resumed = job.resume and dense_rows_file.exists()
    dense = train_dense(model, replace(steps.trainer, max_batches=cfg.train.max_batches_dense,
                                       min_batches=cfg.train.min_batches_dense),
                        epochs=1, seed=cfg.seed, checkpoint=directory / "dense.pt", resume=resumed)
    if resumed:
        dense_rows = load_state(dense_rows_file)["rows"]
    else:
        model.eval()
        n_dense = dense_weights(model)
        per_member = dense.train_metrics["per_member"]
        dense_rows = [{"stage": 0, "sparsity": 0.0, "member": j, **network_stats(model, n_dense // model.members, member=j),
                       "retrain_loss": dense.losses[-1], **metrics, **per_member[j]}
                      for j, metrics in enumerate(steps.evaluate_at(model, 0))]
        steps.on_stage(dense_rows)
        save_state(dense_rows_file, {"rows": dense_rows})
    p = cfg.prune
    rows = run_cascade(dense, CascadeSpec(tuple(cfg.schedule), mode="iterative", retrain_epochs=1, retrain=p.retrain),
                       steps, seed=cfg.seed, key="moth", checkpoint_dir=directory, resume=job.resume, keep_stages="last",
                       pruning=Pruning(Method(p.criterion, p.criterion, allocation=p.allocation)))
    return [*dense_rows, *rows], steps.timings


def _optimum(job: ShardJob, model: StackedMLP) -> tuple[dict[str, Tensor], list[int]]:
    """Each member's optimum weights and stage so far: saved ones on resume, else the initial weights and -1."""
    optimum_file = Path(job.checkpoint_dir) / "optimum.pt"
    if job.resume and optimum_file.exists():
        best = load_state(optimum_file)
        return best["state"], list(best["stage"])
    return ({k: v.detach().cpu().clone() for k, v in model.state_dict().items() if not k.endswith("_mask")},
            [-1] * len(job.members))
