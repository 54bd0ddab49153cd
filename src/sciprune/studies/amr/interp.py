"""Vectorised P1 (multilinear) interpolation on quad / hex meshes, and fast point location.

On an element with corners :math:`X_c` and vertex values :math:`u_c` (lexicographic corner order,
:math:`c = \\sum_d b_d 2^d`), the order-1 H1 interpolant at reference point
:math:`\\xi \\in [0,1]^d` is

.. math:: u_h(x(\\xi)) = \\sum_c w_c(\\xi)\\, u_c,\\qquad x(\\xi) = \\sum_c w_c(\\xi)\\, X_c,\\qquad
          w_c(\\xi) = \\prod_d \\xi_d^{b_d} (1 - \\xi_d)^{1 - b_d}.

On an axis-aligned box the map :math:`x(\\xi)` is affine, so :math:`u_h` is the bilinear /
trilinear function of the *physical* local coordinates ``(x - lo) / (hi - lo)`` whatever the
element's reference orientation: :class:`BoxLocator` uses this, with the element's corners sorted
by physical position. With hanging vertices the corner values are the constrained ones, so this is
exactly what ``GridFunction.GetValue`` returns at the correct reference point.

Point location for NC refinements of a box mesh (:class:`BoxLocator`): every leaf is a dyadic cell
``(root, level, i_0..i_{d-1})`` of an initial (root) box; a point is found by looking up its cell
at every level present (``searchsorted`` on sorted integer keys), ``O(P * levels * log NE)``.
Other meshes fall back to ``mesh.FindPoints`` (:func:`find_points`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def corner_weights(xi: np.ndarray) -> np.ndarray:
    """``(..., d) -> (..., 2^d)``: the multilinear weights :math:`w_c(\\xi)` in lexicographic order."""
    w = np.ones(xi.shape[:-1] + (1,), dtype=np.float64)
    for d in range(xi.shape[-1]):
        x = xi[..., d : d + 1]
        w = np.concatenate([w * (1.0 - x), w * x], axis=-1)
    return w


def map_reference(corners: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Physical points of reference points: ``corners`` (B, C, d), ``xi`` (B, n, d) -> (B, n, d)."""
    return np.einsum("bnc,bcd->bnd", corner_weights(xi), corners)


def box_corner_order(corners: np.ndarray, *, rtol: float = 1e-9) -> np.ndarray | None:
    """For axis-aligned box elements, ``perm`` (NE, C): reference corner ``j`` sits at physical corner
    ``perm[e, j]`` (bit ``d`` set = at the upper end along axis ``d``); ``None`` if any element is not
    an axis-aligned box."""
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    ext = hi - lo
    if not np.all(ext > 0):
        return None
    bits = corners > ((lo + hi) / 2)[:, None, :]
    snapped = np.where(bits, hi[:, None, :], lo[:, None, :])
    if not np.all(np.abs(corners - snapped) <= rtol * ext[:, None, :]):
        return None
    perm = (bits * (1 << np.arange(corners.shape[2]))).sum(axis=2)
    if not np.array_equal(np.sort(perm, axis=1), np.broadcast_to(np.arange(corners.shape[1]), perm.shape)):
        return None
    return perm


