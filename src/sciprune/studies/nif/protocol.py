"""The nif protocol: data → dense NIF → pruning cascades (L2 nodes, ID nodes) → compaction → POD.

Methods (the nodes of ShapeNet; a residual stream counts once):

* ``l2``: the seed's pNIF: mask the nodes with the smallest RMS-over-p L2 norm of their generated
  weights (criterion ``hyper_node_rms``), then compact;
* ``id``: keep the nodes an interpolative decomposition of the ShapeNet activations selects and
  fold the interpolation into ParameterNet's last layer (:func:`sciprune.nn.nif.id_fold`).

Variants: ``oneshot`` (each sparsity from the dense NIF, no retraining) and ``retrained`` (the
seed's loop: prune further, retrain ``prune.retrain_epochs`` epochs, repeat), both on
:func:`sciprune.core._cascade.run_cascade`. Every stage's model is compacted, so ``params_total`` is
what the pruned NIF really stores. POD rows give the baseline at every rank.

Control (``prune.control``): the unpruned dense NIF retrained with the retrained cascade's exact
schedule (method ``nif``, variant ``same_epochs``, one row per stage), so each pruned stage can be
compared with a dense model that had the same number of training epochs, not only with the dense
model it started from (retraining with a rewound learning rate also keeps improving a dense net).

Errors: ``rel_l2`` / ``rmse`` on the held-out rows (``data.test_fraction``, ``data.split``; the
training rows when nothing is held out), ``train_rel_l2`` on the training rows. The dense NIF is
trained here; every cascade (method × variant, and the control) is then an independent
:class:`CascadeJob` on :func:`sciprune.shards.map_shards` (``--workers``, ``--scheduler``): each
rebuilds the data and the dense NIF from its checkpoint, so the rows are the same however the jobs
run, and a finished job's rows (``checkpoints/<key>/rows.json``) are never recomputed on resume.

Device (``--device``, ``ctx.device``; each job carries it by name): the split's tensors and every
network (the dense NIF, each stage, the cascade's one-shot restarts: :meth:`Setup.build`) live there,
and so do the ID samples. The data, the initial weights, the minibatch orders and the ID sample
draws come from the CPU (numpy and CPU generators), so a GPU run draws the same numbers as a CPU
one; only its arithmetic may differ in the last bits. Errors and saved fields are computed on the
device and copied back for numpy.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Dense, Method, PruningUnits, StageInfo, compact_units, count_params,
    kept_width, load_stage, load_state, load_state_dict, prune, run_cascade, save_checkpoint, save_state,
    torch_generator, train_dense, units_of,
)
from sciprune.errors import InputError
from sciprune.files import atomic_write_json, atomic_write_with
from sciprune.nn.nif import build_nif, id_fold, theta_context
from sciprune.shards import map_shards
from sciprune.studies.base import RunContext
from sciprune.studies.nif.config import NifConfig, method_of
from sciprune.studies.nif.data import FieldData, Split, flow2d, ks, on_grid, split, user_file, wave
from sciprune.studies.nif.pod import pod_curve
from sciprune.studies.nif.train import Plateau, epochs_for, lbfgs, optimizer_factory, train_fn, weighted_mse, with_weights

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
    return on_grid(user_file(d.path, c.p, c.x, c.u, c.weight), d.grid_tolerance)


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


def rel_l2(model: nn.Module, sp: Split, inputs: Tensor, truth: Tensor) -> tuple[float, float]:
    """Relative L2 error and RMSE of ``model`` on ``inputs`` against ``truth``, in physical units (NaN when diverged)."""
    pred = sp.norm.physical(predict(model, inputs).double().cpu().numpy())
    true = truth.double().cpu().numpy()
    diff = pred - true
    rel = float(np.linalg.norm(diff) / np.linalg.norm(true))
    return (rel if math.isfinite(rel) else float("nan"),
            float(np.sqrt(np.mean(diff**2))) if np.isfinite(diff).all() else float("nan"))


def errors(model: nn.Module, sp: Split) -> dict[str, float]:
    """Held-out relative L2 error and RMSE (``rel_l2``, ``rmse``) and the training rows' relative L2 error."""
    rel, rmse = rel_l2(model, sp, sp.test_in, sp.test_u)
    train = rel_l2(model, sp, sp.train_in, sp.train_true)[0] if sp.held_out else rel
    return {"rel_l2": rel, "rmse": rmse, "train_rel_l2": train}


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


