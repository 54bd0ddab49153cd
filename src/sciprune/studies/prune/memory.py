r"""The prune study's memory estimate: the user's network measured, the config's sizes applied.

Other studies size their networks from the config; here the network is the user's, so its terms are
measured when the run is checked, before anything is written. Two forwards of the traced graph (eval
mode, no gradients; 1 and up to 4 samples) count the elements of every intermediate value, so a
value's size is :math:`a + b\,k` for :math:`k` samples (:math:`a`: what does not grow with the batch,
e.g. a Cartesian DeepONet's trunk on its shared points). Two sums are kept: all intermediates (what a
backward pass keeps) and the largest single one (what a forward without gradients holds at a time).
A network fx cannot follow is counted by forward hooks on its leaf modules instead.

Terms, in the network's element size :math:`s` (:func:`memory_terms`): resident, the samples as
loaded, converted and split (3 copies) and the parameters: weights, gradients, Adam's two moments,
masks, the dense state, the stage's network, its compacted copy and the checkpoint written from it,
the ID's working copy and its compacted result (12 copies; measured by
``benchmarks/bench_memory.py``: with 8 the estimate was 0.63 of the peak RSS of a 2048-wide
network); transient, the largest of a training
batch with its backward (3 × all intermediates), one forward over the held-out split or the timing
batch (3 × the largest intermediate) and, for an ID method, its samples' forward plus the activation
matrix and the QR's copies in float64 (3 × 8 bytes × the largest intermediate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from sciprune.core import Traced, eval_mode, resolve_method, tensors_of
from sciprune.studies.prune.config import ALIASES, PruneStudyConfig
from sciprune.studies.prune.samples import Samples, Split
from sciprune.validate import memory, peak


@dataclass(frozen=True)
class Activations:
    """Intermediate elements for ``k`` samples: ``total(k)`` all of them, ``largest(k)`` the largest one."""

    total_fixed: float
    total_per_sample: float
    largest_fixed: float
    largest_per_sample: float

    def total(self, k: int) -> float:
        return self.total_fixed + self.total_per_sample * k

    def largest(self, k: int) -> float:
        return self.largest_fixed + self.largest_per_sample * k


def _sizes(model: nn.Module, samples: Samples) -> list[int]:
    """Elements of every intermediate value of one forward of ``model`` on ``samples``."""
    sizes: list[int] = []
    graph = model.trace.graph if isinstance(model, Traced) else None
    if graph is not None:
        class Count(fx.Interpreter):
            def run_node(self, n: fx.Node) -> Any:
                out = super().run_node(n)
                if n.op in ("call_function", "call_method", "call_module"):
                    sizes.extend(t.numel() for t in tensors_of(out))
                return out

        Count(graph).run(*samples.args)
        return sizes
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.extend(t.numel() for t in tensors_of(out))) for m in leaves]
    try:
        samples.call(model)
    finally:
        for h in hooks:
            h.remove()
    return sizes


@torch.no_grad()
def activations(model: nn.Module, samples: Samples) -> Activations:
    """:class:`Activations` of ``model`` from forwards on 1 and up to 4 of ``samples`` (eval mode; every
    module's mode restored)."""
    k2 = min(4, samples.n)
    with eval_mode(model):
        one, more = _sizes(model, samples.head(1)), _sizes(model, samples.head(k2)) if k2 > 1 else None
    if more is None:
        return Activations(0.0, float(sum(one)), 0.0, float(max(one, default=0)))
    slope_total = (sum(more) - sum(one)) / (k2 - 1)
    slope_largest = (max(more, default=0) - max(one, default=0)) / (k2 - 1)
    return Activations(max(sum(one) - slope_total, 0.0), max(slope_total, 0.0),
                       max(max(one, default=0) - slope_largest, 0.0), max(slope_largest, 0.0))


def memory_terms(cfg: PruneStudyConfig, model: nn.Module, data: Split,
                 acts: Activations) -> tuple[dict[str, float], dict[str, float]]:
    """``(resident, transient)`` bytes of the run (see the module docstring)."""
    s = next((p.element_size() for p in model.parameters()), 4)
    params = sum(p.numel() for p in model.parameters())
    n = data.train.n + data.test.n
    rows = sum(t.numel() * t.element_size() for part in (data.train, data.test) for t in (*part.inputs, part.y))
    batch = min(cfg.train.batch_size, data.train.n)
    resident = {f"the samples ({n} rows) as loaded, converted and split": 3.0 * rows,
                f"the network's {params} parameters with gradients, Adam's moments, masks and copies": 12.0 * s * params}
    transient = {f"a training batch of {batch} samples with its backward pass": 3.0 * s * acts.total(batch),
                 f"one forward over the {data.test.n} held-out samples": 3.0 * s * acts.largest(data.test.n),
                 f"one forward of timing_batch={cfg.timing_batch} samples": 3.0 * s * acts.largest(cfg.timing_batch)}
    if any(resolve_method(ALIASES.get(m, m)).is_id for m in cfg.methods):
        k = min(cfg.id_samples, data.train.n)
        transient[f"the ID on id_samples={k} samples"] = s * acts.total(k) + 3.0 * 8 * acts.largest(k)
    return resident, transient


def check_memory(cfg: PruneStudyConfig, model: nn.Module, data: Split) -> None:
    """Refuse the run when its estimated peak exceeds ``memory_limit`` (default: this machine's memory)."""
    total, worst = peak(*memory_terms(cfg, model, data, activations(model, data.train)))
    memory(total, f"the run (its largest term: {worst})", limit=cfg.memory_bytes,
           fix="Choose fewer or smaller samples, a smaller train.batch_size, timing_batch or id_samples, or raise memory_limit.")
