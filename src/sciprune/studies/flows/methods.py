r"""The three ways Sparse flows prunes a vector field, all on ``sciprune.core``.

The wrappers (:mod:`sciprune.nn.ode`) declare their field's pruning units, so core prunes a CNF or a
neural ODE classifier directly; every field family works (autonomous MLP, concat, ConcatSquash).

* ``wt``: global unstructured magnitude pruning over all the field's declared weights (its
  ``nn.Linear`` main weights; :func:`sciprune.core.pruning.prune`, ``magnitude``, ``global``): the
  reference's ThresNet.
* ``ft``: per-layer structured neuron pruning by the L1 norm of incoming weights, the same number of
  neurons ``k`` kept in every hidden layer, never the output layer, a neuron's whole group masked
  (incoming row, bias, outgoing column; ConcatSquash gate and hyper-bias rows too) (``neuron_l1``,
  ``layerwise``): the reference's FilterThresNet, with the pruned neuron's constant output
  :math:`\sigma(b_j)` folded into the next bias (:func:`fold_pruned_constants`) where the reference
  dropped it. ``k`` is the largest width whose weight count
  stays within the target, :math:`w(k) \le (1 - s)\, w(H)` with (state dimension :math:`d`, :math:`L`
  layers) :math:`w(k) = d k + (L-2) k^2 + k d` for MLP and ConcatSquash fields and
  :math:`(1+d) k + (L-2)(1+k) k + (1+k) d` for concat fields (the time column).
* ``id``: interpolative-decomposition pruning of an autonomous MLP field
  (:func:`sciprune.core.idprune.id_prune_mlp`) to the same ``k`` neurons per layer, on *states
  visited along trajectories*: training points integrated through the flow and sampled at
  ``id_times`` times in :math:`[0, 1]`. It returns a physically smaller field; the next layer
  absorbs the interpolation matrix.

Prune ratios are fractions of the field's dense weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciprune.core.activations import get_activation
from sciprune.core.compact import compact
from sciprune.core.idprune import id_prune_mlp
from sciprune.core.masks import apply_masks
from sciprune.core.pruning import mask_or_ones, prune
from sciprune.core.units import Slice, gather, units_of
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import Autonomous, _ODEModel
from sciprune.nn.odefield import ConcatField


def field_mlp(model: _ODEModel) -> MLP:
    """The MLP inside an autonomous field (what ID pruning acts on)."""
    field = model.field
    if isinstance(field, Autonomous) and isinstance(field.net, MLP):
        return field.net
    raise InputError(f"ID pruning needs an autonomous MLP field; got {type(field).__name__} (use wt or ft)")


def field_weights(d: int, hidden: int, layers: int, *, time_column: bool = False) -> int:
    """Weights of an ``l{layers}_h{hidden}`` field on a ``d``-dimensional state."""
    t = 1 if time_column else 0
    return (t + d) * hidden + (layers - 2) * (t + hidden) * hidden + (t + hidden) * d


def kept_width(d: int, hidden: int, layers: int, sparsity: float, *, time_column: bool = False) -> int:
    """The largest uniform hidden width whose weights are at most ``(1 - sparsity)`` of the dense ones."""
    budget = (1.0 - sparsity) * field_weights(d, hidden, layers, time_column=time_column)
    k = hidden
    while k > 1 and field_weights(d, k, layers, time_column=time_column) > budget + 1e-9:
        k -= 1
    return k


def compact_field(model: _ODEModel) -> _ODEModel:
    """The model around its compacted field (structured-pruned neurons physically removed)."""
    field = model.field
    small: nn.Module = Autonomous(compact(field.net)) if isinstance(field, Autonomous) else compact(field)
    return model.with_field(small)


def _dead(model: nn.Module, masks: dict[str, Tensor], s: Slice) -> Tensor:
    """Units whose every ``s`` entry is masked."""
    m = masks.get(s.param)
    if m is None:
        m = torch.ones_like(model.get_parameter(s.param), dtype=torch.bool)
    return ~gather(m, s, 0)[0].any(dim=1)


@torch.no_grad()
def fold_pruned_constants(model: nn.Module, before: dict[str, Tensor], masks_before: dict[str, Tensor]) -> int:
    r"""Fold the constant output of every neuron FT just removed into the next layer's bias.

    The reference zeroed a pruned neuron's incoming row and outgoing column but kept its bias, so
    the neuron emitted :math:`\sigma(b_j)` and that constant was silently dropped. Here, for every
    newly pruned neuron of a group whose only attached entry is its bias (MLP and concat fields;
    a ConcatSquash neuron's output stays time-dependent, so it is not folded),
    :math:`b^{next} \mathrel{+}= \sigma(b_j) \sum_i W^{next}_{:, i}` over its outgoing positions, with the
    values from before the prune step (``before``: the state dict then; ``masks_before``: the masks then).
    The masked network then computes exactly what the reference's pruned one did, constant included.
    Returns the number of neurons folded. (A study-side step: core's ``prune`` masks the outgoing
    column without folding; this belongs there.)
    """
    masks = {name: mask_or_ones(model, name) for name in before}
    folded = 0
    for g in units_of(model).groups:
        if not g.prunable or g.member_axes or g.activation is None or len(g.attached) != 1 or len(g.incoming) != 1:
            continue
        inc, bias = g.incoming[0], g.attached[0]
        newly = _dead(model, masks, inc) & ~_dead(model, masks_before, inc)
        if not bool(newly.any()):
            continue
        c = get_activation(g.activation)(gather(before[bias.param], bias, 0)[0, :, 0])  # (size,)
        for s in g.outgoing:
            if s.fold_into is None:
                continue
            w = gather(before[s.param], s, 0)[0]  # (size, k * out)
            out = model.get_parameter(s.fold_into)
            w = w.reshape(w.shape[0], -1, out.numel()).sum(dim=1)  # (size, out)
            out.add_((c[newly, None] * w[newly]).sum(dim=0).to(out.dtype))
        folded += int(newly.sum())
    apply_masks(model)
    return folded


def prune_field(method: str, model: _ODEModel, sparsity: float, *, dense_hidden: int, layers: int, x_train: Tensor,
                id_samples: int, id_times: int, generator: torch.Generator) -> _ODEModel:
    """Prune ``model``'s field to ``sparsity`` by ``method``: masks in place, or a new model (``id``)."""
    d = int(x_train.shape[1])
    k = kept_width(d, dense_hidden, layers, sparsity, time_column=isinstance(model.field, ConcatField))
    if method == "wt":
        prune(model, sparsity, criterion="magnitude", allocation="global")
        return model
    if method == "ft":
        hidden = [g.name for g in units_of(model).groups if g.prunable]
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        masks_before = {n: mask_or_ones(model, n).clone() for n in before}
        prune(model, (dense_hidden - k) / dense_hidden, criterion="neuron_l1", layers=hidden)
        fold_pruned_constants(model, before, masks_before)
        return model
    if method == "id":
        mlp = field_mlp(model)
        idx = torch.randperm(len(x_train), generator=generator)[:id_samples]
        times = torch.linspace(0.0, 1.0, id_times)
        states = model.trajectory(x_train[idx].to(mlp.linears[0].weight), times).reshape(-1, d)
        return model.with_field(Autonomous(id_prune_mlp(mlp, states, rank=k)))
    raise InputError(f"unknown flows pruning method {method!r}; expected one of wt, ft, id")
