"""The 2-D toy data of Sparse flows, generated from a seed (no downloads).

Classifiers (two classes; uniform noise ``noise * U[0, 1)`` per coordinate as the reference's
generator, Gaussian for the circles):

* ``moons``: two interleaved half circles;
* ``spirals``: two arms :math:`r = \\theta`, :math:`\\theta \\in [0, 3\\pi]`, one per class;
* ``circles``: concentric circles of radii 0.75 and 1.5 (the reference's "concentric").

Densities (labels = the mode or arm a point came from, used by the mode statistics):

* ``gaussians``: 6 Gaussians of std 0.5 on a ring of radius 4;
* ``gaussians_spiral``: 10 Gaussians, 6 per loop, radius 4 -> 1, std 0.3 -> 0.1;
* ``spirals2``: the two-arm spiral with uniform noise 0.5 (a density).

All sets are standardised with one scalar mean and std computed on the *training* set and
applied to both splits (the reference standardised each split with its own statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from sciprune.core import numpy_generator
from sciprune.errors import InputError

Gen = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    a = rng.uniform(0, np.pi, n)
    y = (np.arange(n) >= half).astype(np.int64)
    x = np.where(y[:, None] == 0, np.c_[np.cos(a), np.sin(a)], np.c_[1 - np.cos(a), 0.5 - np.sin(a)])
    return x + 0.1 * rng.random((n, 2)), y


def _arms(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    theta = np.sqrt(rng.random(n)) * 3 * np.pi
    y = (np.arange(n) >= half).astype(np.int64)
    sign = np.where(y == 0, 1.0, -1.0)[:, None]
    x = sign * np.c_[theta * np.cos(theta), theta * np.sin(theta)]
    return x + noise * rng.random((n, 2)), y


def _circles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(n) >= n // 2).astype(np.int64)
    a = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 0, 0.75, 1.5)[:, None]
    return r * np.c_[np.cos(a), np.sin(a)] + 0.1 * rng.standard_normal((n, 2)), y


def _gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 6
    a = 2 * np.pi * y / 6
    return 4.0 * np.c_[np.cos(a), np.sin(a)] + 0.5 * rng.standard_normal((n, 2)), y


def _gaussians_spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 10
    a = 2 * np.pi * y / 6
    r = np.linspace(4.0, 1.0, 10)[y]
    std = np.linspace(0.3, 0.1, 10)[y]
    return r[:, None] * np.c_[np.cos(a), np.sin(a)] + std[:, None] * rng.standard_normal((n, 2)), y


CLASSIFIERS: dict[str, Gen] = {
    "moons": _moons,
    "spirals": lambda n, rng: _arms(n, rng, 0.9),
    "circles": _circles,
}
DENSITIES: dict[str, Gen] = {
    "gaussians": _gaussians,
    "gaussians_spiral": _gaussians_spiral,
    "spirals2": lambda n, rng: _arms(n, rng, 0.5),
}


@dataclass(frozen=True)
class Toy:
    """A standardised train/test split; ``y`` are classes (classifiers) or mode ids (densities)."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    shift: float
    scale: float

    def to(self, device: torch.device) -> "Toy":
        """The same split with its tensors on ``device`` (generated on the CPU, so the numbers do not
        depend on the device; on the CPU this is the split itself)."""
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device))


def make_toy(name: str, n_train: int, n_test: int, seed: int) -> Toy:
    """The toy set ``name`` with ``n_train`` / ``n_test`` points drawn from ``seed``."""
    gen = CLASSIFIERS.get(name) or DENSITIES.get(name)
    if gen is None:
        raise InputError(f"unknown toy data set {name!r}; expected one of {', '.join([*CLASSIFIERS, *DENSITIES])}")
    if n_train < 2 or n_test < 2:
        raise InputError(f"toy data needs at least 2 train and 2 test points; got {n_train} / {n_test}")
    x_tr, y_tr = gen(n_train, numpy_generator(seed, "toy", name, "train"))
    x_te, y_te = gen(n_test, numpy_generator(seed, "toy", name, "test"))
    shift, scale = float(x_tr.mean()), float(x_tr.std())

    def t(x: np.ndarray) -> Tensor:
        return torch.from_numpy((x - shift) / scale).float()

    return Toy(name, t(x_tr), torch.from_numpy(y_tr), t(x_te), torch.from_numpy(y_te), shift, scale)
