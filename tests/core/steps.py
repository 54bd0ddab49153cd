"""A cascade protocol assembled from plain functions, for the core's tests of the loop itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from sciprune.core import CascadeProtocol


@dataclass(frozen=True)
class Steps(CascadeProtocol):
    """``prune_fn(model, sparsity, generator)``, ``train_fn``, ``eval_fn(model)`` (or ``eval_fn(model, stage)``
    with ``eval_stage``), ``make_opt(params)``, ``build(arch)``; ``on_stage_fn(rows)`` optional."""

    prune_fn: Callable[..., Any]
    train_fn: Callable[..., Any]
    eval_fn: Callable[..., Any]
    make_opt: Callable[..., Any]
    build_fn: Callable[..., Any]
    on_stage_fn: Callable[..., Any] | None = None
    eval_stage: bool = False

    def build(self, arch):
        return self.build_fn(arch)

    def optimizer(self, params):
        return self.make_opt(params)

    def train(self, model, optimizer, generator):
        return self.train_fn(model, optimizer, generator)

    def prune(self, model, sparsity, generator, stage):
        return self.prune_fn(model, sparsity, generator)

    def evaluate(self, model, stage):
        return self.eval_fn(model, stage) if self.eval_stage else self.eval_fn(model)

    def on_stage(self, rows):
        if self.on_stage_fn is not None:
            self.on_stage_fn(rows)

    def but(self, **changes: Any) -> "Steps":
        return replace(self, **changes)
