r"""Pruning methods: one registry from a method name to what it prunes and how much it keeps.

A :class:`Method` is

* a **criterion** (any name of :mod:`sciprune.core._criteria`) or ``None`` for **ID pruning**
  (interpolative decomposition: keep the neurons an ID of the layer's activations selects and let the
  next layer absorb the interpolation matrix);
* the **units** it selects: ``weights`` (unstructured criteria) or ``neurons`` (structured criteria
  and ID), read from the criterion;
* an **allocation**: ``layerwise`` (the same fraction per layer) or ``global`` (one ranking);
* a **kept-width rule** (neuron methods): how many neurons of each group survive sparsity
  :math:`s` (:func:`kept_width`);
* ``fold_constants``: a removed neuron's constant output :math:`\sigma(b_j)` is folded into the next
  bias.

:func:`sciprune.core._pruning.prune` applies a criterion method (``prune(model, s, method=...)``).

Kept-width rules, for groups of dense sizes :math:`n_g`:

* ``per_layer``: :math:`k_g = \max(1, n_g - \mathrm{round}(s\, n_g))` (a fraction :math:`s` of each
  layer's neurons removed, at least one kept; Python's round, half to even);
* ``weight_budget``: one uniform width :math:`k` (capped by each group's size), the largest whose
  kept weights are at most :math:`(1 - s)` of the dense ones, so the sparsity is a fraction of
  *weights*. A weight ``W`` keeps :math:`\prod_a (d_a - r_a)` entries per member, where :math:`r_a` is
  what the removed units' slices take along axis :math:`a` (a time column, in no group, is always
  kept); for an :math:`L`-layer field of width :math:`k` on a :math:`d`-dimensional state this is
  :math:`dk + (L-2)k^2 + kd`, or :math:`(1+d)k + (L-2)(1+k)k + (1+k)d` with a time column.

Any registered criterion is a method too (:func:`resolve_method`): an unstructured one prunes weights
layerwise, a structured one neurons with the ``per_layer`` rule, so a criterion registered with one
line is usable wherever a study takes a method name. A study may name the rule its sparsity means
(``width=``): a study whose sparsities are fractions of weights asks every neuron method for
``weight_budget``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from torch import nn

from sciprune.core._criteria import available_criteria, get_criterion
from sciprune.core._units import PruningUnits, units_of
from sciprune.errors import InputError

ALLOCATIONS = ("layerwise", "global")
WIDTH_RULES = ("per_layer", "weight_budget")


@dataclass(frozen=True)
class Method:
    """A named way to prune (see the module docstring); ``criterion=None`` is ID pruning."""

    name: str
    criterion: str | None
    allocation: str = "layerwise"
    width: str = "per_layer"
    fold_constants: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.allocation not in ALLOCATIONS:
            raise InputError(f"method {self.name!r}: unknown allocation {self.allocation!r}; expected one of {', '.join(ALLOCATIONS)}")
        if self.width not in WIDTH_RULES:
            raise InputError(f"method {self.name!r}: unknown kept-width rule {self.width!r}; expected one of {', '.join(WIDTH_RULES)}")

    @property
    def is_id(self) -> bool:
        return self.criterion is None

    @property
    def units(self) -> str:
        """``weights`` or ``neurons``: what the method removes."""
        return "neurons" if self.criterion is None or get_criterion(self.criterion).structured else "weights"

    @property
    def by_widths(self) -> bool:
        """Whether :func:`kept_width` of the dense network decides what it keeps: ID methods, and neuron
        methods whose rule is not ``per_layer`` (that one removes ``round(s·n)`` per layer itself)."""
        return self.units == "neurons" and (self.is_id or self.width != "per_layer")

    def with_width(self, width: str | None) -> "Method":
        """This method with kept-width rule ``width`` (unchanged for ``None``)."""
        return self if width is None or width == self.width else replace(self, width=width)


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to the registry (a name may be registered once; it must not shadow a criterion
    of another meaning)."""
    if method.name in _METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def available_methods() -> list[str]:
    """Registered method names and every criterion name (each is a method too), sorted."""
    return sorted(set(_METHODS) | set(available_criteria()))


def resolve_method(name: str) -> Method:
    """The method called ``name``: a registered method, else the criterion of that name as a method
    (layerwise; ``per_layer`` for neurons); else one clear line listing both."""
    if name in _METHODS:
        return _METHODS[name]
    if name in available_criteria():
        return Method(name, name, description=get_criterion(name).description)
    raise InputError(
        f"unknown pruning method {name!r}; expected a method or criterion: {', '.join(available_methods())} "
        "(see sciprune.core._criteria.register_criterion to add one)"
    )


