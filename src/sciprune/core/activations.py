"""Activations by name, so a network can be rebuilt from a checkpoint's metadata without unpickling code."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sciprune.errors import InputError

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
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
