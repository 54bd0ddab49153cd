"""Counting: parameters, exact non-zeros, forward FLOPs and per-layer sparsity.

The same functions give dense, masked and compacted counts: they count what the given network
holds. A masked network still stores (and a dense forward still multiplies) its zeros, so
:func:`count_params` reports its ``total`` unchanged and its ``nonzero`` reduced, while a compacted
network (:func:`sciprune.core.compact.compact`) has a smaller ``total`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
    from sciprune.core.compact import CSRMLP
    from sciprune.core.units import MLPLike

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
