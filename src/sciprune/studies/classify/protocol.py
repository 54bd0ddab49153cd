"""The classify protocol: per seed, train a dense MLP once, then one cascade per method and variant.

Methods (all layerwise, output layer never pruned, as in Keras_pruning):

* ``weight``: unstructured magnitude pruning of each hidden weight matrix;
* ``unit``: structured pruning of the neurons with the smallest L2 norm of incoming weights;
* ``id``: interpolative-decomposition pruning keeping as many neurons per layer as ``unit`` does
  (at least one), with the next layer corrected by the interpolation matrix.

Variants: ``oneshot`` (the seed's protocol: each sparsity from the dense net, no retraining) and,
when ``prune.retrain_epochs > 0``, ``retrained`` (the same followed by retraining).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciprune.core.cascade import CascadeSpec, dense_weights, network_stats, run_cascade, train_dense
from sciprune.core.compact import compact
from sciprune.core.count import count_params
from sciprune.core.idprune import id_prune_mlp
from sciprune.core.io import save_checkpoint
from sciprune.core.pruning import prune
from sciprune.core.seeding import torch_generator
from sciprune.core.train import supervised
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


def kept_neurons(widths: list[int], sparsity: float) -> list[int]:
    """Neurons per hidden layer that unit pruning keeps at ``sparsity`` (ID keeps at least one)."""
    return [max(1, w - round(sparsity * w)) for w in widths]


def prune_step(method: str, cfg: ClassifyConfig, data: Split, model: nn.Module, sparsity: float,
               generator: torch.Generator) -> nn.Module:
    """Prune ``model`` to ``sparsity`` by ``method`` (masks in place, or a new smaller net for ``id``)."""
    assert isinstance(model, MLP)
    hidden = [f"layers.{i}" for i in range(len(model.linears) - 1)]
    # min_keep=0: Keras_pruning's protocol removes round(s * n) even when that empties a layer
    if method == "weight":
        prune(model, sparsity, criterion="magnitude", layers=hidden, min_keep=0)
        return model
    if method == "unit":
        prune(model, sparsity, criterion="neuron_l2", layers=hidden, min_keep=0)
        return model
    idx = torch.randperm(len(data.x_train), generator=generator)[: cfg.prune.id_samples]
    return id_prune_mlp(model, data.x_train[idx].to(next(model.parameters()).device),
                        rank=kept_neurons(model.sizes[1:-1], sparsity))


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
    data = job.data if job.data is not None else _load(cfg)
    dev = ctx.device
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    sizes = [data.n_features, *cfg.model.hidden, data.n_classes]
    train_fn = supervised(x_tr, y_tr, F.cross_entropy, batch_size=cfg.train.batch_size)

    def make_optimizer(params: Any) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(params, lr=cfg.train.lr), None

    @torch.no_grad()
    def eval_fn(model: nn.Module) -> dict[str, float]:
        assert isinstance(model, MLP)
        return {**evaluate(model, x_te, y_te), "compact_params": count_params(compact(model)).total}

    variants = {"oneshot": 0} | ({"retrained": cfg.prune.retrain_epochs} if cfg.prune.retrain_epochs else {})
    folder = ctx.checkpoints / f"seed{seed}"
    model = MLP(sizes, cfg.model.activation, generator=torch_generator(seed, "init")).to(dev)
    dense = train_dense(model, train_fn=train_fn, make_optimizer=make_optimizer, epochs=cfg.train.epochs,
                        seed=seed, checkpoint=folder / "dense.pt", resume=ctx.resume, progress=ctx.progress)
    model.eval()
    with torch.no_grad():
        rows = [{"method": "dense", "variant": "dense", "seed": seed, "stage": -1, "sparsity": 0.0,
                 **network_stats(model, dense_weights(model)), **eval_fn(model)}]
    for method in cfg.prune.methods:
        for variant, epochs in variants.items():
            spec = CascadeSpec(tuple(cfg.prune.sparsities), mode="oneshot", retrain_epochs=epochs,
                               retrain=cfg.prune.retrain)
            stage_rows = run_cascade(
                dense, spec, prune_fn=partial(_prune_and_keep, method, cfg, data, ctx, seed, variant),
                train_fn=train_fn, eval_fn=eval_fn, make_optimizer=make_optimizer,
                build=lambda arch: MLP.from_arch(arch).to(dev), seed=seed, key=f"{method}-{variant}",
                checkpoint_dir=folder / f"{method}-{variant}", resume=ctx.resume, progress=ctx.progress,
            )
            rows.extend({"method": method, "variant": variant, "seed": seed, **row} for row in stage_rows)
    return rows


def _prune_and_keep(method: str, cfg: ClassifyConfig, data: Split, ctx: RunContext, seed: int, variant: str,
                    model: nn.Module, sparsity: float, generator: torch.Generator) -> nn.Module:
    """:func:`prune_step`, saving the network of the heat-map sparsity (first seed, one-shot)."""
    pruned = prune_step(method, cfg, data, model, sparsity, generator)
    if seed == cfg.seed and variant == "oneshot" and abs(sparsity - cfg.prune.heatmap_sparsity) < 1e-9:
        save_checkpoint(heatmap_path(ctx.out, method), pruned, meta={"method": method, "sparsity": sparsity})
    return pruned


def heatmap_path(run_dir: Path, method: str) -> Path:
    return run_dir / "checkpoints" / f"heatmap-{method}.safetensors"
