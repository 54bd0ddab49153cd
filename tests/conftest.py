"""Shared fixtures: small deterministic networks (no global RNG)."""

from __future__ import annotations

import pytest
import torch

from sciprune.core import torch_generator
from sciprune.nn.mlp import MLP


@pytest.fixture
def mlp() -> MLP:
    return MLP([5, 12, 10, 3], "tanh", generator=torch_generator(0, "fixture"))


@pytest.fixture
def gen() -> torch.Generator:
    return torch_generator(1, "test")
