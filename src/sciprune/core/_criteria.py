"""Pruning criteria: pure scoring functions and the registry that names them.

A criterion scores what may be removed; *lower scores are pruned first*. It never mutates the
model. Unstructured criteria score every weight (same shape as the weight); structured criteria
score every output neuron of a layer (shape ``(out_features,)``). Turning scores into masks
(how many to remove, per layer or globally) is :mod:`sciprune.core._pruning`'s job.

Adding a criterion is one function plus one :func:`register_criterion` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sciprune.errors import InputError

ScoreFn = Callable[..., Tensor]


@dataclass(frozen=True)
class Criterion:
    """A named scoring rule.

    ``score(weight, *, out_weight=None, generator=None)``: for unstructured criteria ``weight`` is
    one member's weight tensor (any shape; scores have its shape). For structured criteria
    ``weight`` is a unit view ``(size, K)``: row ``u`` holds every incoming weight of neuron ``u``
    (a layer's ``(out, in)`` matrix for an MLP), and ``out_weight`` ``(K', size)`` its outgoing
    weights as columns (the next layer's matrix for an MLP); scores have shape ``(size,)``.
    ``generator`` feeds random criteria. A data-aware criterion sets ``wants_context`` and
    receives ``context=`` (whatever the caller handed :func:`~sciprune.core._pruning.prune`:
    data, activations, gradients) and, when structured, ``group=`` (the
    :class:`~sciprune.core._units.NeuronGroup` scored).
    """

    name: str
    structured: bool
    score: ScoreFn
    description: str
    wants_context: bool = False  # data-aware: also called with ``context=`` (and ``group=`` if structured)


_CRITERIA: dict[str, Criterion] = {}


def register_criterion(criterion: Criterion) -> Criterion:
    """Add ``criterion`` to the registry (a name may be registered once)."""
    if criterion.name in _CRITERIA:
        raise ValueError(f"criterion {criterion.name!r} is already registered")
    _CRITERIA[criterion.name] = criterion
    return criterion


def available_criteria() -> list[str]:
    return sorted(_CRITERIA)


def get_criterion(name: str) -> Criterion:
    """The criterion called ``name``; an unknown name lists the valid ones."""
    try:
        return _CRITERIA[name]
    except KeyError:
        raise InputError(
            f"unknown pruning criterion {name!r}; expected one of {', '.join(available_criteria())} "
            "(see sciprune.core._criteria.register_criterion to add one)"
        ) from None


def magnitude(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Unstructured magnitude: :math:`s_{ij} = |w_{ij}|`."""
    return weight.detach().abs()


def random_scores(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Unstructured random baseline: i.i.d. uniform scores from ``generator`` (required)."""
    if generator is None:
        raise InputError("the 'random' criterion needs a generator (a seed); got none")
    return torch.rand(weight.shape, generator=generator, dtype=torch.float64).to(weight.device)


def _neuron_norm(p: float, weight: Tensor, out_weight: Tensor | None) -> Tensor:
    w = weight.detach().abs().pow(p).sum(dim=1)
    if out_weight is not None:
        w = w + out_weight.detach().abs().pow(p).sum(dim=0)
    return w.pow(1.0 / p)


def neuron_l1(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Structured L1: :math:`s_j = \|W_{j,:}\|_1` (plus :math:`\|W^{next}_{:,j}\|_1` with ``out_weight``)."""
    return _neuron_norm(1.0, weight, out_weight)


def neuron_l2(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Structured L2: :math:`s_j = \|W_{j,:}\|_2`, or :math:`\|[W_{j,:}, W^{next}_{:,j}]\|_2` with ``out_weight``.

    Without ``out_weight`` this is the "unit pruning" of Keras_pruning: the L2 norm of a neuron's
    incoming weights (a column of a Keras kernel, a row of a PyTorch weight).
    """
    return _neuron_norm(2.0, weight, out_weight)


def neuron_random(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Structured random baseline: one uniform score per neuron from ``generator`` (required)."""
    if generator is None:
        raise InputError("the 'neuron_random' criterion needs a generator (a seed); got none")
    return torch.rand(weight.shape[:-1], generator=generator, dtype=torch.float64).to(weight.device)


def lamp(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""LAMP (layer-adaptive magnitude pruning) score of each weight within its tensor:

    .. math:: s_u = \frac{w_u^2}{\sum_{v \ge u} w_v^2}

    with the weights of the tensor sorted by increasing :math:`|w|` (ties by position). The largest
    weight of every layer scores 1, so a *global* ranking of LAMP scores never empties a layer
    and adapts each layer's sparsity to its magnitude distribution.
    """
    w2 = weight.detach().to(torch.float64).flatten().pow(2)
    order = torch.sort(w2, stable=True).indices
    sorted_w2 = w2[order]
    tail = sorted_w2.flip(0).cumsum(0).flip(0)
    out = torch.zeros_like(w2)
    out[order] = torch.where(tail > 0, sorted_w2 / tail.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    return out.view(weight.shape)


register_criterion(Criterion("magnitude", False, magnitude, "smallest |w| first (unstructured)"))
register_criterion(Criterion("random", False, random_scores, "random weights (unstructured baseline)"))
register_criterion(Criterion("neuron_l1", True, neuron_l1, "neurons with the smallest L1 norm first"))
register_criterion(Criterion("neuron_l2", True, neuron_l2, "neurons with the smallest L2 norm first"))
register_criterion(Criterion("lamp", False, lamp, "layer-adaptive magnitude scores (unstructured; for global allocation)"))
register_criterion(Criterion("neuron_random", True, neuron_random, "random neurons (structured baseline)"))
