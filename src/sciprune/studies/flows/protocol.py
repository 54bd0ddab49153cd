"""The Sparse-flows protocol: per data set and network, train dense, then one core cascade per method.

For each task (a toy density for a CNF, or a toy classification set for a neural ODE classifier)
and each of ``nets`` independently initialised networks (seeds ``seed, seed+1, ...``):

1. train the dense model (:func:`sciprune.core._cascade.train_dense`, checkpointed);
2. for each method (``wt``, ``ft``, ``id``; :mod:`.methods`) walk the prune ratios iteratively
   (:func:`sciprune.core._cascade.run_cascade`, ``mode="iterative"``), retraining after every step
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
from torch import Tensor, nn

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Pruning, StageInfo, dense_weights, load_state, network_stats,
    resolve_method, run_cascade, save_state, saved_stage_rows, torch_generator, train_dense,
)
from sciprune.files import atomic_write_text, read_result_json
from sciprune.shards import map_shards
from sciprune.nn.ode import CNF, SolverFailed, _ODEModel, ode_from_arch
from sciprune.studies.base import RunContext
from sciprune.studies.flows.analysis import analyse_task, analysis_path, write_analysis
from sciprune.studies.flows.config import DensityConfig, FlowsConfig
from sciprune.studies.flows.data import Toy
from sciprune.studies.flows.methods import field_mlp
from sciprune.studies.flows.tasks import Task, build_model, derive, load_toy, net_folder, tasks
from sciprune.studies.flows.timing import write_timing


class Diverged(RuntimeError):
    """A training loss that became NaN or infinite."""


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


def _failure_row(err: Exception, sparsity: float, stage: int) -> dict[str, Any]:
    status = "diverged" if isinstance(err, Diverged) else "failed"
    return {"stage": stage, "sparsity": sparsity, "params_nnz": None, "status": status,  # the contract's columns, empty
            "failed_nfe": getattr(err, "nfe", None), "error": str(err)}


@dataclass(frozen=True)
class NetSteps(CascadeProtocol):
    """The cascade's pieces for one network of one task (and, in a cascade, one ``method``)."""

    cfg: FlowsConfig
    task: Task
    data: Toy
    seed: int
    epoch: Callable[[nn.Module, torch.optim.Optimizer, torch.Generator], float]
    method: str = ""

    @classmethod
    def of(cls, cfg: FlowsConfig, task: Task, data: Toy, seed: int) -> "NetSteps":
        return cls(cfg, task, data, seed, make_train_fn(task, data))

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return ode_from_arch(arch).to(self.data.x_train.device)  # the cascade loads weights and masks onto it

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return _optimizer(self.task)(params)

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        return self.epoch(model, optimizer, generator)

    def id_samples(self, model: nn.Module, generator: torch.Generator, stage: StageInfo) -> Tensor:
        """States along ``prune.id_samples`` training trajectories at ``prune.id_times`` times: the inputs of
        the field's MLP, which the cascade's ID prunes to its ``weight_budget`` widths of the dense field."""
        assert isinstance(model, _ODEModel)
        x, p = self.data.x_train, self.cfg.prune
        mlp, d = field_mlp(model), int(x.shape[1])
        idx = torch.randperm(len(x), generator=generator)[: p.id_samples]
        times = torch.linspace(0.0, 1.0, p.id_times)
        return model.trajectory(x[idx.to(x.device)].to(mlp.linears[0].weight), times).reshape(-1, d)

    def evaluate(self, model: nn.Module, stage: StageInfo | None = None) -> dict[str, Any]:
        """The stage's test metrics; the retraining NFE it reports is then cleared, so a later stage
        without retraining reports none rather than this one's."""
        assert isinstance(model, _ODEModel)
        out = evaluate(self.task, self.data, model, self.seed)
        if hasattr(model, "train_nfe"):
            delattr(model, "train_nfe")
        return out


@dataclass(frozen=True)
class NetJob:
    """One independent shard of a flows run: one network of one task (picklable, for dask)."""

    cfg: FlowsConfig
    task: Task
    seed: int
    out: Path
    resume: bool
    device: str
    quiet: bool


