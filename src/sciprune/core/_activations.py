"""Activations by name, so a network can be rebuilt from a checkpoint's metadata without unpickling code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.errors import InputError

class _SigmoidTanh(torch.autograd.Function):
    """``tanh x = 2 σ(2x) − 1`` forward; ``(1 − y²) g`` backward (from the saved output ``y``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def fast_tanh(x: Tensor) -> Tensor:
    r"""``tanh`` evaluated on the CPU as :math:`\tanh x = 2\sigma(2x) - 1`.

    ``torch.tanh`` runs as a scalar loop in the CPU builds measured here (130 µs for 65 536 floats on
    one core, against 28 µs for this form: ``sigmoid`` is vectorised), and it was the largest single
    cost of training small tanh networks (24 % of a stacked-ensemble step; see docs/benchmarks.md).
    The price is accuracy near zero: the absolute error is at most about ``1.5`` units in the last
    place of 1 (measured ``1.8e-7`` in float32, against ``3e-8`` for ``torch.tanh``), so the
    *relative* error of small outputs grows (``7.6e-4`` at ``x = 1e-4``). As a hidden activation that
    is below the rounding of the next layer's float32 matmul, whose sum of ``n`` products already
    carries an absolute error of order ``n · eps · max |w h|``. On other devices ``torch.tanh``.
    """
    if x.device.type != "cpu":
        return torch.tanh(x)
    out: Tensor = _SigmoidTanh.apply(x)
    return out


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "fast_tanh": fast_tanh,
    "sigmoid": torch.sigmoid,
    "silu": nn.functional.silu,
    "gelu": nn.functional.gelu,
    "softplus": nn.functional.softplus,
    "elu": nn.functional.elu,
    "sin": torch.sin,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called ``name``; an unknown name lists the valid ones."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InputError(
            f"unknown activation {name!r}; expected one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None
