r"""Is a user's table a grid? ``p`` snapshots × one tensor-product ``x`` grid, in any row order.

The rows ``[p | x | u]`` of a file lie on a grid when there are ``n_p`` distinct parameter rows
(snapshots) and ``x`` columns with ``m_1, …, m_d`` distinct values each such that every one of the
``n_p · m_1 ⋯ m_d`` combinations occurs exactly once. Then the POD baseline (a snapshot matrix) and
the saved fields exist. Values of a column closer than ``rtol × (its range)`` are one level (a file
written in float32 or CSV rounds the same coordinate differently in different rows): the sorted
values of a column start a new level wherever the gap to the previous value exceeds that tolerance.

:func:`detect_grid` returns the row order that makes the table p-major (snapshot, then ``x_1``,
then ``x_2``, …: ``u[order].reshape(n_p, m_1, …, m_d, d_u)``, the layout of the generated data
sets), or the reason it is not a grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A detected grid: ``rows[order]`` is p-major; ``shape = (n_p, m_1, …, m_d)``; ``axes``: x levels."""

    order: np.ndarray
    shape: tuple[int, ...]
    axes: list[list[float]]


def levels(column: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, values)``: the level of every entry (0 … k-1, increasing with the value) and each level's smallest value."""
    span = float(column.max() - column.min())
    order = np.argsort(column, kind="stable")
    s = column[order]
    new = np.ones(s.shape[0], dtype=bool)
    new[1:] = np.diff(s) > rtol * span
    codes = np.empty(s.shape[0], dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes, s[new]


def detect_grid(p: np.ndarray, x: np.ndarray, rtol: float = 1e-6) -> Grid | str:
    """The grid the rows of ``(p, x)`` lie on, or a one-line reason why they do not (see the module docstring)."""
    n = p.shape[0]
    p_codes = np.stack([levels(p[:, j], rtol)[0] for j in range(p.shape[1])], axis=1)
    _, snapshot = np.unique(p_codes, axis=0, return_inverse=True)
    snapshot = snapshot.reshape(-1)
    n_p = int(snapshot.max()) + 1
    x_levels = [levels(x[:, j], rtol) for j in range(x.shape[1])]
    sizes = tuple(int(v.shape[0]) for _, v in x_levels)
    cells = n_p * int(np.prod(sizes, dtype=np.int64))
    if cells != n:
        return (f"{n} rows, but {n_p} distinct p × {' × '.join(map(str, sizes))} distinct x values = {cells} grid points "
                "(scattered or adaptive points)")
    flat = snapshot.astype(np.int64) * (cells // n_p)
    if sizes:
        flat += np.ravel_multi_index(tuple(c for c, _ in x_levels), sizes)
    counts = np.bincount(flat, minlength=cells)
    if counts.max() > 1:
        return f"{int((counts > 1).sum())} (p, x) points occur more than once (and as many are missing)"
    return Grid(np.argsort(flat, kind="stable"), (n_p, *sizes), [v.tolist() for _, v in x_levels])
