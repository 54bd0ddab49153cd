"""The fields behind the built-in INRs (sciprune trains small MLPs on them and ships the weights).

* ``corner`` on [0,1]^2: :math:`f = \\sin\\big(1 / (r + \\delta)\\big)`, :math:`r = |x|`,
  :math:`\\delta = 0.04`: the oscillation frequency rises sharply towards the corner (0, 0)
  (:math:`|\\nabla f|` up to :math:`1/\\delta^2 = 625`), like the reference's ``hos``.
* ``front`` on [0,1]^2: :math:`f = \\tanh\\big((y - 0.5 - 0.15 \\sin 2\\pi x) / w\\big)`,
  :math:`w = 0.02`: a sharp wavy front, flat on both sides.
* ``spacetime`` on [0,1]^3 = (x, y, t): :math:`f = \\tanh\\big((x - 0.2 - 0.6\\,t - 0.08 \\sin 2\\pi y) / w\\big)`,
  :math:`w = 0.04`: a front sweeping across the square in time (a sheet in space-time; shown on a
  cube mesh, or at one time on a square with ``--time-slice``).

Each spec also says the network trained on it and how its training points are drawn (a share of
them concentrated where the field is hard).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def corner(x: Tensor) -> Tensor:
    r = torch.linalg.vector_norm(x, dim=-1)
    return torch.sin(1.0 / (r + 0.04))


def front(x: Tensor) -> Tensor:
    return torch.tanh((x[..., 1] - 0.5 - 0.15 * torch.sin(2 * math.pi * x[..., 0])) / 0.02)


def spacetime(x: Tensor) -> Tensor:
    return torch.tanh((x[..., 0] - 0.2 - 0.6 * x[..., 2] - 0.08 * torch.sin(2 * math.pi * x[..., 1])) / 0.04)


def _corner_focus(u: Tensor) -> Tensor:
    """Points with radius ~ 0.5 * U^2 (dense towards the corner)."""
    r = 0.5 * u[:, 0] ** 2
    a = 0.5 * math.pi * u[:, 1]
    return torch.stack([r * torch.cos(a), r * torch.sin(a)], dim=1)


def _front_focus(u: Tensor) -> Tensor:
    x = u[:, 0]
    y = 0.5 + 0.15 * torch.sin(2 * math.pi * x) + 0.08 * (2 * u[:, 1] - 1)
    return torch.stack([x, y.clamp(0, 1)], dim=1)


def _spacetime_focus(u: Tensor) -> Tensor:
    y, t = u[:, 1], u[:, 2]
    x = 0.2 + 0.6 * t + 0.08 * torch.sin(2 * math.pi * y) + 0.12 * (2 * u[:, 0] - 1)
    return torch.stack([x.clamp(0, 1), y, t], dim=1)


@dataclass(frozen=True)
class BuiltinSpec:
    """A built-in INR: its field, network, default mesh and training recipe."""

    name: str
    field: Callable[[Tensor], Tensor]
    focus: Callable[[Tensor], Tensor]
    sizes: tuple[int, ...]
    activation: str
    default_mesh: str
    steps: int
    description: str


SPECS: dict[str, BuiltinSpec] = {
    "corner": BuiltinSpec("corner", corner, _corner_focus, (2, 32, 32, 32, 32, 1), "relu", "square", 6000,
                          "sin(1/(|x| + 0.04)) on [0,1]^2: frequency rising towards the corner (0,0)"),
    "front": BuiltinSpec("front", front, _front_focus, (2, 32, 32, 32, 32, 1), "relu", "square", 5000,
                         "tanh((y - 0.5 - 0.15 sin(2 pi x)) / 0.02) on [0,1]^2: a sharp wavy front"),
    "spacetime": BuiltinSpec("spacetime", spacetime, _spacetime_focus, (3, 48, 48, 48, 1), "relu", "cube", 5000,
                             "tanh((x - 0.2 - 0.6 t - 0.08 sin(2 pi y)) / 0.04) on [0,1]^3 = (x, y, t): a moving front"),
}