def kept_counts(current: dict[str, int], dense: PruningUnits, sparsity: float) -> dict[str, int]:
    """Nodes each group keeps at ``sparsity`` of its *dense* size (core's ``kept_width``, ``per_layer``:
    ``max(1, n - round(s n))``), never more than it has now."""
    return {g: min(current[g], k) for g, k in kept_width(dense, sparsity).items()}


def prune_nodes(model: nn.Module, dense: PruningUnits, sparsity: float, allocation: str, p: Tensor,
                criterion: str = "hyper_node_rms") -> nn.Module:
    """pNIF: mask the nodes with the lowest ``criterion`` scores (core prune), then compact (core shrink).

    ``sparsity`` is the fraction of the *dense* nodes removed; the model may already be narrower
    (an iterative cascade compacts every stage), so core gets the matching fraction of its current
    nodes: per group (layerwise) or over all groups (global). Every group keeps at least one node.
    """
    cur = group_sizes(model)
    ctx = theta_context(model, p)  # type: ignore[arg-type]
    if allocation == "layerwise":
        target = kept_counts(cur, dense, sparsity)
        over = {g: (cur[g] - target[g]) / cur[g] for g in cur}
        prune(model, 0.0, criterion=criterion, allocation="layerwise", overrides=over, context=ctx)
    else:
        total = sum(cur.values())
        want = sum(kept_width(dense, sparsity).values())  # over all groups together
        prune(model, (total - min(want, total)) / total, criterion=criterion,
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


#: held-out error above this multiple of the training error is flagged (memorisation / no generalisation)
GAP = 2.0


@dataclass(frozen=True)
class Setup:
    """What every part of a run derives from the config alone (deterministic, so each job rebuilds it)."""

    data: FieldData
    sp: Split
    arch: dict[str, Any]
    dtype: torch.dtype
    epochs: int                # dense training epochs
    retrain_epochs: int        # per stage
    schedule_every: str        # "step" when the budget is in steps (lr_steps count steps)
    per_epoch: int             # optimizer steps per epoch
    device: torch.device       # where the split's tensors and every network live

    def build(self, arch: dict[str, Any], generator: torch.Generator | None = None) -> nn.Module:
        """A NIF of ``arch`` (initialised on the CPU, from ``generator`` when given), moved to the run's dtype and device."""
        return build_nif(arch, generator).to(dtype=self.dtype, device=self.device)


def prepare(cfg: NifConfig, device: torch.device = torch.device("cpu")) -> Setup:
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    data = load_data(cfg)
    t = cfg.train
    sp = split(data, cfg.data.normalize, cfg.data.held_out, cfg.seed, dtype, cfg.data.split,
               t.validation_fraction if t.patience is not None else 0.0).to(device)
    rows = sp.train_in.shape[0]
    per_epoch = math.ceil(rows / t.batch_size)
    epochs = epochs_for(t.epochs, t.steps, 200, rows, t.batch_size)
    retrain = epochs_for(cfg.prune.retrain_epochs, cfg.prune.retrain_steps, 20, rows, t.batch_size)
    every = "step" if t.steps is not None else "epoch"
    return Setup(data, sp, arch_of(cfg, data), dtype, epochs, retrain, every, per_epoch, device)


def train_function(cfg: NifConfig, su: Setup) -> Any:
    """The epoch function (with the plateau stop when ``train.patience`` is set)."""
    tfn = train_fn(su.sp.train_in, with_weights(su.sp.train_u, su.sp.train_w), cfg.train.batch_size)
    t = cfg.train
    if t.patience is None:
        return tfn
    sp = su.sp
    assert sp.val_in is not None and sp.val_true is not None
    val_in, val_true = sp.val_in, sp.val_true
    return Plateau(tfn, lambda m: rel_l2(m, sp, val_in, val_true)[0], su.per_epoch, t.check_every, t.patience, t.min_delta)


def warnings_of(dense_row: dict[str, Any], sp: Split, d_u: int) -> list[str]:
    """One-line warnings about the dense NIF: more parameters than training numbers; held-out ≫ training error."""
    out = []
    numbers = sp.train_in.shape[0] * d_u
    if dense_row["params_total"] > numbers:
        out.append(f"the NIF stores {dense_row['params_total']:,} numbers, more than the {numbers:,} of its training data: "
                   "it can memorise them" + ("" if sp.held_out else " (nothing is held out to tell: set data.test_fraction)"))
    held, train = dense_row["rel_l2"], dense_row["train_rel_l2"]
    if sp.held_out and math.isfinite(held) and held > GAP * train:
        out.append(f"held-out error {held:.3g} is {held / train:.3g} × the training error {train:.3g} "
                   f"(flagged above {GAP:g} ×): the NIF does not generalise to the held-out rows")
    return out


def run(cfg: NifConfig, ctx: RunContext) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        _run(cfg, ctx)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: NifConfig, ctx: RunContext) -> None:
    su = prepare(cfg, ctx.device)
    data, sp = su.data, su.sp
    if ctx.resume and (ctx.checkpoints / "dense.pt").exists():
        saved = load_state(ctx.checkpoints / "dense.pt")
        if saved.get("arch") != build_nif(su.arch).arch:
            raise InputError(f"--resume: the checkpoint {str(ctx.checkpoints / 'dense.pt')!r} holds another architecture; "
                             "resume with the same config or use another --out")
    model = su.build(su.arch, torch_generator(cfg.seed, "init"))
    tfn = train_function(cfg, su)
    make_opt = optimizer_factory(cfg.train.lr, cfg.train.lr_steps)
    dense = train_dense(model, DenseSteps(tfn, make_opt), epochs=su.epochs, seed=cfg.seed,
                        checkpoint=ctx.checkpoints / "dense.pt", resume=ctx.resume, progress=ctx.progress,
                        schedule_every=su.schedule_every)
    if cfg.train.lbfgs_iters:
        path = ctx.checkpoints / "dense_lbfgs.pt"
        if ctx.resume and path.exists():
            state = load_state(path)["state"]
            load_state_dict(model, state)
        else:
            lbfgs(model, sp.train_in, with_weights(sp.train_u, sp.train_w), cfg.train.lbfgs_iters)
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_state(path, {"state": state})
        dense = Dense(dense.arch, state, dense.rewind, dense.lrs, dense.optimizer, dense.losses, dense.train_metrics)
        save_state(ctx.checkpoints / "dense_final.pt", {**dense.__dict__})
    model.eval()
    save_checkpoint(ctx.checkpoints / "dense.safetensors", model, meta={"stage": "dense"})
    fields = ctx.out / FIELDS
    fields.mkdir(exist_ok=True)
    groups = group_sizes(model) if hasattr(model, "node_positions") else {}
    dense_row = {"method": "nif", "variant": "dense", "seed": cfg.seed, "stage": 0, "sparsity": 0.0, **errors(model, sp),
                 **size_stats(model, sum(groups.values()), data.numbers), "pod_rank": None,
                 "retrain_loss": dense.losses[-1] if dense.losses else None,
                 "train_steps": dense.train_metrics.get("train_steps", su.epochs * su.per_epoch)}
    warn = warnings_of(dense_row, sp, data.u.shape[1])
    for w in warn:
        print(f"sciprune nif: warning: {w}", file=sys.stderr)
    atomic_write_json(fields / "meta.json", {
        "grid": list(data.grid) if data.grid else None, "columns": data.columns, "data": data.name, "source": data.source,
        "rows": int(data.p.shape[0]), "dims": {"p": data.p.shape[1], "x": data.x.shape[1], "u": data.u.shape[1]},
        "not_grid": data.not_grid, "axes": data.extent.get("axes"), "held_out": sp.held_out,
        "split": cfg.data.split if sp.held_out else None, "train_rows": int(sp.train_in.shape[0]),
        "test_rows": int(sp.test_in.shape[0]) if sp.held_out else 0, "threads": cfg.threads,
        "epochs": su.epochs, "retrain_epochs": su.retrain_epochs, "steps_per_epoch": su.per_epoch, "warnings": warn})
    rows: list[dict[str, Any]] = [dense_row]
    save_field(fields, "dense", model, su)
    if data.grid is not None:
        truth = data.u.astype(np.float32)
        atomic_write_with(fields / "truth.npy", lambda tmp: np.save(open(tmp, "wb"), truth))
    ctx.write_rows(rows)
    jobs = cascade_jobs(cfg, ctx, su)
    finished: dict[int, list[dict[str, Any]]] = {}

    def save(i: int, job_rows: list[dict[str, Any]]) -> None:
        finished[i] = job_rows
        ctx.write_rows(rows + [r for j in sorted(finished) for r in finished[j]])

    map_shards(run_job, jobs, workers=ctx.workers, scheduler=ctx.scheduler, progress=ctx.progress, desc="cascades",
               on_result=save)
    rows.extend(r for j in sorted(finished) for r in finished[j])
    if cfg.pod and data.grid is not None:
        for c in pod_curve(data.u, data.grid):
            rows.append({"method": "pod", "variant": "svd", "seed": cfg.seed, "stage": 0, "sparsity": None,
                         "rel_l2": c["rel_l2"], "rmse": c["rmse"], "train_rel_l2": None, "params_total": c["stored"],
                         "params_nnz": c["stored"], "shape_nodes": None, "nodes_kept": None, "shape_flops": None,
                         "compression": round(c["stored"] / data.numbers, 8), "pod_rank": c["rank"], "retrain_loss": None})
    ctx.write_rows(rows)
    if cfg.timing:
        from sciprune.studies.nif.timing import write_timing

        write_timing(cfg, ctx, sp, rows, su.retrain_epochs)


