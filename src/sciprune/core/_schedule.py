"""Sparsity schedules: the sequence of target sparsities a cascade walks through.

Every schedule is a plain tuple of floats in [0, 1) (targets, not increments). Helpers build the
common shapes; :func:`named_schedule` gives the published ones by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sciprune.errors import InputError


def explicit(values: Sequence[float]) -> tuple[float, ...]:
    """The given sparsities, checked: each in [0, 1)."""
    out = tuple(float(v) for v in values)
    bad = [v for v in out if not 0.0 <= v < 1.0]
    if bad:
        raise InputError(f"sparsities must lie in [0, 1); got {bad[0]} in {list(out)}")
    if not out:
        raise InputError("a sparsity schedule needs at least one value; got an empty list")
    return out


def geometric_linear(
    keep_start: float = 0.8, keep_mid: float = 0.2, n_geometric: int = 20,
    keep_linear_start: float = 0.18, keep_end: float = 0.02, n_linear: int = 9,
) -> tuple[float, ...]:
    r"""Keep ratios falling geometrically, then linearly (the Sparse-flows cascade).

    Keep ratios :math:`\kappa` = ``geomspace(keep_start, keep_mid, n_geometric)`` followed by
    ``linspace(keep_linear_start, keep_end, n_linear)``; sparsities are :math:`1-\kappa`. The
    defaults give the published 29 steps from 20 % to 98 % sparsity.
    """
    keep = np.concatenate([
        np.geomspace(keep_start, keep_mid, n_geometric),
        np.linspace(keep_linear_start, keep_end, n_linear),
    ])
    return explicit([round(1.0 - float(k), 12) for k in keep])


def polynomial(final: float, steps: int, *, initial: float = 0.0, power: float = 3.0) -> tuple[float, ...]:
    r"""Gradual pruning (Zhu & Gupta): :math:`s_t = s_f + (s_i - s_f)(1 - t/T)^p`, :math:`t = 1..T`."""
    if steps < 1:
        raise InputError(f"polynomial schedule needs steps >= 1; got {steps}")
    t = np.arange(1, steps + 1) / steps
    return explicit([round(final + (initial - final) * (1 - x) ** power, 12) for x in t])


KERAS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)

_NAMED: dict[str, Callable[[], tuple[float, ...]]] = {
    "keras": lambda: KERAS,
    "sparseflows": geometric_linear,
    "cubic10": lambda: polynomial(0.9, 10),
}


def named_schedule(name: str) -> tuple[float, ...]:
    """A published schedule: ``keras`` (Keras_pruning's k list), ``sparseflows``, ``cubic10``."""
    try:
        return _NAMED[name]()
    except KeyError:
        raise InputError(f"unknown schedule {name!r}; expected one of {', '.join(_NAMED)}") from None
