"""The shipped example for ``sciprune prune --preset demo``: a residual tanh MLP (the usual deep PINN
body, which no module-order guess prunes correctly) and samples of a smooth 2-D field.

Also a template for your own factory: a module-level function that returns the network.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class ResidualMLP(nn.Module):
    """``h = W_in x``; ``h = h + tanh(W_k h + b_k)`` per block; ``y = W_out h + b_out``."""

    def __init__(self, inputs: int, width: int, depth: int, outputs: int) -> None:
        super().__init__()
        self.lift = nn.Linear(inputs, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, outputs)

    def forward(self, x: Tensor) -> Tensor:
        h = self.lift(x)
        for block in self.blocks:
            h = h + torch.tanh(block(h))
        return self.head(h)  # type: ignore[no-any-return]


def residual_mlp(width: int = 32, depth: int = 2, inputs: int = 2, outputs: int = 1, seed: int = 0) -> ResidualMLP:
    """The example network, initialised from ``seed`` (no global random state)."""
    net = ResidualMLP(inputs, width, depth, outputs)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            bound = 1.0 / math.sqrt(p.shape[-1]) if p.dim() == 2 else 0.1
            p.copy_(torch.empty_like(p).uniform_(-bound, bound, generator=gen))
    return net


def example_field(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` points ``x`` uniform in ``[-1, 1]^2`` and ``y = sin(pi x_0) cos(pi x_1) + x_0 x_1 / 2``."""
    x = 2.0 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1.0
    y = torch.sin(math.pi * x[:, :1]) * torch.cos(math.pi * x[:, 1:]) + 0.5 * x[:, :1] * x[:, 1:]
    return x, y