def save_field(fields: Path, name: str, model: nn.Module, su: Setup) -> None:
    """The model's prediction on every row (physical units, p-major grid order) as ``fields/<name>.npy`` (gridded data only)."""
    if su.data.grid is not None:
        pred = su.sp.norm.physical(predict(model, su.sp.all_in).double().cpu().numpy()).astype(np.float32)
        atomic_write_with(fields / f"{name}.npy", lambda tmp: np.save(open(tmp, "wb"), pred))


def cascade_jobs(cfg: NifConfig, ctx: RunContext, su: Setup) -> list[CascadeJob]:
    """Every cascade of the run as a job, each carrying the run's device."""
    return [CascadeJob(cfg, ctx.out, ctx.resume, *kind, device=str(ctx.device)) for kind in job_kinds(cfg, su)]


def job_kinds(cfg: NifConfig, su: Setup) -> list[tuple[str, str, str, int]]:
    """``(method, variant, mode, retrain epochs)`` of every cascade, in the order of the rows."""
    r = su.retrain_epochs
    out = [("nif", "same_epochs", "iterative", r)] if cfg.prune.control and r > 0 else []
    variants = ([("oneshot", "oneshot", 0)] if cfg.prune.oneshot or r == 0 else []) + \
        ([("retrained", "iterative", r)] if r > 0 else [])
    return out + [(m, v, mode, e) for m in cfg.prune.methods for v, mode, e in variants]


