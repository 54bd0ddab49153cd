"""The Sparse-flows protocol: per data set and network, train dense, then one core cascade per method.

For each task (a toy density for a CNF, or a toy classification set for a neural ODE classifier)
and each of ``nets`` independently initialised networks (seeds ``seed, seed+1, ...``):

1. train the dense model (:func:`sciprune.core.cascade.train_dense`, checkpointed);
2. for each method (``wt``, ``ft``, ``id``; :mod:`.methods`) walk the prune ratios iteratively
   (:func:`sciprune.core.cascade.run_cascade`, ``mode="iterative"``), retraining after every step
   with learning-rate rewinding (a fresh optimizer and the whole schedule, as many epochs as the
   dense training unless ``prune.retrain_epochs`` says otherwise);
3. evaluate every stage: test NLL in nats averaged over ``nll_reps`` Hutchinson evaluations (CNFs)
   or accuracy (classifiers), with NFE and FLOPs per NFE and per solve.

Everything follows ``--device`` (``ctx.device``): the data and every network live there; seeds and
random draws (initial weights, minibatch orders, Hutchinson probes, samples) come from CPU
generators and are moved, so a GPU run draws the same numbers as a CPU one (its arithmetic may
still differ in the last bits). Checkpoints are loaded on the CPU, then moved.

A NaN/inf training loss ends that cascade with a ``diverged`` row, a solver over its evaluation
budget with a ``failed`` row (carrying its NFE); the run goes on with the next method / network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sciprune.core.cascade import (CascadeProtocol, CascadeSpec, StageInfo, dense_weights, load_network, network_stats,
                                   run_cascade, saved_stage_rows, stage_checkpoint, train_dense)
from sciprune.core.seeding import derive_seed, torch_generator
from sciprune.files import atomic_write_text
from sciprune.nn.mlp import MLP
from sciprune.nn.odefield import ConcatField, ConcatSquashField
from sciprune.nn.ode import CNF, NODEClassifier, Autonomous, Solver, SolverFailed, _ODEModel, ode_from_arch
from sciprune.studies.base import RunContext
from sciprune.studies.flows.config import ClassifierConfig, DensityConfig, FlowsConfig
from sciprune.studies.flows.data import Toy, make_toy
from sciprune.studies.flows.methods import prune_field


class Diverged(RuntimeError):
    """A training loss that became NaN or infinite."""


@dataclass(frozen=True)
class Task:
    """One data set with its model family: ``kind`` is ``density`` (CNF) or ``classifier`` (NODE)."""

    kind: str
    name: str
    cfg: DensityConfig | ClassifierConfig

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.name}"


def tasks(cfg: FlowsConfig) -> list[Task]:
    return ([Task("density", n, cfg.densities) for n in cfg.densities.names]
            + [Task("classifier", n, cfg.classifiers) for n in cfg.classifiers.names])


def load_toy(cfg: FlowsConfig, task: Task) -> Toy:
    return make_toy(task.name, task.cfg.n_train, task.cfg.n_test, cfg.seed)


def solver_of(task: Task) -> Solver:
    return Solver(**task.cfg.solver.model_dump())


def build_field(task: Task, seed: int) -> nn.Module:
    """The task's vector field, initialised from ``seed``."""
    f = task.cfg.field
    sizes = [2] + [f.hidden] * (f.layers - 1) + [2]
    if f.kind == "concat":
        return ConcatField(sizes, f.activation, seed=derive_seed(seed, task.key, "init"))
    if f.kind == "concatsquash":
        return ConcatSquashField(sizes, f.activation, seed=derive_seed(seed, task.key, "init"))
    return Autonomous(MLP(sizes, f.activation, generator=torch_generator(seed, task.key, "init")))


def build_model(task: Task, seed: int) -> _ODEModel:
    field = build_field(task, seed)
    if isinstance(task.cfg, DensityConfig):
        return CNF(field, solver_of(task), trace=task.cfg.trace)
    return NODEClassifier(field, solver_of(task))


def flops_per_nfe(model: _ODEModel) -> int:
    """FLOPs of one field evaluation for one sample (non-zero weights and biases only; the trace's
    extra vector-Jacobian product of a CNF is not counted)."""
    return model.flops()


