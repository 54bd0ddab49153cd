"""Counting: parameters, exact non-zeros, forward FLOPs and per-layer sparsity.

The same functions give dense, masked and compacted counts: they count what the given network
holds. A masked network still stores (and a dense forward still multiplies) its zeros, so
:func:`count_params` reports its ``total`` unchanged and its ``nonzero`` reduced, while a compacted
network (:func:`sciprune.core._compact.compact`) has a smaller ``total`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.errors import InputError


@dataclass(frozen=True)
class ParamCount:
    """``total`` scalars in all parameters and the ``nonzero`` ones; unpacks as ``total, nonzero``."""

    total: int
    nonzero: int

    @property
    def sparsity(self) -> float:
        """Fraction of zeros, ``1 - nonzero / total`` (0 for a model without parameters)."""
        return 1.0 - self.nonzero / self.total if self.total else 0.0

    def __iter__(self) -> Iterator[int]:
        return iter((self.total, self.nonzero))


def count_params(model: nn.Module) -> ParamCount:
    """Number of parameter scalars of ``model`` and how many are exactly non-zero (all parameters,
    weights and biases, whether masked or not)."""
    total = nonzero = 0
    for p in model.parameters():
        total += p.numel()
        nonzero += int((p.detach() != 0).sum())
    return ParamCount(total, nonzero)


def _linear_layers(model: nn.Module) -> list[tuple[Tensor, int]]:
    """``(weight, out_features)`` of each layer of a sciprune MLP or :class:`CSRMLP`, in order."""
    from sciprune.core._compact import CSRMLP
    from sciprune.core._units import MLPLike

    if isinstance(model, MLPLike):
        return [(layer.weight.detach(), layer.out_features) for layer in model.linears]
    if isinstance(model, CSRMLP):
        return [(w, int(w.shape[0])) for w in model.csr_weights()]
    raise InputError(f"mlp_flops needs a sciprune MLP or CSRMLP; got {type(model).__name__}")


def _nnz(w: Tensor) -> int:
    return int((w.values() != 0).sum()) if w.is_sparse_csr else int((w != 0).sum())


def mlp_flops(mlp: nn.Module) -> int:
    """Floating-point operations of one forward pass for one sample.

    .. math:: \\mathrm{FLOPs} = \\sum_l \\big(2\\, \\mathrm{nnz}(W_l) + \\mathrm{out}_l\\big)

    A multiply-add counts 2 and a bias add 1; activations are not counted. ``nnz`` counts the
    exact non-zeros, so a masked network counts only the weights a sparse kernel would multiply
    (a dense kernel does the full ``2 out_l in_l``: compare with the network before masking), and
    a compacted network counts its smaller layers. ``out_l`` is the stored layer width.
    """
    return sum(2 * _nnz(w) + out for w, out in _linear_layers(mlp))


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros of each weight matrix (every parameter with 2 or more dimensions)."""
    return {
        name: float((p.detach() == 0).sum()) / p.numel()
        for name, p in model.named_parameters()
        if p.dim() >= 2 and p.numel() > 0
    }


def flops(model: nn.Module, *, nfe: float = 1) -> float:
    """FLOPs of one forward for one sample, times ``nfe`` (function evaluations per prediction:
    a neural ODE's solver calls its field ``nfe`` times; a study passes its measured NFE).

    The family's own count (``model.flops()``: every family counts ``2 nnz(W) + nnz(b)`` per
    linear map, so a pruned neuron's zero bias adds nothing); for a model without one, the
    :func:`mlp_flops` of an MLP chain.
    """
    own = getattr(model, "flops", None)
    base = int(own()) if callable(own) else mlp_flops(model)
    return base * nfe if nfe != 1 else base


def dense_weights(model: nn.Module) -> int:
    """Entries of all declared weight units (for an MLP: its weight matrices): the denominator
    of ``achieved_sparsity``."""
    from sciprune.core._units import units_of

    return sum(model.get_parameter(w.param).numel() for w in units_of(model).weights)


def _member_view(t: Tensor, member_axes: int, member: int | None) -> Tensor:
    if member is None or member_axes == 0:
        return t
    return t.reshape(-1, *t.shape[member_axes:])[member]


def network_stats(model: nn.Module, dense_weights: int, *, member: int | None = None) -> dict[str, Any]:
    """Size figures recorded for every stage: non-zeros, FLOPs, per-layer sparsity and widths.

    ``achieved_sparsity`` = 1 - non-zero weights / ``dense_weights`` (over the declared weight
    units; ``None`` when there are none: no division by zero); ``neurons``: live units of every
    prunable group (a unit is live when any of its incoming or attached entries is non-zero).
    With ``member`` (a stacked ensemble's index) every figure is that member's alone
    (``dense_weights`` then counts one member's weights) and ``flops`` its ``flops_per_member``.
    """
    from sciprune.core._units import gather, units_of

    u = units_of(model)
    weights = [(_member_view(model.get_parameter(w.param).detach(), w.member_axes, member)) for w in u.weights]
    if member is None:
        total, nnz = count_params(model)
    else:
        # a parameter whose leading axis has the ensemble's size belongs to the members
        views = [p.detach()[member] if p.dim() >= 1 and p.shape[0] == u.members else p.detach() for p in model.parameters()]
        total, nnz = sum(v.numel() for v in views), sum(int((v != 0).sum()) for v in views)
    weights_nnz = sum(int((w != 0).sum()) for w in weights)
    alive = []
    for g in u.groups:
        if not g.prunable:
            continue
        parts = [gather(model.get_parameter(s.param).detach(), s, g.member_axes) for s in (*g.incoming, *g.attached)]
        live = (torch.cat(parts, dim=2) != 0).any(dim=2)
        alive.append(int(live[member].sum()) if (member is not None and live.shape[0] > 1) else int(live.sum()))
    stats: dict[str, Any] = {
        "achieved_sparsity": 1.0 - weights_nnz / dense_weights if dense_weights > 0 else None,
        "params_total": total,
        "params_nnz": nnz,
        "layer_sparsity": ";".join(f"{float((w == 0).double().mean()):.4f}" for w in weights if w.numel()),
        "neurons": ";".join(map(str, alive)),
    }
    per_member = getattr(model, "flops_per_member", None)
    if member is not None and callable(per_member):
        stats["flops"] = per_member()[member]
    elif hasattr(model, "sizes") or callable(getattr(model, "flops", None)):
        from sciprune.core._units import MLPLike

        stats["flops"] = mlp_flops(model) if isinstance(model, MLPLike) else flops(model)
    return stats