@dataclass(frozen=True)
class CascadeJob:
    """One independent cascade of a run (picklable, for dask): a method × variant, or the dense control.
    ``device`` names where it runs (``str(ctx.device)``: a name, so the job pickles)."""

    cfg: NifConfig
    out: Path
    resume: bool
    method: str
    variant: str
    mode: str
    epochs: int
    device: str

    @property
    def key(self) -> str:
        return f"{self.method}-{self.variant}"


class DenseSteps:
    """The dense training's :class:`~sciprune.core._cascade.Trainer`: an epoch function and an optimizer factory."""

    def __init__(self, epoch: Any, make_opt: Any) -> None:
        self.epoch, self.make_opt = epoch, make_opt

    def optimizer(self, params: Any) -> Any:
        return self.make_opt(params)

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> Any:
        return self.epoch(model, optimizer, generator)


class NifSteps(DenseSteps, CascadeProtocol):
    """One cascade's pieces: method ``nif`` prunes nothing (the same-epochs control), ``id`` selects nodes
    by an interpolative decomposition, any other method masks the nodes of lowest score by its criterion
    (``l2``: ``hyper_node_rms``) and compacts. The plateau stop and the best-epoch keeper restart at every stage."""

    def __init__(self, cfg: NifConfig, su: Setup, method: Method | None, dense: PruningUnits) -> None:
        p = cfg.prune
        tfn = train_function(cfg, su)
        self.plateau = tfn if isinstance(tfn, Plateau) else None
        sp = su.sp
        self.keeper = BestEpoch(tfn, sp.train_in, with_weights(sp.train_u, sp.train_w)) if p.keep_best else None
        super().__init__(self.keeper or tfn, optimizer_factory(p.retrain_lr, p.retrain_lr_steps) if p.retrain_lr else
                         optimizer_factory(cfg.train.lr, cfg.train.lr_steps))
        self.su, self.method, self.dense, self.allocation, self.id_rows = su, method, dense, p.allocation, p.id_samples
        self.p_train = sp.train_in[:, :su.data.p.shape[1]]

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return self.su.build(arch)

    def prune(self, model: nn.Module, sparsity: float, generator: torch.Generator, stage: StageInfo) -> nn.Module:
        for w in (self.plateau, self.keeper):
            if w is not None:
                w.reset()
        m = self.method
        if m is None:
            return model
        if m.criterion is not None:
            return prune_nodes(model, self.dense, sparsity, self.allocation, self.p_train, m.criterion)
        # ID keeps as many nodes per group as L2 would: layerwise core's kept_width; global allocation ranks
        # every group's nodes together (hyper_node_rms), so that split is read off a pruned copy
        counts = kept_counts(group_sizes(model), self.dense, sparsity) if self.allocation == "layerwise" else \
            group_sizes(prune_nodes(copy.deepcopy(model), self.dense, sparsity, "global", self.p_train))
        train_in = self.su.sp.train_in
        idx = torch.randperm(train_in.shape[0], generator=generator)[:self.id_rows]  # drawn on the CPU
        return id_fold(model, train_in[idx.to(train_in.device)], counts)  # type: ignore[arg-type]

    def evaluate(self, model: nn.Module, stage: StageInfo) -> dict[str, Any]:
        if self.keeper is not None:
            self.keeper.restore(model)
        return errors(model, self.su.sp)


