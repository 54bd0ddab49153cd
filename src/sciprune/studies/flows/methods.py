r"""The three ways Sparse flows prunes a vector field, all on ``sciprune.core``: core's cascade prunes by
them, given :mod:`.protocol`'s ``Pruning`` (ID asks ``NetSteps.id_samples`` for its states); this module
holds the field helpers they need.

The wrappers (:mod:`sciprune.nn.ode`) declare their field's pruning units, so core prunes a CNF or a
neural ODE classifier directly; every field family works (autonomous MLP, concat, ConcatSquash).

* ``wt``: global unstructured magnitude pruning over all the field's declared weights (its
  ``nn.Linear`` main weights; :func:`sciprune.core._pruning.prune`, ``magnitude``, ``global``): the
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
  (:func:`sciprune.core._idprune.id_prune_mlp`) to the same ``k`` neurons per layer, on *states
  visited along trajectories*: training points integrated through the flow and sampled at
  ``id_times`` times in :math:`[0, 1]`. It returns a physically smaller field; the next layer
  absorbs the interpolation matrix.

Prune ratios are fractions of the field's dense weights: every neuron method, these and any other
registered method or structured criterion named in ``prune.methods``, keeps the ``weight_budget``
width of :func:`sciprune.core._methods.kept_width`; weight methods and criteria prune by their own
allocation (``wt`` global, a criterion layerwise).
"""

from __future__ import annotations

from torch import nn

from sciprune.core import compact
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import Autonomous, _ODEModel


def field_mlp(model: _ODEModel) -> MLP:
    """The MLP inside an autonomous field (what ID pruning acts on)."""
    field = model.field
    if isinstance(field, Autonomous) and isinstance(field.net, MLP):
        return field.net
    raise InputError(f"ID pruning needs an autonomous MLP field; got {type(field).__name__} (use wt or ft)")


def compact_field(model: _ODEModel) -> _ODEModel:
    """The model around its compacted field (structured-pruned neurons physically removed)."""
    field = model.field
    small: nn.Module = Autonomous(compact(field.net)) if isinstance(field, Autonomous) else compact(field)
    return model.with_field(small)

