"""The classify protocol: per seed, train a dense MLP once, then one cascade per method and variant.

Methods (:mod:`sciprune.core._methods`; output layer never pruned, as in Keras_pruning), or any
registered method or criterion:

* ``weight``: unstructured magnitude pruning of each hidden weight matrix;
* ``unit``: structured pruning of the neurons with the smallest L2 norm of incoming weights;
* ``id``: interpolative-decomposition pruning keeping as many neurons per layer as ``unit`` does
  (at least one), with the next layer corrected by the interpolation matrix.

Variants: ``oneshot`` (the seed's protocol: each sparsity from the dense net, no retraining) and,
when ``prune.retrain_epochs > 0``, ``retrained`` (the same followed by retraining).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Pruning, StageInfo, compact, count_params, dense_weights,
    network_stats, resolve_method, run_cascade, save_checkpoint, supervised_epoch, torch_generator, train_dense,
)
from sciprune.nn.mlp import MLP
from sciprune.studies.base import RunContext
from sciprune.shards import map_shards
from sciprune.studies.classify.config import ClassifyConfig
from sciprune.studies.classify.data import Split, load_data
from sciprune.studies.classify.timing import write_timing


def evaluate(model: nn.Module, x: Tensor, y: Tensor, *, batch: int = 8192) -> dict[str, float]:
    """Test accuracy (%) and mean cross-entropy; plus the parameter count after compaction."""
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch):
        logits = model(x[i : i + batch])
        loss += float(F.cross_entropy(logits, y[i : i + batch], reduction="sum"))
        correct += int((logits.argmax(dim=1) == y[i : i + batch]).sum())
    return {"accuracy": 100.0 * correct / len(x), "loss": loss / len(x)}


@dataclass(frozen=True)
class SeedJob:
    """One independent shard of a classify run: everything for one seed (picklable, for dask)."""

    cfg: ClassifyConfig
    seed: int
    out: Path
    resume: bool
    device: str
    quiet: bool
    data: Split | None = None  # loaded once by the driver when shards run in-process


def _load(cfg: ClassifyConfig) -> Split:
    d = cfg.data
    return load_data(d.name, data_dir=d.data_dir, seed=cfg.seed, test_fraction=d.test_fraction, limit_train=d.limit_train)


def run(cfg: ClassifyConfig, ctx: RunContext) -> None:
    """Run every seed (a shard each: in-process or on dask workers), then time compacted nets."""
    sharded = ctx.workers > 1 or ctx.scheduler is not None
    data = _load(cfg)  # bad data fails here, in one line, before any work starts
    jobs = [SeedJob(cfg, cfg.seed + r, ctx.out, ctx.resume, str(ctx.device), ctx.quiet or sharded,
                    None if sharded else data) for r in range(cfg.repeats)]
    finished: dict[int, list[dict[str, Any]]] = {}

    def save(i: int, rows: list[dict[str, Any]]) -> None:
        finished[i] = rows
        ctx.write_rows([row for j in sorted(finished) for row in finished[j]])

    map_shards(run_seed, jobs, workers=ctx.workers, scheduler=ctx.scheduler, progress=ctx.progress,
               desc="seeds", on_result=save)
    write_timing(cfg, ctx)


def run_seed(job: SeedJob) -> list[dict[str, Any]]:
    """Train the dense MLP of one seed, then run its method x variant cascades; its metric rows."""
    cfg, seed = job.cfg, job.seed
    ctx = RunContext(out=job.out, resume=job.resume, quiet=job.quiet, device=torch.device(job.device))
    steps = SeedSteps.of(cfg, job.data if job.data is not None else _load(cfg), ctx, seed)
    variants = {"oneshot": 0} | ({"retrained": cfg.prune.retrain_epochs} if cfg.prune.retrain_epochs else {})
    folder = ctx.checkpoints / f"seed{seed}"
    model = MLP(steps.sizes, cfg.model.activation, generator=torch_generator(seed, "init")).to(ctx.device)
    dense = train_dense(model, steps, epochs=cfg.train.epochs, seed=seed, checkpoint=folder / "dense.pt",
                        resume=ctx.resume, progress=ctx.progress)
    model.eval()
    with torch.no_grad():
        rows = [{"method": "dense", "variant": "dense", "seed": seed, "stage": -1, "sparsity": 0.0,
                 **network_stats(model, dense_weights(model)), **steps.evaluate(model)}]
    hidden = tuple(f"layers.{i}" for i in range(len(model.linears) - 1))
    for method in cfg.prune.methods:
        # min_keep=0: Keras_pruning's protocol removes round(s * n) even when that empties a layer
        pruning = Pruning(resolve_method(method), layers=hidden, min_keep=0)
        for variant, epochs in variants.items():
            spec = CascadeSpec(tuple(cfg.prune.sparsities), mode="oneshot", retrain_epochs=epochs,
                               retrain=cfg.prune.retrain)
            stage_rows = run_cascade(dense, spec, replace(steps, method=method, variant=variant), seed=seed,
                                     key=f"{method}-{variant}", checkpoint_dir=folder / f"{method}-{variant}",
                                     resume=ctx.resume, progress=ctx.progress, pruning=pruning)
            rows.extend({"method": method, "variant": variant, "seed": seed, **row} for row in stage_rows)
    return rows


@dataclass(frozen=True)
class SeedSteps(CascadeProtocol):
    """The cascade's pieces for one seed (and, in a cascade, one ``method`` and ``variant``); ``on_device``
    is ``data`` on the run's device (ID pruning draws its samples from ``data``, on the CPU)."""

    cfg: ClassifyConfig
    data: Split
    on_device: Split
    ctx: RunContext
    seed: int
    method: str = ""
    variant: str = ""

    @classmethod
    def of(cls, cfg: ClassifyConfig, data: Split, ctx: RunContext, seed: int) -> "SeedSteps":
        d = data
        moved = replace(d, **{k: getattr(d, k).to(ctx.device) for k in ("x_train", "y_train", "x_test", "y_test")})
        return cls(cfg, data, moved, ctx, seed)

    @property
    def sizes(self) -> list[int]:
        return [self.data.n_features, *self.cfg.model.hidden, self.data.n_classes]

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return MLP.from_arch(arch).to(self.ctx.device)

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(params, lr=self.cfg.train.lr), None

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        d = self.on_device
        return supervised_epoch(model, optimizer, generator, inputs=d.x_train, targets=d.y_train,
                                loss_fn=F.cross_entropy, batch_size=self.cfg.train.batch_size)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, stage: StageInfo | None = None) -> dict[str, float]:
        """Test metrics; saves the network of the heat-map sparsity (first seed, one-shot: as pruned)."""
        assert isinstance(model, MLP)
        cfg = self.cfg
        if (stage is not None and self.seed == cfg.seed and self.variant == "oneshot"
                and abs(stage.sparsity - cfg.prune.heatmap_sparsity) < 1e-9):
            save_checkpoint(heatmap_path(self.ctx.out, self.method), model,
                            meta={"method": self.method, "sparsity": stage.sparsity})
        return {**evaluate(model, self.on_device.x_test, self.on_device.y_test), "compact_params": count_params(compact(model)).total}

    def id_samples(self, model: nn.Module, generator: torch.Generator, stage: StageInfo) -> Tensor:
        """``prune.id_samples`` training rows (drawn on the CPU) for the cascade's ID, which keeps
        :func:`~sciprune.core._methods.kept_width`'s ``per_layer`` widths (as many neurons as ``unit``)."""
        idx = torch.randperm(len(self.data.x_train), generator=generator)[: self.cfg.prune.id_samples]
        return self.data.x_train[idx].to(next(model.parameters()).device)

def heatmap_path(run_dir: Path, method: str) -> Path:
    return run_dir / "checkpoints" / f"heatmap-{method}.safetensors"