def per_layer_width(size: int, sparsity: float) -> int:
    """Neurons a group of ``size`` keeps at ``sparsity`` by the ``per_layer`` rule:
    :math:`\\max(1, n - \\mathrm{round}(s\\,n))`."""
    return max(1, size - round(sparsity * size))


def kept_width(units: PruningUnits, sparsity: float, rule: str = "per_layer", *,
               shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, int]:
    """Neurons each prunable group of ``units`` (the *dense* network's) keeps at ``sparsity`` by ``rule``
    (see the module docstring); ``{group name: kept}``. ``weight_budget`` counts weights, so it needs
    ``shapes`` (``{parameter name: shape}``; :func:`dense_kept_width` reads them from a model)."""
    if not 0.0 <= sparsity < 1.0:
        raise InputError(f"sparsity must lie in [0, 1); got {sparsity}")
    groups = [g for g in units.groups if g.prunable]
    if rule == "per_layer":
        return {g.name: per_layer_width(g.size, sparsity) for g in groups}
    if rule != "weight_budget":
        raise InputError(f"unknown kept-width rule {rule!r}; expected one of {', '.join(WIDTH_RULES)}")
    if not groups:
        raise InputError("the weight_budget rule needs a hidden layer; the model declares none (only its output layer)")
    if shapes is None:
        raise InputError("the weight_budget rule counts weights: pass shapes= (or use dense_kept_width(model, ...))")
    budget = (1.0 - sparsity) * kept_weights(units, shapes, {})
    k = max(g.size for g in groups)
    while k > 1 and kept_weights(units, shapes, {g.name: min(k, g.size) for g in groups}) > budget + 1e-9:
        k -= 1
    return {g.name: min(k, g.size) for g in groups}


def widest_kept(units: PruningUnits, sparsities: Sequence[float], rule: str = "per_layer", *,
                shapes: Mapping[str, Sequence[int]] | None = None) -> tuple[str, int, float]:
    """The group that keeps the most neurons by ``rule`` over ``sparsities``, that number, and the first
    sparsity where it does: the fewest rows an ID's activation matrix needs (a column interpolative
    decomposition keeps at most as many neurons as the matrix has rows)."""
    best = ("", 0, 0.0)
    for s in sparsities:
        for group, k in kept_width(units, s, rule, shapes=shapes).items():
            if k > best[1]:
                best = (group, k, s)
    return best


def dense_kept_width(model: nn.Module, sparsity: float, rule: str = "per_layer") -> dict[str, int]:
    """:func:`kept_width` of ``model``'s units and parameter shapes (``model`` unpruned, or only masked)."""
    return kept_width(units_of(model), sparsity, rule, shapes={n: tuple(p.shape) for n, p in model.named_parameters()})


def kept_weights(units: PruningUnits, shapes: Mapping[str, Sequence[int]], widths: Mapping[str, int]) -> int:
    """Entries of ``units``' weights (parameter shapes ``shapes``) left when group ``g`` keeps ``widths[g]``
    of its neurons (groups not named keep all), summed over members."""
    removed: dict[tuple[str, int], int] = {}
    for g in units.groups:
        gone = g.size - widths.get(g.name, g.size)
        if gone < 0:
            raise InputError(f"group {g.name!r} has {g.size} neurons; cannot keep {widths[g.name]}")
        for s in (*g.incoming, *g.outgoing, *g.attached):
            removed[(s.param, s.axis)] = removed.get((s.param, s.axis), 0) + gone * int(s.index.shape[1])
    total = 0
    for w in units.weights:
        shape = shapes[w.param]
        members = math.prod(int(d) for d in shape[: w.member_axes])
        kept = math.prod(int(shape[a]) - removed.get((w.param, a), 0) for a in range(w.member_axes, len(shape)))
        total += members * kept
    return total


register_method(Method("weight", "magnitude", description="unstructured magnitude pruning of each layer"))
register_method(Method("unit", "neuron_l2", description="neurons with the smallest L2 norm of incoming weights, per layer"))
register_method(Method("id", None, description="interpolative-decomposition pruning of neurons (next layer corrected)"))
register_method(Method("wt", "magnitude", allocation="global", description="global unstructured magnitude pruning"))
register_method(Method("ft", "neuron_l1", width="weight_budget", fold_constants=True,
                       description="neurons by the L1 norm of incoming weights, one width for every layer, constants folded"))
