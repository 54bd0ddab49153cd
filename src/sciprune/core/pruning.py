"""From scores to masks: how much to remove, where, and the exact top-k that does it.

``prune(model, sparsity, criterion=..., allocation=...)`` masks the lowest-scoring weights
(unstructured criteria) or neurons (structured criteria) of a model's ``nn.Linear`` layers so that
exactly ``round(sparsity * n)`` of them are removed:

* **layerwise** allocation removes that fraction from every prunable layer;
* **global** allocation ranks all prunable items together under one threshold.

Sparsity is cumulative: items pruned earlier count towards the target and are removed first, so
pruned weights never come back. Ties are broken by position (a stable sort), so the same scores
always give the same mask.

A *neuron* is an output unit of a prunable layer: pruning it masks its incoming row, its bias
and its outgoing column in the next ``nn.Linear`` (when the layers chain), so a compacted network
(:func:`sciprune.core.compact.compact`) has exactly the same outputs. The output layer is not
prunable structurally unless named explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sciprune.core.criteria import get_criterion
from sciprune.core.masks import MASK_SUFFIX, set_mask
from sciprune.errors import InputError

ALLOCATIONS = ("layerwise", "global")


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` of ``model`` with its name, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


@dataclass(frozen=True)
class LayerReport:
    """What one prune call did to one layer."""

    layer: str
    weights: int          # entries of the weight matrix
    weights_pruned: int   # of them masked (cumulative)
    neurons: int          # output neurons
    neurons_pruned: int   # of them dead: incoming row fully masked (cumulative)

    @property
    def sparsity(self) -> float:
        return self.weights_pruned / self.weights


def _mask_of(layer: nn.Linear, local: str) -> Tensor:
    mask = getattr(layer, local + MASK_SUFFIX, None)
    param: Tensor = getattr(layer, local)
    return mask if isinstance(mask, Tensor) else torch.ones_like(param, dtype=torch.bool)


def _lowest(scores: Tensor, already: Tensor, k: int) -> Tensor:
    """Boolean ``keep`` mask removing the ``k`` lowest scores; ``already``-removed items go first."""
    s = scores.detach().to(torch.float64).flatten().clone()
    s[already.flatten()] = -torch.inf
    keep = torch.ones_like(s, dtype=torch.bool)
    keep[torch.sort(s, stable=True).indices[:k]] = False
    return keep.view(scores.shape)


def _select(model: nn.Module, layers: Sequence[str] | None, structured: bool) -> tuple[list[tuple[str, nn.Linear]], list[tuple[str, nn.Linear]]]:
    chain = linear_layers(model)
    if not chain:
        raise InputError(f"{type(model).__name__} has no nn.Linear layer to prune")
    if layers is None:
        chosen = chain[:-1] if structured else chain
        if not chosen:
            raise InputError("structured pruning needs a hidden layer; the model has only its output layer")
        return chain, chosen
    names = dict(chain)
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise InputError(f"unknown layer(s) {unknown}; prunable nn.Linear layers are {list(names)}")
    return chain, [(n, names[n]) for n in layers]


def prune(
    model: nn.Module,
    sparsity: float,
    *,
    criterion: str = "magnitude",
    allocation: str = "layerwise",
    layers: Sequence[str] | None = None,
    with_outgoing: bool = False,
    generator: torch.Generator | None = None,
) -> list[LayerReport]:
    """Mask ``model`` to ``sparsity`` (a fraction in [0, 1)) and return a report per pruned layer.

    Args:
        criterion: a registered criterion name (:func:`sciprune.core.criteria.available_criteria`).
        allocation: ``"layerwise"`` (the same fraction per layer) or ``"global"`` (one ranking).
        layers: names of the ``nn.Linear`` layers to prune; default: all of them for unstructured
            criteria, all but the last for structured ones.
        with_outgoing: structured criteria also score a neuron's outgoing weights.
        generator: required by random criteria.
    """
    if not (isinstance(sparsity, int | float) and 0.0 <= float(sparsity) < 1.0):
        raise InputError(f"sparsity must be a number in [0, 1); got {sparsity!r}")
    if allocation not in ALLOCATIONS:
        raise InputError(f"unknown allocation {allocation!r}; expected one of {', '.join(ALLOCATIONS)}")
    crit = get_criterion(criterion)
    chain, chosen = _select(model, layers, crit.structured)
    index = {name: i for i, (name, _) in enumerate(chain)}

    def next_layer(name: str, layer: nn.Linear) -> nn.Linear | None:
        i = index[name] + 1
        if i < len(chain) and chain[i][1].in_features == layer.out_features:
            return chain[i][1]
        return None

    scores, already = [], []
    for name, layer in chosen:
        nxt = next_layer(name, layer) if crit.structured else None
        out_w = nxt.weight if (nxt is not None and with_outgoing) else None
        scores.append(crit.score(layer.weight, out_weight=out_w, generator=generator))
        wmask = _mask_of(layer, "weight")
        already.append(~wmask.any(dim=1) if crit.structured else ~wmask)

    if allocation == "layerwise":
        keeps = [_lowest(s, a, round(float(sparsity) * s.numel())) for s, a in zip(scores, already)]
    else:
        flat = torch.cat([s.detach().to(torch.float64).flatten() for s in scores])
        keep = _lowest(flat, torch.cat([a.flatten() for a in already]), round(float(sparsity) * flat.numel()))
        keeps = list(torch.split(keep, [s.numel() for s in scores]))
        keeps = [k.view(s.shape) for k, s in zip(keeps, scores)]

    for (name, layer), keep in zip(chosen, keeps):
        if crit.structured:
            set_mask(model, f"{name}.weight", keep[:, None].expand_as(layer.weight))
            if layer.bias is not None:
                set_mask(model, f"{name}.bias", keep)
            nxt = next_layer(name, layer)
            if nxt is not None:
                nxt_name = chain[index[name] + 1][0]
                set_mask(model, f"{nxt_name}.weight", keep[None, :].expand_as(nxt.weight))
        else:
            set_mask(model, f"{name}.weight", keep)
    return [_report(name, layer) for name, layer in chosen]


def _report(name: str, layer: nn.Linear) -> LayerReport:
    wmask = _mask_of(layer, "weight")
    return LayerReport(
        layer=name,
        weights=wmask.numel(),
        weights_pruned=int((~wmask).sum()),
        neurons=layer.out_features,
        neurons_pruned=int((~wmask.any(dim=1)).sum()),
    )


def layer_reports(model: nn.Module) -> list[LayerReport]:
    """The current mask state of every ``nn.Linear`` layer."""
    return [_report(name, layer) for name, layer in linear_layers(model)]
