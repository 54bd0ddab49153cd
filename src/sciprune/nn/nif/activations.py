"""The activations of NIF's ShapeNet and ParameterNet, by the names their configs use.

``swish`` (``x·sigmoid(x)``: Keras' swish, PyTorch's silu), ``tanh`` and ``sin`` (SIREN). All three
vanish at zero (``swish(0) = tanh(0) = sin(0) = 0``): a ShapeNet node whose incoming weights and
bias are zero outputs zero (:mod:`sciprune.nn.nif.hyper`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sciprune.errors import InputError


def swish(x: Tensor) -> Tensor:
    """``x·sigmoid(x)`` (Keras' swish, PyTorch's silu)."""
    return nn.functional.silu(x)


_ACT: dict[str, Callable[[Tensor], Tensor]] = {"swish": swish, "tanh": torch.tanh, "sin": torch.sin}


def _act(name: str) -> Callable[[Tensor], Tensor]:
    try:
        return _ACT[name]
    except KeyError:
        raise InputError(f"unknown NIF activation {name!r}; expected one of {', '.join(_ACT)}") from None
