"""The Sparse-flows study's tasks and their networks: what protocol, analysis and timing share.

A :class:`Task` is one data set with its model family (a CNF on a toy density, or a neural ODE
classifier); each of its networks is built from a seed (:func:`build_model`) and keeps its dense and
stage checkpoints in :func:`net_folder` (found with :func:`stage_path`, read with :func:`load_stage`).
This module sits below :mod:`.protocol`, :mod:`.analysis` and :mod:`.timing`, so they import it and
not each other's internals (no import circle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sciprune.core import derive_seed, load_network, stage_checkpoint, torch_generator
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import CNF, Autonomous, NODEClassifier, Solver, _ODEModel, ode_from_arch
from sciprune.nn.odefield import ConcatField, ConcatSquashField
from sciprune.studies.flows.config import ClassifierConfig, DensityConfig, FlowsConfig
from sciprune.studies.flows.data import Toy, make_toy


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
        return ConcatField(sizes, f.activation, generator=torch_generator(derive_seed(seed, task.key, "init"), "ConcatField"))
    if f.kind == "concatsquash":
        return ConcatSquashField(sizes, f.activation,
                                 generator=torch_generator(derive_seed(seed, task.key, "init"), "ConcatSquashField"))
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


def net_folder(ctx_out: Path, task: Task, seed: int) -> Path:
    return ctx_out / "checkpoints" / task.key / f"net{seed}"


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
