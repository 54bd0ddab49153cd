r"""Node pruning on the hypernetwork layout: the pNIF criterion and the ID fold.

Masking, top-k, compaction and the cascade are core's (``core.pruning.prune`` over the groups of
:meth:`~sciprune.nn.nif.hyper._HyperNIF.pruning_units`, ``core.shrink.compact_units`` /
``compact_state``); this module adds the pNIF criterion :func:`hyper_node_rms` (registered with
``core.criteria`` when it is imported) and the ID fold :func:`id_fold`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from sciprune.core import NeuronGroup
from sciprune.nn.nif.hyper import _HyperNIF
from sciprune.nn.nif.layout import LAST
from sciprune.nn.nif.parameternet import unique_rows


def theta_context(model: _HyperNIF, p: Tensor) -> Tensor:
    """θ(p) for the distinct rows of ``p`` ``(U, P)``: the context of the ``hyper_node_rms`` criterion."""
    with torch.no_grad():
        return model.p_to_weights(unique_rows(p)[0]).detach()


def hyper_node_rms(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None,
                   context: Tensor | None = None, group: NeuronGroup | None = None) -> Tensor:
    r"""pNIF node score: :math:`s_j = \sqrt{\tfrac1{|P|}\sum_{p} \|θ_{S_j}(p)\|_2^2}`, the RMS over the
    training parameters of the L2 norm of node ``j``'s generated weights (incoming column, bias,
    outgoing row: the group's slices on ParameterNet's last weight). ``context``: θ(p) ``(U, P)``
    (:func:`theta_context`). Without a context the data-free variant: the L2 norm of the node's
    rows of ``W_last`` (``weight``, its incoming rows). Lower scores are pruned first.
    """
    if context is None or group is None:
        return weight.detach().to(torch.float64).pow(2).sum(dim=-1).sqrt()
    pos = torch.cat([s.index for s in (*group.incoming, *group.outgoing, *group.attached) if s.param == f"{LAST}.weight"], dim=1)
    th = context.detach().to(torch.float64)
    return th[:, pos.to(th.device)].pow(2).sum(dim=2).mean(dim=0).sqrt()


def node_scores(model: _HyperNIF, p: Tensor) -> dict[str, Tensor]:
    """``hyper_node_rms`` of every group's nodes, for the training parameters ``p``."""
    theta = theta_context(model, p)
    return {g.name: hyper_node_rms(theta, context=theta, group=g) for g in model.pruning_units().groups}


def id_fold(model: _HyperNIF, samples: Tensor, keep: dict[str, int]) -> _HyperNIF:
    r"""ID node selection with the interpolation folded into ParameterNet's last layer, exactly.

    For each group in ShapeNet order, its node outputs :math:`H` stacked over ``samples`` (rows
    ``[p | x]``; every stream position stacked for a residual stream) get a rank-``k`` column ID
    :math:`H \approx H_{:,I}\,T` (:func:`sciprune.core._idprune.interpolative_decomposition`). A
    reader of the group computes :math:`h W(p)`, and :math:`W(p)`'s rows are rows of
    :math:`θ(p) = W_\text{last} z(p) + b_\text{last}`, linear in :math:`z`; so replacing the kept
    rows by :math:`T W(p)` is the same linear map applied to ``W_last`` rows and ``b_last``
    entries: :math:`W_\text{last}[R_I] \leftarrow T\, W_\text{last}[R]`. The other nodes are then
    removed. Exact for a plain SIREN ShapeNet up to the ID's residual; for a residual stream one
    shared ``T`` serves every reader (an approximation of the same order).
    Returns a compacted model; ``model`` is not changed.
    """
    from sciprune.core import interpolative_decomposition

    from sciprune.core import compact_units

    small, _ = compact_units(_copy(model))
    current = cast(_HyperNIF, small)
    order = [name for name, _ in current.node_groups()]
    for name in order:
        k = keep.get(name)
        if k is None:
            continue
        with torch.no_grad():
            H = current.activations(samples)[name]
        n = H.shape[1]
        k = max(1, min(int(k), n, H.shape[0]))
        if k >= n:
            continue
        dec = interpolative_decomposition(H, rank=k)
        rank = int(dec.ranks[0])
        sel = dec.selected[0, :rank].cpu()
        T = dec.interp[0, :rank].cpu()  # (rank, n)
        pos = dict((g, o) for g, _, _, _, o in current._group_positions())[name]  # (n, d) outgoing rows
        last = current.pnet.last
        with torch.no_grad():
            for par in (last.weight, last.bias):
                old = par.detach().to(torch.float64).cpu()[pos]  # (n, d[, r])
                new = torch.einsum("in,nd...->id...", T, old)
                par[pos[sel].flatten()] = new.reshape(-1, *old.shape[2:]).to(par.dtype).to(par.device)
        current = current.compact_units({name: torch.sort(sel).values})
    return current


def _copy(model: _HyperNIF) -> _HyperNIF:
    import copy

    return copy.deepcopy(model)


def _register_criterion() -> None:
    from sciprune.core import Criterion, available_criteria, register_criterion

    if "hyper_node_rms" not in available_criteria():
        register_criterion(Criterion("hyper_node_rms", True, hyper_node_rms,
                                     "hypernetwork nodes with the smallest RMS-over-p L2 norm of generated weights",
                                     wants_context=True))


_register_criterion()
