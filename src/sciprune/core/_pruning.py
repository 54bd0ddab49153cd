r"""From scores to masks: how much to remove, where, and the exact top-k that does it.

``prune(model, sparsity, criterion=..., allocation=...)`` masks the lowest-scoring weights
(unstructured criteria) or neurons (structured criteria) of the units a model declares
(:mod:`sciprune.core._units`; a plain chain of ``nn.Linear`` layers is understood without a
declaration) so that exactly ``round(sparsity * n)`` of them are removed:

* **layerwise** allocation removes that fraction from every prunable layer;
* **global** allocation ranks all prunable items together under one threshold
  (``normalize="layer"`` first divides each layer's scores by their L2 norm, so layers whose
  scores live on different scales compete fairly);
* allocation is always **per member**: a stacked ensemble's members are independent networks,
  each pruned to its own sparsity (``sparsity`` may be one value per member);
* ``overrides={layer: s}`` prunes the named layers to their own fraction, outside the global pool;
* ``min_keep`` (default 1; an int or ``{layer: int}``) items per layer and member are never
  removed: the highest-scoring ones are protected, so no allocation empties a layer (D5);
  ``max_ratio`` caps the fraction of a layer any allocation removes the same way.

Sparsity is cumulative: items pruned earlier count towards the target and are removed first, so
pruned weights never come back. Ties are broken by position (a stable sort), so the same scores
always give the same mask.

A *neuron* is a unit of a :class:`~sciprune.core._units.NeuronGroup`: pruning it masks every slice
of the group (incoming row, bias, outgoing columns, attached rows), so a compacted network
(:func:`sciprune.core._compact.compact`) has exactly the same outputs. Groups declared not
prunable (output layers) are pruned only when named explicitly in ``layers``.

A removed neuron used to emit a constant once its incoming weights were cut (:math:`\sigma(b_j)`
with its bias kept); masking its outgoing weights drops that constant. ``fold_constants=True``
keeps it: before masking, :func:`fold_removed` adds :math:`\sigma(b_j) \sum_i W_{o,i}` (outgoing
slice) to the bias named by the slice's ``fold_into``, per member, so the pruned network equals
the one with the removed neurons' incoming weights zeroed and nothing else changed. Groups whose
removed neuron does not emit a constant are skipped; the rule is
:func:`sciprune.core._fold.unit_constants`'s: exactly one attached slice, one bias entry per unit
(an MLP or concat-field neuron); any other attached slice (a ConcatSquash gate or hyper-bias row:
the output depends on ``t``) means no fold. Off by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.core._criteria import Criterion, get_criterion
from sciprune.core._fold import fold_delta, outgoing_per_unit, unit_constants
from sciprune.core._masks import MASK_SUFFIX, set_mask
from sciprune.core._methods import ALLOCATIONS, Method, resolve_method
from sciprune.core._units import NeuronGroup, PruningUnits, WeightUnit, drop_mask, gather, members_of, units_of
from sciprune.errors import InputError

NORMALIZATIONS = ("none", "layer")


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` of ``model`` with its name, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


@dataclass(frozen=True)
class LayerReport:
    """What one prune call did to one layer (of one member)."""

    layer: str
    weights: int          # entries of the layer's weights
    weights_pruned: int   # of them masked (cumulative)
    neurons: int          # neurons of the layer's group (0 when it declares none)
    neurons_pruned: int   # of them dead: incoming weights fully masked (cumulative)
    member: int = 0

    @property
    def sparsity(self) -> float:
        return self.weights_pruned / self.weights if self.weights else 0.0


def mask_or_ones(model: nn.Module, name: str) -> Tensor:
    """The boolean mask of parameter ``name`` (all ``True`` when it has none)."""
    param = model.get_parameter(name)
    path, _, local = name.rpartition(".")
    module = model.get_submodule(path) if path else model
    mask = getattr(module, local + MASK_SUFFIX, None)
    return mask if isinstance(mask, Tensor) else torch.ones_like(param, dtype=torch.bool)


@dataclass
class _Item:
    """One prunable layer: ``scores`` and ``already`` (pruned earlier) of shape ``(members, n)``."""

    layer: str
    scores: Tensor
    already: Tensor
    unit: WeightUnit | NeuronGroup


def _protect(scores: Tensor, already: Tensor, k: int) -> Tensor:
    """The ``k`` items not pruned yet that a removal would reach last: the highest scores, ties
    broken as :func:`_lowest` breaks them (a 1-D boolean)."""
    out = torch.zeros_like(already)
    if k > 0:
        order = torch.sort(scores, stable=True).indices
        alive = order[~already[order]]
        out[alive[max(0, alive.numel() - k):]] = True
    return out


def _lowest(scores: Tensor, already: Tensor, k: int, protected: Tensor | None) -> Tensor:
    """Boolean ``keep`` removing the ``k`` lowest scores; ``already``-removed items go first,
    ``protected`` ones never."""
    s = scores.clone()
    s[already] = -torch.inf
    order = torch.sort(s, stable=True).indices
    if protected is not None:
        order = order[~protected[order]]
    keep = torch.ones_like(s, dtype=torch.bool)
    keep[order[:k]] = False
    return keep


def _check_sparsity(sparsity: float | Sequence[float], members: int) -> list[float]:
    values = [sparsity] if isinstance(sparsity, int | float) else list(sparsity)
    if not isinstance(sparsity, int | float) and len(values) != members:
        raise InputError(f"sparsity has {len(values)} values; expected one number or one per member ({members})")
    for v in values:
        if not (isinstance(v, int | float) and 0.0 <= float(v) < 1.0):
            raise InputError(f"sparsity must be a number in [0, 1); got {v!r}")
    return [float(v) for v in values] * (members if len(values) == 1 else 1)


def _choose(u: PruningUnits, layers: Sequence[str] | None, structured: bool) -> list[WeightUnit | NeuronGroup]:
    if structured:
        named: dict[str, WeightUnit | NeuronGroup] = {g.name: g for g in u.groups}
        default: list[WeightUnit | NeuronGroup] = [g for g in u.groups if g.prunable]
        if layers is None and not default:
            raise InputError("structured pruning needs a hidden layer; the model declares none (only its output layer)")
    else:
        named = {w.layer or w.param: w for w in u.weights}
        default = list(u.weights)
    if layers is None:
        return default
    unknown = [n for n in layers if n not in named]
    if unknown:
        raise InputError(f"unknown layer(s) {unknown}; prunable layers are {list(named)}")
    return [named[n] for n in layers]


def _score_weights(model: nn.Module, w: WeightUnit, crit: Criterion, gen: torch.Generator | None, ctx: Any) -> _Item:
    p = model.get_parameter(w.param)
    m = members_of(p.shape, w.member_axes)
    pv = p.detach().reshape(m, *p.shape[w.member_axes:])
    extra = {"context": ctx} if crit.wants_context else {}
    scores = torch.stack([crit.score(pv[j], generator=gen, **extra).to(torch.float64).flatten() for j in range(m)]).cpu()
    already = ~mask_or_ones(model, w.param).reshape(m, -1)
    return _Item(w.layer or w.param, scores, already.cpu(), w)


def group_views(model: nn.Module, g: NeuronGroup) -> tuple[Tensor, Tensor | None]:
    """A group's incoming weights ``(members, size, K)`` and outgoing weights ``(members, K', size)``
    (``None`` without outgoing slices): the layout of a layer's weight and the next layer's."""
    inc = torch.cat([gather(model.get_parameter(s.param).detach(), s, g.member_axes) for s in g.incoming], dim=2)
    if not g.outgoing:
        return inc, None
    out = torch.cat([gather(model.get_parameter(s.param).detach(), s, g.member_axes) for s in g.outgoing], dim=2)
    return inc, out.transpose(1, 2)


def dead_units(model: nn.Module, g: NeuronGroup) -> Tensor:
    """``(members, size)``: units whose incoming weights are all masked."""
    masks = [gather(mask_or_ones(model, s.param), s, g.member_axes) for s in g.incoming]
    return ~torch.cat(masks, dim=2).any(dim=2).cpu()


def _score_group(model: nn.Module, g: NeuronGroup, crit: Criterion, with_outgoing: bool,
                 gen: torch.Generator | None, ctx: Any) -> _Item:
    inc, out = group_views(model, g)
    extra = {"context": ctx, "group": g} if crit.wants_context else {}
    rows = []
    for j in range(inc.shape[0]):
        o = out[j] if (out is not None and with_outgoing) else None
        rows.append(crit.score(inc[j], out_weight=o, generator=gen, **extra).to(torch.float64).flatten())
    return _Item(g.name, torch.stack(rows).cpu(), dead_units(model, g), g)


def prune(
    model: nn.Module,
    sparsity: float | Sequence[float],
    *,
    method: str | Method | None = None,
    widths: Mapping[str, int] | None = None,
    criterion: str | None = None,
    allocation: str | None = None,
    layers: Sequence[str] | None = None,
    with_outgoing: bool = False,
    generator: torch.Generator | None = None,
    min_keep: int | Mapping[str, int] = 1,
    max_ratio: float | Mapping[str, float] = 1.0,
    overrides: Mapping[str, float] | None = None,
    normalize: str = "none",
    context: Any = None,
    fold_constants: bool | None = None,
) -> list[LayerReport]:
    """Mask ``model`` to ``sparsity`` and return a report per pruned layer (and member).

    Say how either by a ``method`` (the one vocabulary every study speaks) or by its parts
    (``criterion``, ``allocation``, ``fold_constants``), not both.

    Args:
        sparsity: a fraction in [0, 1), or one per member of a stacked ensemble.
        method: a :class:`~sciprune.core._methods.Method` or the name of one (any registered method or
            criterion: :func:`~sciprune.core._methods.resolve_method`); it sets the criterion, the
            allocation and ``fold_constants``. A neuron method whose kept-width rule is not
            ``per_layer`` keeps ``widths[g]`` neurons of each group ``g`` instead of ``sparsity``
            (:func:`~sciprune.core._methods.kept_width` of the *dense* network). ID methods need samples:
            :func:`sciprune.core._idwidths.id_prune_widths` (a cascade runs it on its protocol's ``id_samples``).
        widths: ``{group: kept}`` for such a method (and only for one).
        criterion: a registered criterion name (:func:`sciprune.core._criteria.available_criteria`;
            default ``magnitude``).
        allocation: ``"layerwise"`` (the same fraction per layer; the default) or ``"global"`` (one
            ranking per member).
        layers: names of the layers (weight units' ``layer`` / group names) to prune; default: every
            weight unit for unstructured criteria, every prunable group for structured ones.
        with_outgoing: structured criteria also score a neuron's outgoing weights.
        generator: required by random criteria.
        min_keep: items per layer and member that are never removed (default 1: no layer is emptied).
        max_ratio: the largest fraction of a layer's items (per member) any allocation may remove
            (a number or ``{layer: fraction}``; default 1: only ``min_keep`` limits it).
        overrides: ``{layer: sparsity}`` for layers pruned to their own fraction.
        normalize: ``"layer"`` divides each layer's scores by their L2 norm before a global ranking.
        context: handed to data-aware criteria (``Criterion.wants_context``).
        fold_constants: structured criteria only: before masking, fold each newly removed neuron's
            constant output into the biases its outgoing slices name (:func:`fold_removed`), so the
            pruned network computes what it did with those neurons' incoming weights zeroed (default off).
    """
    if method is not None:
        given = [k for k, v in (("criterion", criterion), ("allocation", allocation), ("fold_constants", fold_constants),
                                ("overrides", overrides)) if v is not None]
        m, sparsity, layers, overrides = _by_method(model, method, sparsity, widths, layers, given)
        criterion, allocation, fold_constants = m.criterion, m.allocation, m.fold_constants
    elif widths is not None:
        raise InputError("widths= are a method's kept widths: pass method= with them")
    criterion = "magnitude" if criterion is None else criterion
    allocation = "layerwise" if allocation is None else allocation
    if allocation not in ALLOCATIONS:
        raise InputError(f"unknown allocation {allocation!r}; expected one of {', '.join(ALLOCATIONS)}")
    if normalize not in NORMALIZATIONS:
        raise InputError(f"unknown normalize {normalize!r}; expected one of {', '.join(NORMALIZATIONS)}")
    crit = get_criterion(criterion)
    if fold_constants and not crit.structured:
        raise InputError(f"fold_constants folds removed neurons' constants; criterion {criterion!r} is unstructured "
                         "(use a structured criterion such as neuron_l1, or fold_constants=False)")
    u = units_of(model)
    chosen = _choose(u, layers, crit.structured)
    if crit.structured:
        items = [_score_group(model, g, crit, with_outgoing, generator, context) for g in chosen if isinstance(g, NeuronGroup)]
    else:
        items = [_score_weights(model, w, crit, generator, context) for w in chosen if isinstance(w, WeightUnit)]
    if not items:
        raise InputError(f"nothing to prune: layers={list(layers or [])!r} names no layer; expected at least one")
    members = max(it.scores.shape[0] for it in items)
    targets = _check_sparsity(sparsity, members)
    overrides = dict(overrides or {})
    bad = [k for k in overrides if k not in {it.layer for it in items}]
    if bad:
        raise InputError(f"overrides name unknown layer(s) {bad}; layers pruned here are {[it.layer for it in items]}")
    for value in overrides.values():
        _check_sparsity(float(value), 1)

    def keep_of(it: _Item) -> int:
        k: int = min_keep.get(it.layer, 1) if isinstance(min_keep, Mapping) else min_keep
        if int(k) < 0:
            raise InputError(f"min_keep must be >= 0; got {k} for layer {it.layer!r}")
        r = max_ratio.get(it.layer, 1.0) if isinstance(max_ratio, Mapping) else max_ratio
        if not 0.0 <= float(r) <= 1.0:
            raise InputError(f"max_ratio must be in [0, 1]; got {r} for layer {it.layer!r}")
        n = it.scores.shape[1]
        return max(int(k), n - math.floor(float(r) * n))

    keeps: list[list[Tensor]] = [[torch.ones(0, dtype=torch.bool)] * it.scores.shape[0] for it in items]
    for j in range(members):
        pool = []
        for i, it in enumerate(items):
            if it.scores.shape[0] == 1 and j > 0:
                continue  # a layer without member axes is allocated once
            jj = j if it.scores.shape[0] > 1 else 0
            s, a = it.scores[jj], it.already[jj]
            pk = keep_of(it)
            if allocation == "layerwise" or it.layer in overrides:
                frac = overrides.get(it.layer, targets[j])
                k = round(float(frac) * s.numel())
                # protection changes the result only when the k lowest reach the top pk
                prot = _protect(s, a, pk) if k > s.numel() - pk else None
                keeps[i][jj] = _lowest(s, a, k, prot)
            else:
                if normalize == "layer":
                    live = s[~a]
                    norm = float(live.norm()) if live.numel() else 0.0
                    s = s / norm if norm > 0 else s
                pool.append((i, jj, s, a, pk))
        if pool:
            flat = torch.cat([p[2] for p in pool])
            k = round(targets[j] * flat.numel())
            already = torch.cat([p[3] for p in pool])
            keep = _lowest(flat, already, k, None)
            # removal is lowest-first, so a layer that keeps pk live items keeps its top pk: protect
            # (and rank again) only when some layer would fall below its pk
            parts = torch.split(keep & ~already, [p[2].numel() for p in pool])
            if any(int(part.sum()) < min(p[4], int((~p[3]).sum())) for part, p in zip(parts, pool)):
                keep = _lowest(flat, already, k, torch.cat([_protect(p[2], p[3], p[4]) for p in pool]))
            for (i, jj, _, _, _), part in zip(pool, torch.split(keep, [p[2].numel() for p in pool])):
                keeps[i][jj] = part

    if crit.structured:
        drops = [(it.unit, torch.stack(ks)) for it, ks in zip(items, keeps) if isinstance(it.unit, NeuronGroup)]
        if fold_constants:
            fold_removed(model, [(g, ~keep & ~it.already) for (g, keep), it in zip(drops, items)])
        _apply_groups(model, drops)
    else:
        for it, ks in zip(items, keeps):
            assert isinstance(it.unit, WeightUnit)
            p = model.get_parameter(it.unit.param)
            set_mask(model, it.unit.param, torch.stack(ks).reshape(p.shape))
    return reports(model, [it.layer for it in items], u)


def _by_method(model: nn.Module, method: str | Method, sparsity: float | Sequence[float], widths: Mapping[str, int] | None,
               layers: Sequence[str] | None, given: list[str]
               ) -> tuple[Method, float | Sequence[float], Sequence[str] | None, dict[str, float] | None]:
    """``(method, sparsity, layers, overrides)`` that :func:`prune` runs for a criterion method: a neuron
    method with a kept-width rule other than ``per_layer`` prunes each group of ``widths`` to its own
    fraction (``overrides``, sparsity 0 elsewhere); refused: ID methods, a method beside its parts
    (``given``), ``widths`` missing where the rule needs them or given where it does not."""
    m = method if isinstance(method, Method) else resolve_method(method)
    if given:
        raise InputError(f"method {m.name!r} sets the criterion, allocation, folding and kept widths; "
                         f"got {', '.join(given)} too: pass method= or those, not both")
    if m.criterion is None:
        raise InputError(f"method {m.name!r} is ID pruning: it needs samples; call sciprune.core.id_prune_widths "
                         "with kept_width's widths")
    if m.by_widths:
        if widths is None:
            raise InputError(f"method {m.name!r} keeps {m.width} widths: pass widths= (see kept_width)")
        sizes = {g.name: g.size for g in units_of(model).groups}
        unknown = sorted(set(widths) - set(sizes))
        if unknown:
            raise InputError(f"widths name unknown group(s) {unknown}; the model's groups are {sorted(sizes)}")
        overrides = {g: (sizes[g] - k) / sizes[g] for g, k in widths.items()}
        return m, 0.0, (layers if layers is not None else list(overrides)), overrides
    if widths is not None:
        raise InputError(f"widths= are kept widths of a neuron method's width rule; method {m.name!r} removes "
                         f"{'weights' if m.units == 'weights' else 'round(sparsity * n) neurons per layer'}: drop widths=")
    return m, sparsity, layers, None


@torch.no_grad()
def fold_removed(model: nn.Module, removed: list[tuple[NeuronGroup, Tensor]]) -> int:
    r"""Fold the constant output of the units about to be removed into the biases that read them.

    ``removed``: per group, ``(members, size)`` booleans (the units this prune call removes; units
    removed earlier were folded then). For every group whose units emit a constant once their
    incoming weights are cut (:func:`sciprune.core._fold.unit_constants`: :math:`\sigma(b_u)` for a
    neuron whose only attached slice is its bias; none for ConcatSquash neurons, whose output
    depends on ``t``), and every outgoing slice naming a bias in ``fold_into``,
    :math:`b_o \mathrel{+}= \sigma(b_u) \sum_i W_{o,i}` per member. All constants and outgoing
    weights are read before anything changes, so removing neurons of consecutive layers in one call
    gives exactly the network with all their incoming weights zeroed; each call is exact with respect
    to the network it prunes (a later call's :math:`b_u` includes what earlier calls folded into it).
    A bias entry that is masked stays zero. Returns the number of units folded.
    """
    deltas: list[tuple[str, Tensor]] = []
    folded = 0
    for g, drop in removed:
        if not bool(drop.any()) or not any(s.fold_into for s in g.outgoing):
            continue
        c = unit_constants(model, g)
        if c is None:
            continue
        for s in g.outgoing:
            if s.fold_into is not None:
                per_unit = outgoing_per_unit(model.get_parameter(s.param).detach(), s, g.member_axes)
                deltas.append((s.fold_into, fold_delta(per_unit, drop, c)))
        folded += int(drop.sum())
    for name, delta in deltas:
        b = model.get_parameter(name)
        keep = mask_or_ones(model, name).reshape(delta.shape).to(delta.device)
        b.view(delta.shape).add_((delta * keep).to(b.dtype))
    return folded


def _apply_groups(model: nn.Module, drops: list[tuple[NeuronGroup, Tensor]]) -> None:
    """Mask every slice of every unit not kept (``keep``: ``(members, size)``), one ``set_mask`` per parameter."""
    masks: dict[str, Tensor] = {}
    for g, keep in drops:
        for s in (*g.incoming, *g.outgoing, *g.attached):
            shape = model.get_parameter(s.param).shape
            m = drop_mask(shape, s, g.member_axes, ~keep)
            masks[s.param] = masks[s.param] & m if s.param in masks else m
    for name, m in masks.items():
        set_mask(model, name, m)


def reports(model: nn.Module, layers: Sequence[str] | None = None, u: PruningUnits | None = None) -> list[LayerReport]:
    """The current mask state of the named layers (default: every declared layer), per member."""
    u = u if u is not None else units_of(model)
    groups = {g.name: g for g in u.groups}
    by_layer: dict[str, list[WeightUnit]] = {}
    for w in u.weights:
        by_layer.setdefault(w.layer or w.param, []).append(w)
    names = list(layers) if layers is not None else list(dict.fromkeys([*by_layer, *groups]))
    out = []
    for name in names:
        ws = by_layer.get(name, [])
        wm = [mask_or_ones(model, w.param).reshape(members_of(model.get_parameter(w.param).shape, w.member_axes), -1) for w in ws]
        g = groups.get(name)
        dead = dead_units(model, g) if g is not None else None
        members = max([m.shape[0] for m in wm] + ([dead.shape[0]] if dead is not None else []) + [1])
        for j in range(members):
            rows = [m[j if m.shape[0] > 1 else 0] for m in wm]
            out.append(LayerReport(
                layer=name,
                weights=sum(r.numel() for r in rows),
                weights_pruned=sum(int((~r).sum()) for r in rows),
                neurons=g.size if g is not None else 0,
                neurons_pruned=int(dead[j if dead.shape[0] > 1 else 0].sum()) if dead is not None else 0,
                member=j,
            ))
    return out


def layer_reports(model: nn.Module) -> list[LayerReport]:
    """The current mask state of every declared weight layer."""
    u = units_of(model)
    return reports(model, list(dict.fromkeys(w.layer or w.param for w in u.weights)), u)
