r"""The three ways Sparse flows prunes a vector field, all on ``sciprune.core``.

* ``wt``: global unstructured magnitude pruning over all the field's ``nn.Linear`` weights
  (:func:`sciprune.core.pruning.prune`, ``magnitude``, ``global``): the reference's ThresNet.
* ``ft``: per-layer structured neuron pruning by the L1 norm of incoming weights, the same number of
  neurons ``k`` kept in every hidden layer, never the output layer (``neuron_l1``, ``layerwise``): the
  reference's FilterThresNet. ``k`` is the largest width whose weight count stays within the
  target: :math:`w(k) = d k + (L-2) k^2 + k d \le (1 - s)\, w(H)`.
* ``id``: interpolative-decomposition pruning of the field (:func:`sciprune.core.idprune.id_prune_mlp`)
  to the same ``k`` neurons per layer, on *states visited along trajectories*: training points
  integrated through the flow and sampled at ``id_times`` times in :math:`[0, 1]`. It returns a
  physically smaller field; the next layer absorbs the interpolation matrix.

Prune ratios are fractions of the field's dense weights (all ``nn.Linear`` weight matrices).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sciprune.core.idprune import id_prune_mlp
from sciprune.core.pruning import prune
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import Autonomous, _ODEModel


def field_mlp(model: _ODEModel) -> MLP:
    """The MLP inside an autonomous field (the one the pruning methods act on)."""
    field = model.field
    if isinstance(field, Autonomous) and isinstance(field.net, MLP):
        return field.net
    raise InputError(f"flows pruning needs an autonomous MLP field; got {type(field).__name__}")


def field_weights(d: int, hidden: int, layers: int) -> int:
    """Weights of an ``l{layers}_h{hidden}`` field on a ``d``-dimensional state."""
    return d * hidden + (layers - 2) * hidden * hidden + hidden * d


def kept_width(d: int, hidden: int, layers: int, sparsity: float) -> int:
    """The largest uniform hidden width whose weights are at most ``(1 - sparsity)`` of the dense ones."""
    budget = (1.0 - sparsity) * field_weights(d, hidden, layers)
    k = hidden
    while k > 1 and field_weights(d, k, layers) > budget + 1e-9:
        k -= 1
    return k


def prune_field(method: str, model: _ODEModel, sparsity: float, *, dense_hidden: int, x_train: Tensor,
                id_samples: int, id_times: int, generator: torch.Generator) -> _ODEModel:
    """Prune ``model``'s field to ``sparsity`` by ``method``: masks in place, or a new model (``id``)."""
    mlp = field_mlp(model)
    d, layers = mlp.sizes[0], len(mlp.sizes) - 1
    k = kept_width(d, dense_hidden, layers, sparsity)
    hidden_names = [f"field.net.layers.{i}" for i in range(layers - 1)]
    if method == "wt":
        prune(model, sparsity, criterion="magnitude", allocation="global")
        return model
    if method == "ft":
        prune(model, (dense_hidden - k) / dense_hidden, criterion="neuron_l1", layers=hidden_names)
        return model
    if method == "id":
        idx = torch.randperm(len(x_train), generator=generator)[:id_samples]
        times = torch.linspace(0.0, 1.0, id_times)
        states = model.trajectory(x_train[idx].to(mlp.linears[0].weight), times).reshape(-1, d)
        return model.with_field(Autonomous(id_prune_mlp(mlp, states, rank=k)))
    raise InputError(f"unknown flows pruning method {method!r}; expected one of wt, ft, id")