def run_net(job: NetJob) -> list[dict[str, Any]]:
    """Dense training and every method's cascade for one network (and, for a task's first network, the
    task's analyses); its metric rows, kept in its folder: a resumed run reads a finished network's rows
    back instead of computing any of them again."""
    cfg, task, seed = job.cfg, job.task, job.seed
    ctx = RunContext(out=job.out, resume=job.resume, quiet=job.quiet, device=torch.device(job.device))
    folder = net_folder(ctx.out, task, seed)
    done = folder / "rows.pt"
    if ctx.resume and done.exists():
        return list(load_state(done)["rows"])
    data = load_toy(cfg, task).to(ctx.device)
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
            setattr(model, "train_nfe", tuple(read_result_json(nfe_file, "dense NFE record", kind=list)))
        else:
            atomic_write_text(nfe_file, json.dumps(list(getattr(model, "train_nfe", (None, None)))))
        model.eval()
        with torch.no_grad():
            dense_row = {"method": "dense", **base, "stage": -1, "sparsity": 0.0,
                         **network_stats(model, n_dense), **evaluate(task, data, model, seed)}
            dense_row["flops_nfe"] = dense_row["flops"] * dense_row["nfe"]
    except (Diverged, SolverFailed) as err:
        dense_row = {"method": "dense", **base, **_failure_row(err, 0.0, -1)}
    rows = [dense_row]
    epochs = cfg.prune.retrain_epochs if cfg.prune.retrain_epochs is not None else task.cfg.train.epochs
    spec = CascadeSpec(tuple(cfg.prune.sparsities), mode="iterative", retrain_epochs=epochs, retrain="lr_rewind")
    methods = cfg.prune.methods if dense_row["status"] == "ok" else []  # a failed dense network: no cascades
    for method in methods:
        # every neuron method keeps the weight_budget width: flows' prune ratios are fractions of weights
        pruning = Pruning(resolve_method(method).with_width("weight_budget"))
        mdir = folder / method
        marker = mdir / "failed.json"
        if ctx.resume and marker.exists():
            rows.extend(read_result_json(marker, "failed-stage record", kind=list))
            continue
        try:
            stage_rows = run_cascade(dense, spec, replace(steps, method=method), seed=derive(seed, task), key=method,
                                     checkpoint_dir=mdir, resume=ctx.resume, progress=ctx.progress, pruning=pruning)
            rows.extend({"method": method, **base, **r} for r in stage_rows)
        except (Diverged, SolverFailed) as err:
            done_rows = [{"method": method, **base, **r} for r in saved_stage_rows(mdir)]
            stage = len(done_rows)
            failed = done_rows + [{"method": method, **base, **_failure_row(err, cfg.prune.sparsities[stage], stage)}]
            atomic_write_text(marker, json.dumps(failed))
            rows.extend(failed)
    if seed == cfg.seed and not analysis_path(ctx.out, task).exists():  # the task's analysed network
        analyse_task(cfg, ctx.out, task, data, ctx.device)
    save_state(done, {"rows": rows})
    return rows


def run(cfg: FlowsConfig, ctx: RunContext) -> None:
    """Every task and network (one shard each: in-process, on ``--workers`` local dask processes or on
    ``--scheduler``; rows written as each finishes, in job order; a task's first network's shard also
    writes the task's analyses), then the timing, which runs here, alone, so that no other work shares
    the machine while it measures.

    On the CPU it runs on one intra-op thread (restored afterwards; every shard pins one thread too):
    the fields are tiny, so more threads only add synchronisation (a Hessian-vector product took 0.8 s
    on one thread, 9 s on two, on a loaded 2-core machine), and a fixed thread count keeps resumed
    and sharded runs bit-identical. On a GPU (``--device cuda``) the threads are left alone; the 2-D
    fields are launch-bound there, so expect no speed-up at these sizes.
    """
    before = torch.get_num_threads()
    if ctx.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        sharded = ctx.workers > 1 or ctx.scheduler is not None
        jobs = [NetJob(cfg, t, cfg.seed + n, ctx.out, ctx.resume, str(ctx.device), ctx.quiet or sharded)
                for t in tasks(cfg) for n in range(cfg.nets)]
        finished: dict[int, list[dict[str, Any]]] = {}

        def save(i: int, rows: list[dict[str, Any]]) -> None:
            finished[i] = rows
            ctx.write_rows([row for j in sorted(finished) for row in finished[j]])

        results = map_shards(run_net, jobs, workers=ctx.workers, scheduler=ctx.scheduler, progress=ctx.progress,
                             desc="flows: networks", on_result=save)
        rows = [row for r in results for row in r]
        datasets = {t.key: load_toy(cfg, t).to(ctx.device) for t in tasks(cfg)}
        write_analysis(cfg, ctx, datasets, rows)
        write_timing(cfg, ctx, datasets, rows)
    finally:
        torch.set_num_threads(before)
