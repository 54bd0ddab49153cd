"""Compaction of any family through its declared neuron groups (see :mod:`sciprune.core._units`).

A unit ``u`` of a prunable group is *removable* when

* all its ``outgoing`` weights are exactly zero (nothing reads it), or
* all its ``incoming`` and ``attached`` weights are exactly zero: it outputs the constant
  :math:`c = \\sigma(0)` (the group's ``activation``), which :func:`compact_state` folds into the
  biases its outgoing slices name (``Slice.fold_into``; when :math:`c \\ne 0` and an outgoing
  slice names none, e.g. a hypernetwork's generated weights, such a unit stays).

:func:`compact_units` finds the removable units, asks the family for a smaller network
(``model.compact_units(keep)``) and repeats until nothing is removable (a removal can empty a
neighbour). Each group keeps at least one unit per member, and a stacked ensemble keeps the same
number in every member (the widest member's count: extra units are kept unchanged, which is exact).
Families implement ``compact_units(keep)`` with :func:`compact_state`, which folds the constants
and index-selects every parameter *and its mask* along every slice, so a family only rebuilds
itself at the new widths.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sciprune.core._fold import fold_delta, outgoing_per_unit, zero_input_constant
from sciprune.core._masks import MASK_SUFFIX
from sciprune.core._units import NeuronGroup, PruningUnits, gather, members_of, units_of
from sciprune.errors import InputError


def removable(model: nn.Module, g: NeuronGroup) -> Tensor:
    """``(members, size)`` booleans: the units of ``g`` that compaction may remove."""
    def zero(slices: tuple[Any, ...]) -> Tensor:
        parts = [gather(model.get_parameter(s.param).detach(), s, g.member_axes) for s in slices]
        return (torch.cat(parts, dim=2) == 0).all(dim=2).cpu()

    dead_in = zero((*g.incoming, *g.attached))
    dead_out = zero(g.outgoing) if g.outgoing else torch.zeros_like(dead_in)
    c = zero_input_constant(g)
    if c != 0.0 and any(s.fold_into is None for s in g.outgoing):
        return dead_out  # a constant sigma(0) != 0 that cannot be folded: only unread units go
    return dead_in | dead_out


def _keep_of(drop: Tensor) -> Tensor:
    """``(members, k)`` sorted kept indices: at least one per member, the same count in all."""
    keep = ~drop
    k = max(1, int(keep.sum(dim=1).max()))
    rows = []
    for j in range(drop.shape[0]):
        kept = keep[j].nonzero().flatten()
        extra = drop[j].nonzero().flatten()[: k - kept.numel()]  # kept unchanged: exact
        rows.append(torch.sort(torch.cat([kept, extra])).values)
    return torch.stack(rows)


def compact_units(model: nn.Module) -> tuple[nn.Module, dict[str, Tensor]]:
    """A physically smaller network with the same outputs, and the kept unit indices.

    Returns ``(small, keep)``: ``keep[group]`` is ``(members, k)`` original indices of the units
    that survive (``(1, k)`` without member axes), for weight rewinding through compaction.
    The model must implement ``compact_units(keep)`` (see the module docstring).
    """
    if not callable(getattr(model, "compact_units", None)):
        raise InputError(f"{type(model).__name__} cannot be compacted: it has no compact_units(keep) method")
    total: dict[str, Tensor] = {}
    while True:
        u = units_of(model)
        keep = {g.name: _keep_of(removable(model, g)) for g in u.groups if g.prunable}
        if all(k.shape[1] == g.size for g in u.groups if g.prunable for k in [keep[g.name]]):
            break
        model = model.compact_units(keep)  # type: ignore[operator]
        for name, k in keep.items():
            total[name] = torch.gather(total[name], 1, k) if name in total else k
    for g in u.groups:
        if g.prunable and g.name not in total:
            total[g.name] = torch.arange(g.size).expand(members_of_group(model, g), -1).clone()
    return model, total


def members_of_group(model: nn.Module, g: NeuronGroup) -> int:
    return members_of(model.get_parameter(g.incoming[0].param).shape, g.member_axes)


def compact_state(model: nn.Module, keep: dict[str, Tensor], u: PruningUnits | None = None) -> dict[str, Tensor]:
    """``model``'s state dict with the removed units' constants folded and their slices cut out.

    ``keep[group]``: ``(members, k)`` kept unit indices (groups not named keep all units). Every
    parameter is index-selected along each axis a kept group's slice lives on; its ``*_mask``
    buffer the same way. A masked bias entry that receives a folded constant is unmasked.
    """
    u = u if u is not None else units_of(model)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cuts: dict[tuple[str, int], list[tuple[Tensor, Any, int]]] = {}
    for g in u.groups:
        if g.name not in keep:
            continue
        k = keep[g.name].cpu()
        m = k.shape[0]
        drop = torch.ones(m, g.size, dtype=torch.bool)
        drop.scatter_(1, k, False)
        c = zero_input_constant(g)
        for s in g.outgoing:
            if s.fold_into is None or c == 0.0:
                continue
            delta = fold_delta(outgoing_per_unit(sd[s.param], s, g.member_axes), drop, c)
            sd[s.fold_into].view(m, -1).add_(delta)
            mk = s.fold_into + MASK_SUFFIX
            if mk in sd:
                sd[mk].view(m, -1).logical_or_((delta != 0).to(sd[mk].device))
        for s in (*g.incoming, *g.outgoing, *g.attached):
            cuts.setdefault((s.param, s.axis), []).append((s.index, drop, g.member_axes))
    for (param, axis), parts in cuts.items():
        for key in (param, param + MASK_SUFFIX):
            if key in sd:
                sd[key] = _cut(sd[key], axis, parts)
    return sd


def _cut(t: Tensor, axis: int, parts: list[tuple[Tensor, Tensor, int]]) -> Tensor:
    """``t`` without the positions of dropped units along ``axis`` (per member)."""
    member_axes = max(p[2] for p in parts)
    m = members_of(t.shape, member_axes)
    x = t.movedim(axis, member_axes)
    shape = x.shape
    x = x.reshape(m, shape[member_axes], -1)
    gone = torch.zeros(m, shape[member_axes], dtype=torch.bool)
    for index, drop, _ in parts:
        for j in range(m):
            gone[j, index[drop[j if drop.shape[0] > 1 else 0]].reshape(-1)] = True
    counts = (~gone).sum(dim=1)
    if not bool((counts == counts[0]).all()):
        raise InputError("compaction would leave members of different widths; keep the same count per member")
    rows = torch.stack([(~gone[j]).nonzero().flatten() for j in range(m)]).to(t.device)
    y = torch.gather(x, 1, rows.unsqueeze(2).expand(-1, -1, x.shape[2]))
    new_shape = list(shape)
    new_shape[member_axes] = int(counts[0])
    return y.reshape(new_shape).movedim(member_axes, axis)