def make_train_fn(task: Task, data: Toy) -> Callable[[nn.Module, torch.optim.Optimizer, torch.Generator], float]:
    """One epoch of minibatch training; records the mean forward / backward NFE on the model."""
    x, y, bs = data.x_train, data.y_train, task.cfg.train.batch_size

    def epoch(model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        assert isinstance(model, _ODEModel)
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        total, fwd, bwd, batches = 0.0, 0, 0, 0
        for start in range(0, len(x), bs):
            idx = order[start : start + bs]
            optimizer.zero_grad(set_to_none=True)
            if isinstance(model, CNF):
                loss = model.nll(x[idx], generator=generator)
            else:
                loss = F.cross_entropy(model(x[idx]), y[idx])
            if not math.isfinite(float(loss.detach())):
                raise Diverged(f"training loss became {float(loss.detach())}")
            fwd += model.nfe_forward
            loss.backward()
            bwd += model.backward_nfe()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            batches += 1
        setattr(model, "train_nfe", (fwd / max(batches, 1), bwd / max(batches, 1)))
        return total / len(x)

    return epoch


@torch.no_grad()
def evaluate(task: Task, data: Toy, model: _ODEModel, seed: int) -> dict[str, Any]:
    """Test metrics of one stage (called without gradients; CNFs turn them on for the trace)."""
    out: dict[str, Any] = {}
    nfe: list[int] = []
    if isinstance(model, CNF):
        assert isinstance(task.cfg, DensityConfig)
        reps = []
        for r in range(task.cfg.nll_reps):
            g = torch_generator(seed, task.key, "eval", r)
            total = 0.0
            for xb in data.x_test.split(task.cfg.eval_batch):
                total += float(-model.log_prob(xb, generator=g).sum())
                nfe.append(model.nfe_forward)
            reps.append(total / len(data.x_test))
        t = torch.tensor(reps, dtype=torch.float64)
        finite = bool(torch.isfinite(t).all())
        out.update(nll=float(t.mean()), nll_std=float(t.std()) if len(reps) > 1 else 0.0,
                   nll_reps=";".join(repr(v) for v in reps), status="ok" if finite else "diverged")
    else:
        logits = model(data.x_test)
        nfe.append(model.nfe_forward)
        out.update(accuracy=100.0 * float((logits.argmax(1) == data.y_test).double().mean()),
                   loss=float(F.cross_entropy(logits, data.y_test)), status="ok")
    out["nfe"] = sum(nfe) / len(nfe)  # core's cascade adds flops_nfe = flops (per evaluation) x nfe
    fwd, bwd = getattr(model, "train_nfe", (None, None))
    out.update(nfe_train_forward=fwd, nfe_train_backward=bwd)
    return out


def _optimizer(task: Task) -> Callable[[Any], tuple[torch.optim.Optimizer, None]]:
    t = task.cfg.train
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam

    def make(params: Any) -> tuple[torch.optim.Optimizer, None]:
        return cls(params, lr=t.lr, weight_decay=t.weight_decay), None

    return make


def net_folder(ctx_out: Path, task: Task, seed: int) -> Path:
    return ctx_out / "checkpoints" / task.key / f"net{seed}"


def _failure_row(err: Exception, sparsity: float, stage: int) -> dict[str, Any]:
    status = "diverged" if isinstance(err, Diverged) else "failed"
    return {"stage": stage, "sparsity": sparsity, "status": status,
            "failed_nfe": getattr(err, "nfe", None), "error": str(err)}


@dataclass(frozen=True)
class NetSteps(CascadeProtocol):
    """The cascade's pieces for one network of one task (and, in a cascade, one ``method``)."""

    cfg: FlowsConfig
    task: Task
    data: Toy
    seed: int
    epoch: Callable[[nn.Module, torch.optim.Optimizer, torch.Generator], float]
    dense: nn.Module  # an unpruned network of the task's shape: the widths of neuron methods are its
    method: str = ""

    @classmethod
    def of(cls, cfg: FlowsConfig, task: Task, data: Toy, seed: int) -> "NetSteps":
        return cls(cfg, task, data, seed, make_train_fn(task, data), build_model(task, seed))

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return ode_from_arch(arch)

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return _optimizer(self.task)(params)

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        return self.epoch(model, optimizer, generator)

    def prune(self, model: nn.Module, sparsity: float, generator: torch.Generator, stage: StageInfo) -> nn.Module:
        assert isinstance(model, _ODEModel)
        x = self.data.x_train
        model.to(x.device)  # the cascade rebuilds networks (with their masks) on the CPU: move them, in place
        if hasattr(model, "train_nfe"):
            delattr(model, "train_nfe")  # this stage's retraining records its own
        p = self.cfg.prune
        return prune_field(self.method, model, sparsity, x_train=x, id_samples=p.id_samples, id_times=p.id_times,
                           generator=generator, dense=self.dense)

    def evaluate(self, model: nn.Module, stage: StageInfo | None = None) -> dict[str, Any]:
        assert isinstance(model, _ODEModel)
        model.to(self.data.x_train.device)
        return evaluate(self.task, self.data, model, self.seed)


def run_task_net(cfg: FlowsConfig, task: Task, data: Toy, seed: int, ctx: RunContext) -> list[dict[str, Any]]:
    """Dense training and every method's cascade for one network; its metric rows."""
    folder = net_folder(ctx.out, task, seed)
    base = {"task": task.name, "kind": task.kind, "seed": seed}
    steps = NetSteps.of(cfg, task, data, seed)
    model = build_model(task, seed).to(data.x_train.device)
    n_dense = dense_weights(model)
    nfe_file = folder / "dense_nfe.json"
    trained = ctx.resume and (folder / "dense.pt").exists()
    try:
        dense = train_dense(model, steps, epochs=task.cfg.train.epochs, seed=derive(seed, task),
                            checkpoint=folder / "dense.pt", resume=ctx.resume, progress=ctx.progress)
        if trained and nfe_file.exists():
            setattr(model, "train_nfe", tuple(json.loads(nfe_file.read_text())))
        else:
            atomic_write_text(nfe_file, json.dumps(list(getattr(model, "train_nfe", (None, None)))))
        model.eval()
        with torch.no_grad():
            dense_row = {"method": "dense", **base, "stage": -1, "sparsity": 0.0,
                         **network_stats(model, n_dense), **evaluate(task, data, model, seed)}
            dense_row["flops_nfe"] = dense_row["flops"] * dense_row["nfe"]
    except (Diverged, SolverFailed) as err:
        return [{"method": "dense", **base, **_failure_row(err, 0.0, -1)}]
    rows = [dense_row]
    if dense_row["status"] != "ok":
        return rows
    epochs = cfg.prune.retrain_epochs if cfg.prune.retrain_epochs is not None else task.cfg.train.epochs
    spec = CascadeSpec(tuple(cfg.prune.sparsities), mode="iterative", retrain_epochs=epochs, retrain="lr_rewind")
    for method in cfg.prune.methods:
        mdir = folder / method
        marker = mdir / "failed.json"
        if ctx.resume and marker.exists():
            rows.extend(json.loads(marker.read_text()))
            continue
        try:
            stage_rows = run_cascade(dense, spec, replace(steps, method=method), seed=derive(seed, task), key=method,
                                     checkpoint_dir=mdir, resume=ctx.resume, progress=ctx.progress)
            rows.extend({"method": method, **base, **r} for r in stage_rows)
        except (Diverged, SolverFailed) as err:
            done = [{"method": method, **base, **r} for r in saved_stage_rows(mdir)]
            stage = len(done)
            failed = done + [{"method": method, **base, **_failure_row(err, cfg.prune.sparsities[stage], stage)}]
            atomic_write_text(marker, json.dumps(failed))
            rows.extend(failed)
    return rows


def derive(seed: int, task: Task) -> int:
    """The root seed of one network's training and cascades (distinct per task)."""
    return derive_seed(seed, task.key)


def load_stage(path: Path, device: torch.device | str = "cpu") -> _ODEModel:
    """A model from a dense or stage checkpoint of the cascade, on ``device`` (loaded on the CPU, masks
    included, then moved)."""
    model = load_network(path, ode_from_arch)
    assert isinstance(model, _ODEModel)
    return model.to(device)


def stage_path(ctx_out: Path, task: Task, seed: int, method: str, stage: int) -> Path:
    folder = net_folder(ctx_out, task, seed)
    return folder / "dense.pt" if method == "dense" else stage_checkpoint(folder / method, stage)


def run(cfg: FlowsConfig, ctx: RunContext) -> None:
    """Every task and network (rows written after each), then the analyses and the timing.

    On the CPU it runs on one intra-op thread (restored afterwards): the fields are tiny, so more
    threads only add synchronisation (a Hessian-vector product took 0.8 s on one thread, 9 s on two,
    on a loaded 2-core machine), and a fixed thread count keeps resumed runs bit-identical. On a GPU
    (``--device cuda``) the threads are left alone; the 2-D fields are launch-bound there, so expect
    no speed-up at these sizes.
    """
    if ctx.device.type != "cpu":
        _run(cfg, ctx)
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run(cfg, ctx)
    finally:
        torch.set_num_threads(before)


def _run(cfg: FlowsConfig, ctx: RunContext) -> None:
    from sciprune.studies.flows.analysis import write_analysis
    from sciprune.studies.flows.timing import write_timing

    all_tasks = tasks(cfg)
    datasets = {t.key: load_toy(cfg, t).to(ctx.device) for t in all_tasks}
    rows: list[dict[str, Any]] = []
    jobs = [(t, cfg.seed + n) for t in all_tasks for n in range(cfg.nets)]
    for task, seed in ctx.progress(jobs, desc="flows: networks", total=len(jobs)):
        rows.extend(run_task_net(cfg, task, datasets[task.key], seed, ctx))
        ctx.write_rows(rows)
    write_analysis(cfg, ctx, datasets, rows)
    write_timing(cfg, ctx, datasets, rows)
