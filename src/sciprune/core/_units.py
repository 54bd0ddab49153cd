r"""Pruning units: what a network family declares so that ``core`` can prune it without knowing it.

A family (a module in ``sciprune.nn``) implements :class:`Prunable`: ``pruning_units()`` returns a
:class:`PruningUnits` describing

* **weight units** (unstructured pruning): named parameters whose entries may be masked one by one,
  with ``member_axes`` leading axes that index independent members (a stacked ensemble's ``P``
  axis: weights ``[P, out, in]``, one allocation per member);
* **neuron groups** (structured pruning): for each of ``size`` neurons, every slice of every
  parameter that lives and dies with it. Unit ``u`` of a group owns, in parameter ``s.param``, the
  positions ``s.index[u, :]`` along axis ``s.axis`` (axes counted on the whole tensor, member axes
  included). ``incoming`` slices are the neuron's incoming weights (scored by structured criteria),
  ``outgoing`` the weights that read its output (scored with ``with_outgoing``), ``attached`` the
  rest (biases, ConcatSquash gate / hyper-bias rows, a hypernetwork's generated output-bias
  entries): all of them are masked together, so a structured mask always removes the whole group.

Examples of ``index`` (``n`` neurons, ``arange = torch.arange(n)[:, None]``):

============================================  ==========================  =====  ==================
slice                                          parameter shape             axis   index
============================================  ==========================  =====  ==================
MLP hidden layer, incoming row                 ``(n, in)``                 0      ``arange``
its bias                                       ``(n,)``                    0      ``arange``
next layer's column                            ``(out, n)``                1      ``arange``
next layer's column after a time column        ``(out, 1 + n)``            1      ``arange + 1``
stacked ensemble (member axis 0)               ``(P, n, in)``              1      ``arange``
hypernetwork output row(s) of a node           ``(n_gen, latent)``         0      ``(n, k)`` positions
============================================  ==========================  =====  ==================

An ``outgoing`` slice of a weight read as a linear map (``param[..., o, i]`` multiplies input ``i``)
names in ``fold_into`` the bias of that map: when compaction removes a unit whose incoming and
attached weights are all zero, its constant output :math:`c = \sigma(0)` (the group's
``activation``) is folded in, :math:`b_o \mathrel{+}= c \sum_{i \in \text{index}[u]} W_{o,i}`.

Refinements made while generalising ``core`` (issue 6): ``Slice.fold_into`` (above); any module
with a ``pruning_units()`` method is understood (``arch`` is needed only to save and load); a model
without one is refused (issue 16: wrap it in :class:`sciprune.core._traced.Traced`, whose units are
traced from its graph; the former module-order guess was silently wrong on residual and parallel
networks); a group's
``activation`` gives the constant :math:`\sigma(0)` of a removed unit; families compact through
:func:`sciprune.core._shrink.compact_state`; :class:`MLPLike` is the base class of MLP chains that
ID pruning and :func:`~sciprune.core._compact.compact` need, so ``core`` never imports
``sciprune.nn``. Structured criteria see a group as a unit view: incoming weights
``(size, K)`` and outgoing weights ``(K', size)`` per member (:func:`sciprune.core._pruning.group_views`).

``fold_into`` also serves structured pruning: ``prune(..., fold_constants=True)`` folds a newly
removed neuron's constant :math:`\sigma(b_u)` (its output once its incoming weights are cut) the
same way, per member. Whether a group's neurons have such a constant is read from what the group
declares (:func:`sciprune.core._fold.unit_constants`): no ``attached`` slice (constant
:math:`\sigma(0)`) or exactly one that gives each unit one entry of a per-member vector (its bias:
:math:`\sigma(b_u)`); a group with any other attached slice (ConcatSquash gate / hyper-bias rows,
generated rows) is not folded. Declare the bias as the only attached slice only when the neuron
computes :math:`\sigma(W x + b)`.

Chain-shaped families (MLP, stacked ensemble, ConcatField, ConcatSquashField) declare their units
through one helper, :func:`chain_units`: the same slices, the same ``fold_into`` targets and the same
declared-but-not-prunable output group for all of them.

Families also carry ``arch`` (JSON-able) and register a builder with :mod:`sciprune.core._io`, and
may implement ``compact_units`` (a physically smaller network) and ``flops`` (see
:class:`Prunable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Slice:
    """Positions ``index[u, :]`` of ``param`` along ``axis`` belong to unit ``u`` of a group."""

    param: str
    axis: int
    index: Tensor  # long, shape (size, k)
    fold_into: str | None = None  # outgoing slices of a linear map: the bias that absorbs a removed unit's constant


@dataclass(frozen=True)
class WeightUnit:
    """A parameter pruned entry by entry; its first ``member_axes`` axes index independent members."""

    param: str
    member_axes: int = 0
    layer: str = ""  # the layer it belongs to (for per-layer allocation and overrides); default: ``param``


@dataclass(frozen=True)
class NeuronGroup:
    """``size`` neurons that are pruned as wholes (see the module docstring)."""

    name: str
    size: int
    incoming: tuple[Slice, ...]
    outgoing: tuple[Slice, ...] = ()
    attached: tuple[Slice, ...] = ()
    member_axes: int = 0
    activation: str | None = None  # the neuron's activation (a dead neuron's constant output is folded)
    prunable: bool = True          # output layers: False


@dataclass(frozen=True)
class PruningUnits:
    """Everything a family lets ``core`` prune."""

    weights: tuple[WeightUnit, ...]
    groups: tuple[NeuronGroup, ...] = ()
    members: int = 1  # size of the member axis (1 when there is none)
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Prunable(Protocol):
    """A network family ``core`` can prune, compact, count, save and load.

    Required: ``pruning_units()`` and ``arch`` (a JSON-able dict with a ``"class"`` key whose
    builder is registered with :func:`sciprune.core._io.register_family`). Optional methods that
    ``core`` uses when present: ``compact_units(keep) -> nn.Module`` (a smaller network keeping,
    for each prunable group name, the sorted neuron indices ``keep[name]`` of shape
    ``(members, k)``, the same ``k`` for every member; :func:`sciprune.core._shrink.compact_state`
    does the work), ``flops() -> int`` (one forward for one sample: ``2 nnz(W) + nnz(b)`` per
    linear map) and, for ensembles, ``flops_per_member() -> list[int]``.
    """

    @property
    def arch(self) -> dict[str, object]: ...

    def pruning_units(self) -> PruningUnits: ...


class MLPLike(nn.Module):
    """Base class of chains of ``nn.Linear`` layers ``layers[0..L-1]`` with named activations
    (:class:`sciprune.nn.mlp.MLP` derives from it): what ID pruning,
    :func:`~sciprune.core._compact.compact` and CSR export operate on, without ``core`` importing
    the family."""

    sizes: list[int]
    activations: list[str]
    layers: nn.ModuleList

    @property
    def linears(self) -> list[nn.Linear]:
        """The layers, typed as ``nn.Linear``."""
        return [m for m in self.layers if isinstance(m, nn.Linear)]


def chain_units(
    widths: Sequence[int],
    activations: Sequence[str],
    *,
    layer: str = "layers.{}",
    weight: str = "weight",
    bias: str = "bias",
    rows: Sequence[str] = (),
    member_axes: int = 0,
    members: int = 1,
    in_offset: int = 0,
) -> PruningUnits:
    r"""The units of a chain of linear maps ``l = 0..L-1`` of widths ``widths`` (``L + 1`` entries).

    Map ``l`` (module ``layer.format(l)``, written ``M_l``) computes
    :math:`h_{l+1} = \sigma_l(W_l [\,t, h_l\,] + b_l)` with ``M_l.<weight>`` of shape
    ``(*members, widths[l+1], in_offset + widths[l])`` whose first ``in_offset`` columns read
    inputs that are not neurons (a ConcatField's time column), and ``M_l.<bias>``
    ``(*members, widths[l+1])``. Declared:

    * weight units: every ``M_l.<weight>`` (layer ``M_l``, ``member_axes`` leading member axes);
    * a group ``M_l`` per map, of ``widths[l+1]`` neurons: incoming row of ``W_l``, attached its
      bias entry and the row of every parameter named in ``rows`` (``M_l.<name>``, e.g. a
      ConcatSquash layer's ``gate.weight``, ``gate.bias``, ``hyper_bias.weight``), outgoing the
      column ``in_offset + u`` of ``W_{l+1}``, with ``fold_into`` its bias ``b_{l+1}`` (a removed
      neuron's constant :math:`c` enters the next map as :math:`b_{l+1} \mathrel{+}= c\,W_{l+1}[:, u]`,
      exact whatever multiplies that map's output afterwards);
    * the output map's group is declared (its rows and bias, no outgoing slice) but not prunable:
      pruning it only when named explicitly, never by default allocation or compaction.

    ``activations[l]`` is :math:`\sigma_l` (the constant of a removed neuron is :math:`\sigma_l(0)`).
    """
    n = len(widths) - 1
    if len(activations) != n:
        raise ValueError(f"chain_units: {n} maps need {n} activations; got {len(activations)}")
    names = [layer.format(l) for l in range(n)]
    ax = member_axes
    weights = tuple(WeightUnit(f"{m}.{weight}", member_axes=ax, layer=m) for m in names)
    groups = []
    for l, m in enumerate(names):
        idx = torch.arange(int(widths[l + 1]))[:, None]
        outgoing: tuple[Slice, ...] = ()
        if l + 1 < n:
            nxt = names[l + 1]
            outgoing = (Slice(f"{nxt}.{weight}", ax + 1, idx + in_offset, fold_into=f"{nxt}.{bias}"),)
        attached = tuple(Slice(f"{m}.{p}", ax, idx) for p in (bias, *rows))
        groups.append(NeuronGroup(m, int(widths[l + 1]), (Slice(f"{m}.{weight}", ax, idx),), outgoing, attached,
                                  member_axes=ax, activation=activations[l], prunable=l + 1 < n))
    return PruningUnits(weights, tuple(groups), members=members)


def units_of(model: nn.Module) -> PruningUnits:
    """The units ``model`` declares; a model that declares none is refused with one clear line
    (wrap it in :class:`sciprune.core._traced.Traced` to have its units traced from its graph:
    nothing is guessed from module order)."""
    from sciprune.errors import InputError

    declared = getattr(model, "pruning_units", None)
    if callable(declared):
        units = declared()
        if not isinstance(units, PruningUnits):
            raise InputError(f"{type(model).__name__}.pruning_units() returned a {type(units).__name__}; expected PruningUnits")
        return units
    raise InputError(
        f"{type(model).__name__} declares no pruning units; wrap it as Traced(model, example_inputs) "
        "(sciprune.core.Traced: units traced from its graph) or use a sciprune.nn family"
    )


def members_of(shape: torch.Size | tuple[int, ...], member_axes: int) -> int:
    """Number of members: the product of the first ``member_axes`` sizes (1 without member axes)."""
    n = 1
    for d in shape[:member_axes]:
        n *= int(d)
    return n


def gather(t: Tensor, s: Slice, member_axes: int) -> Tensor:
    """The entries of ``t`` that slice ``s`` gives each unit: shape ``(members, size, k * rest)``.

    For an ``(out, in)`` weight and its rows this is ``(1, out, in)``; for the next layer's columns
    ``(1, n, next_out)`` (each unit's outgoing weights as a row).
    """
    m = members_of(t.shape, member_axes)
    x = t.movedim(s.axis, member_axes)
    x = x.reshape(m, x.shape[member_axes], -1)
    size, k = s.index.shape
    return x[:, s.index.reshape(-1).to(x.device), :].reshape(m, size, -1)


def drop_mask(shape: torch.Size | tuple[int, ...], s: Slice, member_axes: int, drop: Tensor) -> Tensor:
    """Boolean keep-mask of a parameter of ``shape`` with every position of the dropped units
    (``drop``: ``(members, size)`` booleans) of slice ``s`` set to ``False``."""
    m = members_of(shape, member_axes)
    moved = list(shape)
    moved.insert(member_axes, moved.pop(s.axis))
    keep = torch.ones(moved, dtype=torch.bool)
    view = keep.view(m, moved[member_axes], -1)
    for j in range(m):
        gone = s.index[drop[j].cpu()].reshape(-1)
        if gone.numel():
            view[j, gone, :] = False
    return keep.movedim(member_axes, s.axis)