def run_job(job: CascadeJob) -> list[dict[str, Any]]:
    """Run one cascade from the dense checkpoint; its metric rows (also saved as ``rows.json``: a resume reuses them)."""
    ckdir = job.out / "checkpoints" / job.key
    done = ckdir / "rows.json"
    if job.resume and done.exists():
        return list(json.loads(done.read_text()))
    ckdir.mkdir(parents=True, exist_ok=True)
    cfg = job.cfg
    su = prepare(cfg, torch.device(job.device))
    saved = load_state(job.out / "checkpoints" / ("dense_final.pt" if cfg.train.lbfgs_iters else "dense.pt"))
    dense = Dense(saved["arch"], saved["state"], saved["rewind"], saved["lrs"], saved["optimizer"], saved["losses"],
                  saved.get("train_metrics", {}))
    dense_model = su.build(dense.arch)
    dense_nodes = sum(group_sizes(dense_model).values())
    steps = NifSteps(cfg, su, None if job.method == "nif" else method_of(job.method), units_of(dense_model))
    p = cfg.prune
    spec = CascadeSpec(tuple(p.sparsities), mode=job.mode, retrain_epochs=job.epochs,
                       retrain="lr_rewind" if p.retrain_lr is not None else "finetune")
    recs = run_cascade(dense, spec, steps, seed=cfg.seed, key=job.key, checkpoint_dir=ckdir, resume=job.resume,
                       schedule_every=su.schedule_every)
    fields = job.out / FIELDS
    rows = []
    for rec in recs:
        m = load_stage(ckdir, rec["stage"], su.build)
        if job.method != "nif":
            name = f"{job.key}_s{rec['sparsity']:.2f}"
            save_field(fields, name, m, su)
            save_checkpoint(job.out / "checkpoints" / f"{name}.safetensors", m, meta={"stage": name})
        rows.append({"method": job.method, "variant": job.variant, "seed": cfg.seed, "stage": rec["stage"] + 1,
                     "sparsity": 0.0 if job.method == "nif" else rec["sparsity"], "rel_l2": rec["rel_l2"],
                     "rmse": rec["rmse"], "train_rel_l2": rec["train_rel_l2"],
                     **size_stats(m, dense_nodes, su.data.numbers), "pod_rank": None,
                     "retrain_loss": rec.get("retrain_loss"), "train_steps": rec.get("train_steps", job.epochs * su.per_epoch)})
    atomic_write_json(done, rows)
    return rows
