"""Vertex values of the INR and the true error of the mesh interpolant.

**Vertex values** (:class:`VertexValues`): ``u_h[j] = f_c(v_j)`` for every vertex, one batched
forward. Refinement keeps old vertices in place and appends new ones, so only the new vertices are
evaluated (checked, not assumed: a changed prefix is evaluated again).

**True error** (:class:`TrueError`): on ``P`` points :math:`x_p` drawn once in the mesh's
bounding box (points outside the mesh are dropped), with :math:`f` evaluated once,

.. math:: \\mathrm{RMSE} = \\Big(\\frac{1}{P}\\sum_p (f_c(x_p) - u_h(x_p))^2\\Big)^{1/2},\\qquad
          \\max_p |f_c(x_p) - u_h(x_p)|.

The points are randomised quasi-Monte Carlo: ``R = 16`` independently scrambled Sobol' sets
(:class:`scipy.stats.qmc.Sobol`, scrambles seeded from ``(seed, "amr", "rmse-points", r)``) of
``P / R`` points each. Each set gives an unbiased estimate :math:`M_r` of the mean squared error;
their spread gives the standard error of the pooled :math:`M = \\bar M_r`,
:math:`s_M = \\mathrm{sd}(M_r)/\\sqrt R`, and of the RMSE by the delta method,
:math:`s = s_M / (2\\,\\mathrm{RMSE})` (``rmse_se``). The default is 2^18 points in 2-D and 3-D (2^16 i.i.d.
uniform points moved hos's RMSE by about ±5 % with their seed; the s.e. at 2^18 is in docs/amr.md).

Here :math:`u_h(x_p)` is the P1 interpolant on the leaf element containing :math:`x_p` at the
correct reference point (the reference code passed physical coordinates as reference ones). On
axis-aligned box meshes the point location and the multilinear evaluation are vectorised
(:class:`~sciprune.studies.amr.interp.BoxLocator`); other meshes use ``mesh.FindPoints``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sciprune.core import numpy_generator
from sciprune.studies.amr.inr import INR
from sciprune.studies.amr.interp import (
    BoxLocator,
    box_corner_order,
    box_values,
    find_points,
    reference_values,
)
from sciprune.studies.amr.meshing import AMRMesh

Lift = Callable[[np.ndarray], np.ndarray]


class VertexValues:
    """``f_c`` at the mesh vertices, re-using the values of vertices already seen."""

    def __init__(self, inr: INR, lift: Lift, component: int) -> None:
        self.inr, self.lift, self.component = inr, lift, component
        self._coords = np.zeros((0, 0))
        self._values = np.zeros(0)

    def __call__(self, amr: AMRMesh) -> np.ndarray:
        V = amr.vertices()
        n_old = len(self._coords)
        if not (n_old <= len(V) and self._coords.shape[1:] == V.shape[1:] and np.array_equal(V[:n_old], self._coords)):
            n_old = 0
            self._values = np.zeros(0)
        new = self.inr(self.lift(V[n_old:]))[:, self.component].numpy()
        self._values = np.concatenate([self._values[:n_old], new])
        self._coords = V.copy()
        return self._values.copy()


def default_points(dim: int) -> int:
    return 1 << 18


#: independently scrambled Sobol' sets of the true-error points (their spread gives the s.e.).
REPLICATES = 16


def rqmc_points(seed: int, n_points: int, dim: int) -> np.ndarray:
    """``(R * ceil(n_points / R), dim)`` points in [0, 1)^dim: ``R`` scrambled Sobol' sets, set after set."""
    import warnings

    from scipy.stats import qmc

    per = -(-n_points // REPLICATES)
    sets = []
    for r in range(REPLICATES):
        sobol = qmc.Sobol(dim, scramble=True, seed=numpy_generator(seed, "amr", "rmse-points", r))
        with warnings.catch_warnings():  # a count that is not a power of 2 loses balance, not validity
            warnings.simplefilter("ignore", UserWarning)
            sets.append(sobol.random(per))
    return np.concatenate(sets)


class TrueError:
    """RMSE and max error of ``u_h`` against ``f_c`` on a fixed, seeded point set."""

    def __init__(self, amr: AMRMesh, inr: INR, lift: Lift, component: int, *, seed: int,
                 n_points: int | None = None) -> None:
        V = amr.vertices()
        lo, hi = V.min(axis=0), V.max(axis=0)
        self.lo, self.hi = lo, hi
        self.points = lo + (hi - lo) * rqmc_points(seed, n_points or default_points(amr.dim), amr.dim)
        self.replicate = np.repeat(np.arange(REPLICATES), len(self.points) // REPLICATES)
        self.f = inr(lift(self.points))[:, component].numpy()
        roots = amr.corners()
        self.locator = BoxLocator(roots, self.points) if box_corner_order(roots) is not None else None

    def interpolant(self, amr: AMRMesh) -> tuple[np.ndarray, np.ndarray]:
        """``(mask, u_h)``: which points lie in the mesh, and ``u_h`` there."""
        corners = amr.corners()
        corner_vals = amr.values()[amr.element_vertices()]
        elem = None
        if self.locator is not None:
            elem = self.locator.locate(corners.min(axis=1), corners.max(axis=1), amr.level, amr.root)
        if elem is not None:
            mask = elem >= 0
            return mask, box_values(corners, corner_vals, elem[mask], self.points[mask])
        elem, xi = find_points(amr.mesh, self.points)
        mask = elem >= 0
        return mask, reference_values(corner_vals, elem[mask], xi[mask])

    def __call__(self, amr: AMRMesh) -> tuple[float, float]:
        """``(RMSE, max error)``."""
        rmse, max_err, _ = self.estimate(amr)
        return rmse, max_err

    def estimate(self, amr: AMRMesh) -> tuple[float, float, float]:
        """``(RMSE, max error, standard error of the RMSE)`` (NaN where no point lies in the mesh)."""
        return self._estimate(*self.interpolant(amr))

    def grid_estimate(self, inr: INR, lift: Lift, component: int, n: int) -> tuple[float, float, float]:
        """:meth:`estimate` for the P1 interpolant on the regular grid of ``n`` cells per axis over
        the points' bounding box, computed without a mesh: the multilinear interpolant of the
        ``(n + 1)^d`` grid values. On ``square:N`` / ``cube:N`` this is the mesh after ``k`` uniform
        refinements for ``n = N 2^k`` (tested equal to MFEM's where both are computed), so uniform
        levels of millions of DOFs cost one INR forward per vertex and no mesh."""
        dim = self.points.shape[1]
        axes = [np.linspace(self.lo[d], self.hi[d], n + 1) for d in range(dim)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
        step = 1 << 18
        values = np.concatenate([inr(lift(grid[s : s + step]))[:, component].numpy() for s in range(0, len(grid), step)])
        V = values.reshape((n + 1,) * dim)
        t = (self.points - self.lo) / (self.hi - self.lo) * n
        idx = np.clip(np.floor(t).astype(np.int64), 0, n - 1)
        loc = t - idx
        u = np.zeros(len(self.points))
        for c in range(1 << dim):
            bits = [(c >> d) & 1 for d in range(dim)]
            w = np.prod([loc[:, d] if b else 1.0 - loc[:, d] for d, b in enumerate(bits)], axis=0)
            u += w * V[tuple(idx[:, d] + b for d, b in enumerate(bits))]
        return self._estimate(np.ones(len(u), dtype=bool), u)

    def _estimate(self, mask: np.ndarray, u: np.ndarray) -> tuple[float, float, float]:
        diff = self.f[mask] - u
        if diff.size == 0:
            return float("nan"), float("nan"), float("nan")
        sq = diff * diff
        rmse = float(np.sqrt(np.mean(sq)))
        rep = self.replicate[mask]
        counts = np.bincount(rep, minlength=REPLICATES)
        means = np.bincount(rep, weights=sq, minlength=REPLICATES)[counts > 0] / counts[counts > 0]
        se_mse = float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
        se = se_mse / (2.0 * rmse) if rmse > 0 else 0.0
        return rmse, float(np.abs(diff).max()), se
