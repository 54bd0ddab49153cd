r"""ID pruning of a whole network to given widths, through what its family declares.

:func:`id_prune_widths` keeps ``widths[g]`` neurons of each named group ``g``: the neurons an
interpolative decomposition of the group's activations on ``samples`` selects, the next layer absorbing
the interpolation matrix (:func:`~sciprune.core._idprune.id_prune_mlp` for a chain of linear layers,
:func:`~sciprune.core._idtraced.id_prune_traced` for a traced network). It is what
:func:`~sciprune.core._cascade.run_cascade` runs for an ID method: the study supplies only the samples.

**The part an ID acts on.** A family whose neurons live in a sub-network (a neural ODE around its
field, an autonomous field around its MLP) declares it with ``id_part()``, returning
``(attribute, rebuild)``: the sub-network is ``getattr(model, attribute)``, whose units are the model's
under the prefix ``attribute + "."``; ``rebuild(pruned)`` is the model around a pruned sub-network. It
is a new object, not the old one with the submodule swapped, because the model's ``arch`` must describe
the pruned part for its checkpoint to rebuild. Declarations are followed until a module declares none;
that module must be an MLP chain (:class:`~sciprune.core._units.MLPLike`) or a
:class:`~sciprune.core._traced.Traced` network, and ``samples`` are *its* inputs (one tensor, or a tuple
for a traced network of several inputs).

**Widths.** Names are the model's groups (as :func:`~sciprune.core._methods.kept_width` gives them);
a width above a group's current size keeps the group as it is (an ID never adds neurons), and a group
of an MLP chain that is not named keeps all its neurons (an ID at full rank: the same network). A
traced group read by something not linear in it (DeepONet's branch·trunk product) cannot be folded:
it is refused, or, with ``unfoldable`` (a structured criterion), masked by that criterion at
``sparsity`` before the ID of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from torch import Tensor, nn

from sciprune.core._idprune import id_prune_mlp
from sciprune.core._idtraced import foldable_groups, id_prune_traced
from sciprune.core._pruning import prune
from sciprune.core._traced import Traced
from sciprune.core._units import MLPLike, units_of
from sciprune.errors import InputError

Rebuild = Callable[[nn.Module], nn.Module]


def id_part_of(model: nn.Module) -> tuple[nn.Module, str, Rebuild]:
    """The sub-network an ID of ``model`` prunes, the prefix of its group names in ``model``, and the
    function that puts a pruned one back (see the module docstring); ``model`` itself when it declares none."""
    part, prefix, rebuilds = model, "", []
    while (declared := getattr(part, "id_part", None)) is not None:
        attribute, rebuild = declared()
        part, prefix = getattr(part, attribute), f"{prefix}{attribute}."
        rebuilds.append(rebuild)

    def put_back(pruned: nn.Module) -> nn.Module:
        for rebuild in reversed(rebuilds):
            pruned = rebuild(pruned)
        return pruned

    return part, prefix, put_back


def id_prune_widths(model: nn.Module, samples: Tensor | tuple[Tensor, ...], widths: Mapping[str, int], *,
                    unfoldable: str | None = None, sparsity: float | None = None) -> nn.Module:
    """``model`` with ``widths[g]`` neurons of each group ``g`` kept by interpolative decomposition on
    ``samples`` (the inputs of its ID part); a new network, ``model`` is left as it is, unless an
    ``unfoldable`` criterion masks groups of a traced network in place (see the module docstring)."""
    part, prefix, put_back = id_part_of(model)
    if not isinstance(part, (MLPLike, Traced)):
        raise InputError(f"ID pruning needs an MLP chain or a Traced network; got {type(part).__name__} "
                         "(a family that wraps one declares id_part(): docs/design.md)")
    current = {g.name: g.size for g in units_of(part).groups if g.prunable}
    kept: dict[str, int] = {}
    for name, k in widths.items():
        local = name[len(prefix):] if name.startswith(prefix) else None
        if local not in current:
            raise InputError(f"no prunable group {name!r} in {type(model).__name__}; "
                             f"its prunable groups are {sorted(prefix + g for g in current)}")
        kept[local] = min(current[local], int(k))
    if isinstance(part, MLPLike):
        if not isinstance(samples, Tensor):
            raise InputError(f"an MLP chain takes one tensor of samples; got {type(samples).__name__}")
        return put_back(id_prune_mlp(part, samples, rank=[kept.get(g, n) for g, n in current.items()]))
    if unfoldable is not None and (others := sorted(set(kept) - foldable_groups(part))):
        if sparsity is None:
            raise InputError(f"unfoldable={unfoldable!r} prunes groups {others} at a sparsity: pass sparsity=")
        prune(part, sparsity, criterion=unfoldable, layers=others)
        kept = {g: k for g, k in kept.items() if g not in others}
    return put_back(id_prune_traced(part, samples, ranks=kept)) if kept else model
