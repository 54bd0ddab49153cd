r"""ID pruning of traced groups, the interpolation matrix folded into every consumer.

For a group of :math:`m` units read (at one or more points of the graph, e.g. a residual stream read
by several blocks) only by ``Linear``/``Conv`` columns, the activations at every read point are
stacked as rows of :math:`A` (samples × positions × read points, :math:`m` columns) and factored by
a column interpolative decomposition :math:`A \approx A_{:,K}\,T`
(:func:`sciprune.core._idprune.interpolative_decomposition`). Every consumer is linear in the group's
activation, :math:`\sum_u W_{:,u} h_u \approx \sum_{r} h_{K_r} \sum_u T_{r,u} W_{:,u}`, so its kept
columns become :math:`W_{:,K} \leftarrow W T^\top` (per position of a unit that a consumer reads at
several positions: a flattened channel) and the other units are removed by compaction. At rank
:math:`m` the network is unchanged (to rounding). Groups are pruned one after the other, each on the
activations of the network with the previous groups already pruned.

A group read by anything that is not linear in its activation (a product with another stream then a
sum, DeepONet's dot product) is refused with one line that names it and the reader.

The activations are those of the network as it predicts, whatever mode it is in: the graph runs in
eval mode (dropout off, batch norm on its running statistics), so the ID neither draws from the
global random stream nor depends on ``model.train()``; every module's mode is restored afterwards.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor

from sciprune.core._idprune import interpolative_decomposition
from sciprune.core._trace import Read
from sciprune.core._traced import Traced, as_inputs, on_device_of
from sciprune.core._train import eval_mode
from sciprune.errors import InputError


def _values(traced: Traced, inputs: tuple[Tensor, ...], names: set[str]) -> dict[str, Tensor]:
    """The values of the fx nodes ``names`` on ``inputs`` (one forward, no gradients)."""
    gm = traced.trace.graph
    assert gm is not None
    seen: dict[str, Tensor] = {}

    class Grab(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if n.name in names:
                seen[n.name] = out.detach()
            return out

    try:
        with torch.no_grad(), eval_mode(gm):
            Grab(gm).run(*inputs)
    except Exception as err:  # a graph specialised to the example shapes (meta tracer), or wrong inputs
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"the traced graph of {type(traced.module).__name__} fails on the ID inputs ({first}); "
                         "expected inputs shaped like the example inputs it was traced with") from None
    return seen


def _activations(values: dict[str, Tensor], reads: list[Read]) -> Tensor:
    """Rows of ``A``: every position of every read point, one column per unit."""
    blocks = []
    for r in reads:
        v = values[r.node].movedim(r.axis, -1)
        v = v.reshape(-1, v.shape[-1]).to(torch.float64)
        blocks += [v[:, r.index[:, j]] for j in range(r.index.shape[1])]
    return torch.cat(blocks, dim=0)


def foldable_groups(traced: Traced) -> set[str]:
    """The prunable groups of ``traced`` that ID pruning can fold: read, and only by Linear/Conv columns."""
    trace = traced.trace
    return {g.name for g in trace.units.groups if g.prunable and not trace.sinks.get(g.name) and trace.reads.get(g.name)}


def activation_rows(traced: Traced, inputs: tuple[Tensor, ...] | Tensor) -> dict[str, int]:
    """Rows of each foldable group's activation matrix on ``inputs`` (every position of every read point):
    the most neurons an ID of the group on those inputs can keep."""
    groups = foldable_groups(traced)
    reads = {g: traced.trace.reads[g] for g in sorted(groups)}
    values = _values(traced, on_device_of(traced.module, as_inputs(inputs)), {r.node for rs in reads.values() for r in rs})
    return {g: sum(values[r.node].numel() // max(values[r.node].shape[r.axis], 1) * int(r.index.shape[1]) for r in rs)
            for g, rs in reads.items()}


def id_prune_traced(traced: Traced, inputs: tuple[Tensor, ...] | Tensor, *,
                    ranks: dict[str, int] | None = None, eps: float | None = None) -> Traced:
    """ID-prune the groups of ``traced`` (``ranks``: ``{group: k}``; or every prunable group to tolerance
    ``eps``) on ``inputs``, folding the interpolation into every consumer; returns a compacted ``Traced``."""
    if not isinstance(traced, Traced):
        raise InputError(f"id_prune_traced needs a Traced model; got {type(traced).__name__} (wrap it: Traced(model, inputs))")
    if (ranks is None) == (eps is None):
        raise InputError(f"give exactly one of ranks and eps; got ranks={ranks!r}, eps={eps!r}")
    xs = on_device_of(traced.module, as_inputs(inputs))
    groups = {g.name: g for g in traced.trace.units.groups if g.prunable}
    names = list(ranks) if ranks is not None else list(groups)
    for name in names:
        if name not in groups:
            raise InputError(f"no prunable group {name!r}; prunable groups are {sorted(groups)}")
        if ranks is not None and not 1 <= int(ranks[name]) <= groups[name].size:
            raise InputError(f"rank for group {name!r} must be in [1, {groups[name].size}]; got {ranks[name]}")
        sinks = traced.trace.sinks.get(name)
        if sinks:
            raise InputError(f"group {name!r} is read by {sinks[0]}, which is not linear in its activation; "
                             "ID pruning needs every reader to be a Linear/Conv column")
        if not traced.trace.reads.get(name):
            raise InputError(f"group {name!r} has no Linear/Conv reader; ID pruning has nothing to fold into")
    traced = copy.deepcopy(traced)  # the caller's model is left as it is
    for name in names:
        traced = _prune_group(traced, xs, name, None if ranks is None else int(ranks[name]), eps)
    return traced


@torch.no_grad()
def _prune_group(traced: Traced, xs: tuple[Any, ...], name: str, rank: int | None, eps: float | None) -> Traced:
    g = next(g for g in traced.trace.units.groups if g.name == name)
    reads = traced.trace.reads[name]
    A = _activations(_values(traced, xs, {r.node for r in reads}), reads)
    idd = interpolative_decomposition(A, rank=rank, eps=eps)
    r = int(idd.ranks[0])
    sel = idd.selected[0, :r].cpu()
    T = idd.interp[0, :r].cpu()  # (r, m): h ≈ h[:, sel] @ T
    for s in g.outgoing:
        w = traced.get_parameter(s.param)
        wm = w.detach().movedim(s.axis, -1)
        new = wm.clone()
        for j in range(s.index.shape[1]):
            cols = s.index[:, j]
            new[..., cols[sel]] = (wm[..., cols].to(torch.float64) @ T.T.to(wm.device)).to(w.dtype)
            dropped = torch.ones(g.size, dtype=torch.bool)
            dropped[sel] = False
            new[..., cols[dropped]] = 0.0  # folded above: nothing for compaction to fold
        w.copy_(new.movedim(-1, s.axis))
    keep = {name: torch.sort(sel).values[None]}
    return traced.compact_units(keep)
