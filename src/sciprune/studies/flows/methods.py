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
  :math:`\sigma(b_j)` folded into the next bias (core's ``prune(..., fold_constants=True)``;
  not for ConcatSquash neurons, whose output depends on ``t``) where the reference dropped it. ``k`` is the largest width whose weight count
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

from sciprune.core.compact import compact
from sciprune.core.idprune import id_prune_mlp
from sciprune.core.pruning import prune
from sciprune.core.units import units_of
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
        prune(model, (dense_hidden - k) / dense_hidden, criterion="neuron_l1", layers=hidden, fold_constants=True)
        return model
    if method == "id":
        mlp = field_mlp(model)
        idx = torch.randperm(len(x_train), generator=generator)[:id_samples]
        times = torch.linspace(0.0, 1.0, id_times)
        states = model.trajectory(x_train[idx.to(x_train.device)].to(mlp.linears[0].weight), times).reshape(-1, d)
        return model.with_field(Autonomous(id_prune_mlp(mlp, states, rank=k)))
    raise InputError(f"unknown flows pruning method {method!r}; expected one of wt, ft, id")