class BoxLocator:
    """Locates a fixed point set in the leaves of an NC refinement of axis-aligned root boxes.

    Args:
        root_corners: ``(R, C, d)`` corners of the initial elements (all axis-aligned boxes).
        points: ``(P, d)`` the points (fixed for the whole run).
    """

    def __init__(self, root_corners: np.ndarray, points: np.ndarray) -> None:
        self.rlo = root_corners.min(axis=1)
        self.rhi = root_corners.max(axis=1)
        self.points = np.asarray(points, dtype=np.float64)
        self.proot = self._find_roots()
        ok = self.proot >= 0
        ext = self.rhi - self.rlo
        self.local = np.zeros_like(self.points)
        self.local[ok] = (self.points[ok] - self.rlo[self.proot[ok]]) / ext[self.proot[ok]]

    def _find_roots(self) -> np.ndarray:
        P, R = len(self.points), len(self.rlo)
        out = np.full(P, -1, dtype=np.int64)
        step = max(1, (1 << 22) // max(R, 1))
        for s in range(0, P, step):
            p = self.points[s : s + step, None, :]
            inside = np.all((p >= self.rlo[None]) & (p <= self.rhi[None]), axis=2)
            hit = inside.any(axis=1)
            out[s : s + step] = np.where(hit, inside.argmax(axis=1), -1)
        return out

    def locate(self, lo: np.ndarray, hi: np.ndarray, level: np.ndarray, root: np.ndarray) -> np.ndarray | None:
        """Leaf element of every point (``-1`` outside the mesh), or ``None`` if the leaves are not
        dyadic cells of their roots (then use :func:`find_points`)."""
        dim = lo.shape[1]
        n = (1 << level).astype(np.float64)[:, None]
        rext = (self.rhi - self.rlo)[root]
        scaled = (lo - self.rlo[root]) / rext * n
        idx = np.rint(scaled).astype(np.int64)
        if not (np.allclose(scaled, idx, atol=1e-6) and np.allclose((hi - lo) / rext * n, 1.0, atol=1e-6)):
            return None
        if len(self.rlo) * 2.0 ** (int(level.max()) * dim) >= 2.0**62:
            return None
        out = np.full(len(self.points), -1, dtype=np.int64)
        todo = np.flatnonzero(self.proot >= 0)
        for lev in np.unique(level)[::-1]:
            if todo.size == 0:
                break
            members = np.flatnonzero(level == lev)
            keys = _cell_keys(root[members], idx[members], int(lev))
            order = np.argsort(keys)
            skeys = keys[order]
            cells = np.minimum((self.local[todo] * (1 << int(lev))).astype(np.int64), (1 << int(lev)) - 1)
            pkeys = _cell_keys(self.proot[todo], cells, int(lev))
            pos = np.minimum(np.searchsorted(skeys, pkeys), len(skeys) - 1)
            found = skeys[pos] == pkeys
            out[todo[found]] = members[order[pos[found]]]
            todo = todo[~found]
        return out


def _cell_keys(root: np.ndarray, idx: np.ndarray, level: int) -> np.ndarray:
    key = root.astype(np.int64)
    for d in range(idx.shape[1]):
        key = (key << level) | idx[:, d]
    return key


def box_values(corners: np.ndarray, corner_vals: np.ndarray, elem: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``u_h`` at ``points`` (P, d) inside box elements ``elem`` (P,), from corner values (NE, C)
    given in reference order (reordered here to physical order)."""
    perm = box_corner_order(corners)
    if perm is None:
        raise ValueError("box_values needs axis-aligned box elements")
    phys = np.empty_like(corner_vals)
    np.put_along_axis(phys, perm, corner_vals, axis=1)
    lo, hi = corners.min(axis=1)[elem], corners.max(axis=1)[elem]
    xi = np.clip((points - lo) / (hi - lo), 0.0, 1.0)
    return np.einsum("pc,pc->p", corner_weights(xi), phys[elem])


def find_points(mesh: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mesh.FindPoints``: element ids (P,) (``-1`` where not found) and reference coords (P, d)."""
    _, ids, ips = mesh.FindPoints(np.ascontiguousarray(points, dtype=np.float64))
    dim = points.shape[1]
    xi = np.array([(ip.x, ip.y, ip.z)[:dim] for ip in ips], dtype=np.float64).reshape(len(points), dim)
    return np.asarray(ids, dtype=np.int64), xi


def reference_values(corner_vals: np.ndarray, elem: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """``u_h`` at reference points ``xi`` (P, d) of elements ``elem`` (P,): ``sum_c w_c(xi) u_c``."""
    return np.einsum("pc,pc->p", corner_weights(xi), corner_vals[elem])
