"""The random initial states and controls of the training data (spec §2), by global sample index.

Sample ``i`` is row ``i % BLOCK`` of block ``i // BLOCK``, and block ``k`` is drawn from its own
generator ``numpy_generator(seed, "moth-samples", k)``. So any range of samples can be drawn on its
own, and a file is the same whatever its chunk size or the number of workers that simulate it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sciprune.core import numpy_generator

BLOCK = 4096


@dataclass(frozen=True)
class Ranges:
    """Uniform sampling ranges (CGS): controls, initial velocities and angles; x₀ = y₀ = 0."""

    F: tuple[float, float] = (0.0, 44300.0)
    alpha: tuple[float, float] = (0.0, 2.0 * math.pi)
    tau: tuple[float, float] = (-100000.0, 100000.0)
    xd: tuple[float, float] = (-1500.0, 1500.0)
    yd: tuple[float, float] = (-1500.0, 1500.0)
    theta: tuple[float, float] = (0.0, 2.0 * math.pi)
    phi: tuple[float, float] = (0.0, 2.0 * math.pi)
    thetad: tuple[float, float] = (-25.0, 25.0)
    phid: tuple[float, float] = (-25.0, 25.0)

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}


ORDER = ("F", "alpha", "tau", "xd", "yd", "theta", "phi", "thetad", "phid")


def _block(seed: int, k: int, ranges: Ranges) -> np.ndarray:
    u = numpy_generator(seed, "moth-samples", k).random((BLOCK, len(ORDER)))
    lo = np.array([getattr(ranges, n)[0] for n in ORDER])
    hi = np.array([getattr(ranges, n)[1] for n in ORDER])
    return lo + (hi - lo) * u


def draw(seed: int, start: int, stop: int, ranges: Ranges = Ranges()) -> tuple[np.ndarray, np.ndarray]:
    """Initial states ``[n, 8]`` (x, ẋ, y, ẏ, θ, θ̇, φ, φ̇) and controls ``[n, 3]`` (F, α, τ) of samples ``start..stop-1``."""
    if stop <= start:
        return np.zeros((0, 8)), np.zeros((0, 3))
    blocks = [_block(seed, k, ranges) for k in range(start // BLOCK, (stop - 1) // BLOCK + 1)]
    raw = np.concatenate(blocks)[start % BLOCK : start % BLOCK + (stop - start)]
    col = {n: raw[:, i] for i, n in enumerate(ORDER)}
    zeros = np.zeros(stop - start)
    y0 = np.stack([zeros, col["xd"], zeros, col["yd"], col["theta"], col["thetad"], col["phi"], col["phid"]], axis=1)
    u = np.stack([col["F"], col["alpha"], col["tau"]], axis=1)
    return y0, u
