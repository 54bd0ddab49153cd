"""Vertex values of the INR and the true error of the mesh interpolant.

**Vertex values** (:class:`VertexValues`): ``u_h[j] = f_c(v_j)`` for every vertex, one batched
forward. Refinement keeps old vertices in place and appends new ones, so only the new vertices are
evaluated (checked, not assumed: a changed prefix is evaluated again).

**True error** (:class:`TrueError`): on ``P`` points :math:`x_p` drawn once, uniformly in the mesh's
bounding box from a generator seeded with ``(seed, "amr", "rmse-points")`` (points outside the
mesh are dropped), with :math:`f` evaluated once,

.. math:: \\mathrm{RMSE} = \\Big(\\frac{1}{P}\\sum_p (f_c(x_p) - u_h(x_p))^2\\Big)^{1/2},\\qquad
          \\max_p |f_c(x_p) - u_h(x_p)|,

where :math:`u_h(x_p)` is the P1 interpolant on the leaf element containing :math:`x_p` at the
correct reference point (the reference code passed physical coordinates as reference ones). On
axis-aligned box meshes the point location and the multilinear evaluation are vectorised
(:class:`~sciprune.studies.amr.interp.BoxLocator`); other meshes use ``mesh.FindPoints``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sciprune.core.seeding import numpy_generator
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
    return 1 << 16 if dim == 2 else 1 << 18


class TrueError:
    """RMSE and max error of ``u_h`` against ``f_c`` on a fixed, seeded point set."""

    def __init__(self, amr: AMRMesh, inr: INR, lift: Lift, component: int, *, seed: int,
                 n_points: int | None = None) -> None:
        V = amr.vertices()
        lo, hi = V.min(axis=0), V.max(axis=0)
        rng = numpy_generator(seed, "amr", "rmse-points")
        self.points = lo + (hi - lo) * rng.random((n_points or default_points(amr.dim), amr.dim))
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
        mask, u = self.interpolant(amr)
        diff = self.f[mask] - u
        if diff.size == 0:
            return float("nan"), float("nan")
        return float(np.sqrt(np.mean(diff * diff))), float(np.abs(diff).max())
