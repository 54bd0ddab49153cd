r"""Folding a removed neuron's constant output into the biases that read it.

A neuron ``u`` of a :class:`~sciprune.core._units.NeuronGroup` whose incoming weights are all zero
emits a constant :math:`c_u` (when it is one, see :func:`unit_constants`). Removing the neuron
(masking or cutting its outgoing weights) is exact only if that constant is carried over: for every
``outgoing`` slice ``s`` that names its linear map's bias in ``s.fold_into``,

.. math:: b_o \mathrel{+}= \sum_{u\ \text{removed}} c_u \sum_{i \in \text{index}[u]} W_{o,i},

per member of a stacked ensemble. Two callers share these helpers:
:func:`sciprune.core._shrink.compact_state` (compaction of units whose incoming *and attached*
weights are zero: :math:`c = \sigma(0)`) and :func:`sciprune.core._pruning.prune` with
``fold_constants=True`` (structured pruning: :math:`c_u = \sigma(b_u)`, what the neuron emitted
once its incoming weights were cut).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sciprune.core._activations import get_activation
from sciprune.core._units import NeuronGroup, Slice, gather, members_of

OPAQUE = "opaque"  # a group's activation when its zero-input output is not a known constant (traced units)


def outgoing_per_unit(w: Tensor, s: Slice, member_axes: int) -> Tensor:
    """``(members, size, rest)``: each unit's outgoing weights of ``w``, summed over its ``k``
    positions. For a ``(out, n)`` weight read as a linear map and its columns, row ``u`` is
    column ``u`` (``rest = out``, laid out like the map's bias)."""
    x = gather(w, s, member_axes)
    m, size, _ = x.shape
    return x.reshape(m, size, s.index.shape[1], -1).sum(dim=2)


def fold_delta(per_unit: Tensor, drop: Tensor, c: float | Tensor) -> Tensor:
    """``(members, rest)``: what the removed units (``drop``: ``(members, size)`` booleans) add to
    the bias, from :func:`outgoing_per_unit`'s ``per_unit`` and their constants ``c`` (one number,
    or ``(members, size)``)."""
    rows = []
    for j in range(per_unit.shape[0]):
        gone = drop[j if drop.shape[0] > 1 else 0].to(per_unit.device)
        x = per_unit[j, gone]
        if isinstance(c, Tensor):
            rows.append((c[j if c.shape[0] > 1 else 0, gone.to(c.device)][:, None].to(x) * x).sum(dim=0))
        else:
            rows.append(c * x.sum(dim=0))
    return torch.stack(rows)


def zero_input_constant(g: NeuronGroup) -> float:
    r""":math:`\sigma(0)`: the output of a unit whose incoming and attached weights are all zero
    (``activation=None`` reads as the identity; :data:`OPAQUE`: not known, NaN, so nothing is folded)."""
    if g.activation == OPAQUE:
        return math.nan
    return float(get_activation(g.activation or "identity")(torch.zeros((), dtype=torch.float64)))


def unit_constants(model: nn.Module, g: NeuronGroup) -> Tensor | None:
    r"""``(members, size)``: what each unit of ``g`` emits once its incoming weights are zero, or
    ``None`` when that is not a constant the group lets ``core`` know.

    The rule, from what the group declares: with no ``attached`` slice the pre-activation is 0 and
    the constant :math:`\sigma(0)`; with exactly one ``attached`` slice giving each unit a single
    entry of a vector per member (its bias: a parameter of ``member_axes + 1`` dimensions, ``index``
    of shape ``(size, 1)``) it is :math:`\sigma(b_u)`. Any other attached slice (a ConcatSquash
    gate or hyper-bias row, whose output depends on ``t``; a hypernetwork's generated rows) makes
    the output something else than a constant: ``None``, nothing is folded.
    """
    if g.activation == OPAQUE:
        return None
    fn = get_activation(g.activation or "identity")
    if not g.attached:
        inc = model.get_parameter(g.incoming[0].param)
        m = members_of(inc.shape, g.member_axes)
        return fn(torch.zeros(m, g.size, dtype=inc.dtype, device=inc.device))
    if len(g.attached) != 1:
        return None
    s = g.attached[0]
    b = model.get_parameter(s.param).detach()
    if b.dim() != g.member_axes + 1 or s.index.shape[1] != 1:
        return None
    return fn(gather(b, s, g.member_axes)[:, :, 0])
