"""The nif protocol: data → dense NIF → pruning cascades (L2 nodes, ID nodes) → compaction → POD.

Methods (the nodes of ShapeNet; a residual stream counts once):

* ``l2``: the seed's pNIF: mask the nodes with the smallest RMS-over-p L2 norm of their generated
  weights (criterion ``hyper_node_rms``), then compact;
* ``id``: keep the nodes an interpolative decomposition of the ShapeNet activations selects and
  fold the interpolation into ParameterNet's last layer (:func:`sciprune.nn.nif.id_fold`).

Variants: ``oneshot`` (each sparsity from the dense NIF, no retraining) and ``retrained`` (the
seed's loop: prune further, retrain ``prune.retrain_epochs`` epochs, repeat), both on
:func:`sciprune.core.cascade.run_cascade`. Every stage's model is compacted, so ``params_total`` is
what the pruned NIF really stores. POD rows give the baseline at every rank.

Control (``prune.control``): the unpruned dense NIF retrained with the retrained cascade's exact
schedule (method ``nif``, variant ``same_epochs``, one row per stage), so each pruned stage can be
compared with a dense model that had the same number of training epochs, not only with the dense
model it started from (retraining with a rewound learning rate also keeps improving a dense net).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sciprune.core.cascade import CascadeProtocol, CascadeSpec, Dense, StageInfo, load_stage, run_cascade, train_dense
from sciprune.core.count import count_params
from sciprune.core.io import load_state, save_checkpoint, save_state
from sciprune.core.masks import load_state_dict
from sciprune.core.seeding import torch_generator
from sciprune.errors import InputError
from sciprune.core.pruning import prune
from sciprune.core.shrink import compact_units
from sciprune.core.units import units_of
from sciprune.nn.nif import build_nif, id_fold, theta_context
from sciprune.studies.base import RunContext
from sciprune.studies.nif.config import NifConfig
from sciprune.studies.nif.data import FieldData, Split, flow2d, ks, split, user_file, wave
from sciprune.studies.nif.pod import pod_curve
from sciprune.studies.nif.train import lbfgs, optimizer_factory, train_fn, weighted_mse, with_weights

FIELDS = "fields"


def load_data(cfg: NifConfig) -> FieldData:
    d = cfg.data
    if d.kind == "wave":
        return wave(4.0)
    if d.kind == "wave_high":
        return wave(400.0)
    if d.kind == "ks":
        return ks(list(d.nus), d.nx, d.t_end, d.nt, d.dt)
    if d.kind == "flow2d":
        return flow2d(d.nx, d.t_end, d.nt, d.dt, d.viscosity, d.k0, cfg.seed)
    assert d.path is not None
    c = d.columns
    return user_file(d.path, c.p, c.x, c.u, c.weight)


def arch_of(cfg: NifConfig, data: FieldData) -> dict[str, Any]:
    m = cfg.model
    shape = {"input_dim": data.x.shape[1], "output_dim": data.u.shape[1], "units": m.shape.units,
             "nlayers": m.shape.nlayers, "activation": m.shape.activation, "use_resblock": m.shape.use_resblock}
    if m.family != "NIF":
        shape.update(omega_0=m.shape.omega_0, weight_init_factor=m.shape.weight_init_factor)
    parameter = {"input_dim": data.p.shape[1], "latent_dim": m.parameter.latent_dim, "units": m.parameter.units,
                 "nlayers": m.parameter.nlayers, "activation": m.parameter.activation,
                 "use_resblock": m.parameter.use_resblock}
    return {"class": m.family, "shape": shape, "parameter": parameter}


def predict(model: nn.Module, inputs: Tensor, batch: int = 65536) -> Tensor:
    with torch.no_grad():
        return torch.cat([model(inputs[i:i + batch]) for i in range(0, inputs.shape[0], batch)])


def errors(model: nn.Module, sp: Split) -> dict[str, float]:
    """Relative L2 error and RMSE on the test rows, in physical units (NaN when diverged)."""
    pred = sp.norm.physical(predict(model, sp.test_in).double().numpy())
    truth = sp.test_u.double().numpy()
    diff = pred - truth
    rel = float(np.linalg.norm(diff) / np.linalg.norm(truth))
    return {"rel_l2": rel if math.isfinite(rel) else float("nan"),
            "rmse": float(np.sqrt(np.mean(diff**2))) if np.isfinite(diff).all() else float("nan")}


def size_stats(net: nn.Module, dense_nodes: int, numbers: int) -> dict[str, Any]:
    model: Any = net
    total, nnz = count_params(model)
    nodes = model.shape_nodes() if hasattr(model, "shape_nodes") else 0
    return {"params_total": total, "params_nnz": nnz, "shape_nodes": nodes,
            "nodes_kept": round(nodes / dense_nodes, 6) if dense_nodes else 1.0,
            "shape_flops": model.shape_flops() if hasattr(model, "shape_flops") else None,
            "compression": round(total / numbers, 8)}


def group_sizes(model: nn.Module) -> dict[str, int]:
    return {g.name: g.size for g in units_of(model).groups if g.prunable}


def prune_nodes(model: nn.Module, dense_sizes: dict[str, int], sparsity: float, allocation: str, p: Tensor) -> nn.Module:
    """pNIF: mask the nodes with the lowest ``hyper_node_rms`` (core prune), then compact (core shrink).

    ``sparsity`` is the fraction of the *dense* nodes removed; the model may already be narrower
    (an iterative cascade compacts every stage), so core gets the matching fraction of its current
    nodes: per group (layerwise) or over all groups (global). Every group keeps at least one node.
    """
    cur = group_sizes(model)
    target = {g: max(1, n - round(sparsity * n)) for g, n in dense_sizes.items()}
    ctx = theta_context(model, p)  # type: ignore[arg-type]
    if allocation == "layerwise":
        over = {g: (cur[g] - min(target[g], cur[g])) / cur[g] for g in cur}
        prune(model, 0.0, criterion="hyper_node_rms", allocation="layerwise", overrides=over, context=ctx)
    else:
        total = sum(cur.values())
        prune(model, (total - min(sum(target.values()), total)) / total, criterion="hyper_node_rms",
              allocation="global", context=ctx)
    small, _ = compact_units(model)
    return small


class BestEpoch:
    """Wraps a ``train_fn``: after every epoch the full training loss; the lowest one's weights are kept.

    :meth:`restore` (called by the stage's evaluation, before the cascade checkpoints the model)
    loads them back, so a stage ends at its best epoch by training loss (its starting weights included).
    Off by default: on the quick wave it changed no pruned stage, and it freezes the same-epochs control
    (full-batch retraining from the same weights replays the same trajectory every stage).
    The training rows only decide (never the evaluation rows, unless they are the same rows).
    """

    def __init__(self, tfn: Any, inputs: Tensor, targets: Tensor) -> None:
        self.tfn, self.inputs, self.targets = tfn, inputs, targets
        self.reset()

    def reset(self) -> None:
        self.best = math.inf
        self.state: dict[str, Tensor] | None = None

    def __call__(self, model: nn.Module, optimizer: Any, generator: torch.Generator) -> float:
        if self.state is None:  # the stage's starting weights are a candidate too
            self._consider(model)
        loss = self.tfn(model, optimizer, generator)
        self._consider(model)
        return float(loss)

    def _consider(self, model: nn.Module) -> None:
        with torch.no_grad():
            full = float(weighted_mse(predict(model, self.inputs), self.targets))
        if math.isfinite(full) and full < self.best:
            self.best = full
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            load_state_dict(model, self.state)
        self.reset()


@dataclass(frozen=True)
class NifSteps(CascadeProtocol):
    """The cascade's pieces. ``method`` ``None`` prunes nothing (the same-epochs control); ``l2`` and ``id``
    prune nodes (see the module docstring) to ``sparsity`` of the dense ``groups``. With a ``keeper``
    (:class:`BestEpoch`) retraining keeps the best epoch, restored before evaluation."""

    dtype: torch.dtype
    epoch: Any  # the train function (one epoch)
    make_opt: Any  # the optimizer factory
    sp: Split
    keeper: BestEpoch | None = None
    method: str | None = None
    groups: dict[str, int] = field(default_factory=dict)
    allocation: str = "layerwise"
    p_train: Tensor | None = None
    id_samples: int = 0

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return build_nif(arch).to(self.dtype)

    def optimizer(self, params: Any) -> Any:
        return self.make_opt(params)

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        return float((self.keeper or self.epoch)(model, optimizer, generator))

    def prune(self, model: nn.Module, sparsity: float, generator: torch.Generator, stage: StageInfo) -> nn.Module:
        if self.keeper is not None:
            self.keeper.reset()
        if self.method is None:
            return model
        assert self.p_train is not None
        if self.method == "l2":
            return prune_nodes(model, self.groups, sparsity, self.allocation, self.p_train)
        # ID keeps as many nodes per group as L2 would (decided on a copy), chosen by the ID
        counts = group_sizes(prune_nodes(copy.deepcopy(model), self.groups, sparsity, self.allocation, self.p_train))
        idx = torch.randperm(self.sp.train_in.shape[0], generator=generator)[:self.id_samples]
        return id_fold(model, self.sp.train_in[idx], counts)  # type: ignore[arg-type]

    def evaluate(self, model: nn.Module, stage: StageInfo) -> dict[str, Any]:
        if self.keeper is not None:
            self.keeper.restore(model)
        return errors(model, self.sp)


def _control(cfg: NifConfig, ctx: RunContext, dense: Dense, steps: NifSteps, sp: Split,
             base: dict[str, Any], dense_nodes: int, numbers: int) -> list[dict[str, Any]]:
    """The dense NIF retrained stage by stage with the cascade's schedule and nothing pruned."""
    spec = CascadeSpec(tuple(cfg.prune.sparsities), mode="iterative", retrain_epochs=cfg.prune.retrain_epochs,
                       retrain="lr_rewind" if cfg.prune.retrain_lr is not None else "finetune")
    retrain_opt = optimizer_factory(cfg.prune.retrain_lr, cfg.prune.retrain_lr_steps) if cfg.prune.retrain_lr else steps.make_opt
    ckdir = ctx.checkpoints / "nif-same_epochs"
    ckdir.mkdir(exist_ok=True)
    keeper = BestEpoch(steps.epoch, sp.train_in, with_weights(sp.train_u, sp.train_w)) if cfg.prune.keep_best else None
    control = replace(steps, make_opt=retrain_opt, keeper=keeper)
    recs = run_cascade(dense, spec, control, seed=cfg.seed, key="nif-same_epochs", checkpoint_dir=ckdir,
                       resume=ctx.resume, progress=ctx.progress)
    out = []
    for rec in recs:
        m = load_stage(ckdir, rec["stage"], control.build)
        out.append({"method": "nif", "variant": "same_epochs", **base, "stage": rec["stage"] + 1, "sparsity": 0.0,
                    "rel_l2": rec["rel_l2"], "rmse": rec["rmse"], **size_stats(m, dense_nodes, numbers),
                    "pod_rank": None, "retrain_loss": rec.get("retrain_loss")})
    return out


def run(cfg: NifConfig, ctx: RunContext) -> None:
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    data = load_data(cfg)
    sp = split(data, cfg.data.normalize, cfg.data.test_fraction, cfg.seed, dtype)
    targets = with_weights(sp.train_u, sp.train_w)
    arch = arch_of(cfg, data)
    if ctx.resume and (ctx.checkpoints / "dense.pt").exists():
        saved = load_state(ctx.checkpoints / "dense.pt")
        if saved.get("arch") != build_nif(arch).arch:
            raise InputError(f"--resume: the checkpoint {str(ctx.checkpoints / 'dense.pt')!r} holds another architecture; "
                             "resume with the same config or use another --out")

    model = build_nif(arch, torch_generator(cfg.seed, "init")).to(dtype)
    tfn = train_fn(sp.train_in, targets, cfg.train.batch_size)
    make_opt = optimizer_factory(cfg.train.lr, cfg.train.lr_steps)
    steps = NifSteps(dtype, tfn, make_opt, sp)
    dense = train_dense(model, steps, epochs=cfg.train.epochs, seed=cfg.seed,
                        checkpoint=ctx.checkpoints / "dense.pt", resume=ctx.resume, progress=ctx.progress)
    if cfg.train.lbfgs_iters:
        path = ctx.checkpoints / "dense_lbfgs.pt"
        if ctx.resume and path.exists():
            state = load_state(path)["state"]
            load_state_dict(model, state)
        else:
            lbfgs(model, sp.train_in, targets, cfg.train.lbfgs_iters)
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_state(path, {"state": state})
        dense = Dense(dense.arch, state, dense.rewind, dense.lrs, dense.optimizer, dense.losses)
    model.eval()
    save_checkpoint(ctx.checkpoints / "dense.safetensors", model, meta={"stage": "dense"})
    fields = ctx.out / FIELDS
    fields.mkdir(exist_ok=True)
    from sciprune.files import atomic_write_json

    atomic_write_json(fields / "meta.json", {"grid": list(data.grid) if data.grid else None, "columns": data.columns})

    def save_field(model: nn.Module, name: str) -> None:
        if data.grid is not None:
            pred = sp.norm.physical(predict(model, sp.all_in).double().numpy()).astype(np.float32)
            from sciprune.files import atomic_write_with

            atomic_write_with(fields / f"{name}.npy", lambda tmp: np.save(open(tmp, "wb"), pred))

    groups = group_sizes(model) if hasattr(model, "node_positions") else {}
    dense_nodes = sum(groups.values())
    base = {"seed": cfg.seed}
    rows: list[dict[str, Any]] = []
    dense_row = {"method": "nif", "variant": "dense", **base, "stage": 0, "sparsity": 0.0, **errors(model, sp),
                 **size_stats(model, dense_nodes, data.numbers), "pod_rank": None, "retrain_loss": dense.losses[-1] if dense.losses else None}
    rows.append(dense_row)
    save_field(model, "dense")
    if data.grid is not None:
        truth = data.u.astype(np.float32)
        from sciprune.files import atomic_write_with

        atomic_write_with(fields / "truth.npy", lambda tmp: np.save(open(tmp, "wb"), truth))
    ctx.write_rows(rows)
    p_train = sp.train_in[:, :data.p.shape[1]]

    if cfg.prune.control and cfg.prune.retrain_epochs > 0:
        rows.extend(_control(cfg, ctx, dense, steps, sp, base, dense_nodes, data.numbers))
        ctx.write_rows(rows)

    variants = ([("oneshot", "oneshot", 0)] if cfg.prune.oneshot or cfg.prune.retrain_epochs == 0 else []) + \
        ([("retrained", "iterative", cfg.prune.retrain_epochs)] if cfg.prune.retrain_epochs > 0 else [])
    for method in cfg.prune.methods:
        for variant, mode, epochs in variants:
            key = f"{method}-{variant}"

            keeper = BestEpoch(tfn, sp.train_in, targets) if cfg.prune.keep_best and epochs > 0 else None
            rewind = cfg.prune.retrain_lr is not None
            spec = CascadeSpec(tuple(cfg.prune.sparsities), mode=mode, retrain_epochs=epochs,
                               retrain="lr_rewind" if rewind else "finetune")
            retrain_opt = optimizer_factory(cfg.prune.retrain_lr, cfg.prune.retrain_lr_steps) if cfg.prune.retrain_lr else make_opt
            pruning = replace(steps, make_opt=retrain_opt, keeper=keeper, method=method, groups=groups,
                              allocation=cfg.prune.allocation, p_train=p_train, id_samples=cfg.prune.id_samples)
            ckdir = ctx.checkpoints / key
            ckdir.mkdir(exist_ok=True)
            recs = run_cascade(dense, spec, pruning, seed=cfg.seed, key=key, checkpoint_dir=ckdir, resume=ctx.resume,
                               progress=ctx.progress)
            for rec in recs:
                m = load_stage(ckdir, rec["stage"], pruning.build)
                name = f"{key}_s{rec['sparsity']:.2f}"
                save_field(m, name)
                save_checkpoint(ctx.checkpoints / f"{name}.safetensors", m, meta={"stage": name})
                rows.append({"method": method, "variant": variant, **base, "stage": rec["stage"] + 1,
                             "sparsity": rec["sparsity"], "rel_l2": rec["rel_l2"], "rmse": rec["rmse"],
                             **size_stats(m, dense_nodes, data.numbers), "pod_rank": None,
                             "retrain_loss": rec.get("retrain_loss")})
            ctx.write_rows(rows)
    if cfg.pod and data.grid is not None:
        for c in pod_curve(data.u, data.grid):
            rows.append({"method": "pod", "variant": "svd", **base, "stage": 0, "sparsity": None, "rel_l2": c["rel_l2"],
                         "rmse": c["rmse"], "params_total": c["stored"], "params_nnz": c["stored"], "shape_nodes": None,
                         "nodes_kept": None, "shape_flops": None, "compression": round(c["stored"] / data.numbers, 8),
                         "pod_rank": c["rank"], "retrain_loss": None})
    ctx.write_rows(rows)
    if cfg.timing:
        from sciprune.studies.nif.timing import write_timing

        write_timing(cfg, ctx, sp, rows)
