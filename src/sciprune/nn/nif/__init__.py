r"""Neural Implicit Flow (NIF): a hypernetwork whose ParameterNet generates a ShapeNet's weights.

A field :math:`u(x; p)` is modelled as ``ShapeNet(x; θ(p))`` with :math:`θ(p) = W_\text{last}\,
z(p) + b_\text{last}` and :math:`z(p) \in \mathbb{R}^r` the latent bottleneck of ParameterNet
(``specs/nif.md`` §1-3). Inputs are one tensor ``[p | x]`` (parameters first); ShapeNet has no
trainable weights of its own (except in :class:`NIFLastLayer`).

One concept a module; this package re-exports the API:

* :mod:`~sciprune.nn.nif.activations`: the activations by name (``swish``, ``tanh``, ``sin``);
* :mod:`~sciprune.nn.nif.initialisers`: Keras' truncated normal and the uniform initialiser;
* :mod:`~sciprune.nn.nif.layout`: the flat layout of θ (§2.4), :class:`Linear`, :class:`ShapeLayout`;
* :mod:`~sciprune.nn.nif.parameternet`: :class:`ParameterNet` ``p → z → θ`` and :func:`unique_rows`;
* :mod:`~sciprune.nn.nif.hyper`: the base the two hypernetwork families share (forward, pruning units);
* :mod:`~sciprune.nn.nif.models`: the families :class:`NIF`, :class:`NIFMultiScale`, :class:`NIFLastLayer`;
* :mod:`~sciprune.nn.nif.pruning`: the pNIF criterion :func:`hyper_node_rms` and the ID fold :func:`id_fold`;
* :mod:`~sciprune.nn.nif.io`: :func:`build_nif`, :func:`load_nif` and the families' ``core.io`` registration.

Importing the package registers the criterion ``hyper_node_rms`` with ``core.criteria`` and the
three families with ``core.io`` (once: a module runs once per process).
"""

from __future__ import annotations

from sciprune.nn.nif.activations import swish as swish
from sciprune.nn.nif.hyper import _HyperNIF as _HyperNIF
from sciprune.nn.nif.layout import LAST as LAST
from sciprune.nn.nif.layout import Linear as Linear
from sciprune.nn.nif.layout import ShapeLayout as ShapeLayout
from sciprune.nn.nif.models import NIF as NIF
from sciprune.nn.nif.models import NIFLastLayer as NIFLastLayer
from sciprune.nn.nif.models import NIFMultiScale as NIFMultiScale
from sciprune.nn.nif.parameternet import ParameterNet as ParameterNet
from sciprune.nn.nif.parameternet import unique_rows as unique_rows

# Registration side effects, in the order the single module had them: the criterion, then the families.
from sciprune.nn.nif.pruning import hyper_node_rms as hyper_node_rms
from sciprune.nn.nif.pruning import id_fold as id_fold
from sciprune.nn.nif.pruning import node_scores as node_scores
from sciprune.nn.nif.pruning import theta_context as theta_context
from sciprune.nn.nif.io import FAMILIES as FAMILIES
from sciprune.nn.nif.io import build_nif as build_nif
from sciprune.nn.nif.io import load_nif as load_nif
