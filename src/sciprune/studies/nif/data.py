r"""The data sets of ``sciprune nif``: generated fields and user files, normalised as upstream NIF.

Every data set is pointwise rows ``[p | x | u | (w)]`` (``specs/nif.md`` §5). A generated set is on
a grid: rows are p-major, so ``u.reshape(n_p, *space, d_u)`` is the snapshot array (used by the
POD baseline and the plots).

* ``wave`` / ``wave_high``: the 1-D traveling wave (§6), bit-exact to the upstream files:
  :math:`u = e^{-1000\xi^2}\sin(\omega\xi)`, :math:`\xi = x - 0.2 - 0.006\,t`, ω = 4 or 400.
* ``ks``: parametric Kuramoto-Sivashinsky, p = (t, ν), x on ``[0, 2π)`` (:mod:`.solvers`).
* ``flow2d``: decaying 2-D turbulence (vorticity) from a seeded random field, p = t, x = (x, y).
* ``file``: a user ``.npz`` (array ``data``, or the first array) or ``.csv`` (a header row is
  skipped when it is not numeric) with declared column counts.

Normalisation (§5): ``minmax``: p and x columns to ``[-1, 1]`` (centre = mid-range, scale =
half-range), targets :math:`(u - \bar u)/\max|u|`; ``standard``: z-score of every column. Sample
weights become :math:`w/\bar w` (cell areas; uniform grids have equal weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciprune.core.seeding import numpy_generator
from sciprune.errors import InputError


@dataclass
class FieldData:
    """Raw (physical) rows and how they lie on a grid."""

    name: str
    p: np.ndarray
    x: np.ndarray
    u: np.ndarray
    w: np.ndarray | None = None
    grid: tuple[int, ...] | None = None  # (n_p, *space) when gridded, p-major rows
    columns: list[str] = field(default_factory=list)
    extent: dict[str, Any] = field(default_factory=dict)

    @property
    def numbers(self) -> int:
        """Numbers in the data array of the field: ``rows × d_u``."""
        return int(self.u.size)


def traveling_wave(omega: float) -> np.ndarray:
    """The upstream 2000×3 float32 array ``[t, x, u]`` (t-major), bit-exact (computed in float64)."""
    x = np.linspace(0.0, 1.0, 200, endpoint=False)
    t = np.linspace(0.0, 100.0, 10, endpoint=False)
    X, T = np.meshgrid(x, t)
    xi = X - 0.2 - (0.12 / 20) * T
    u = np.exp(-1000.0 * xi**2) * np.sin(omega * xi)
    return np.stack([T.ravel(), X.ravel(), u.ravel()], axis=1).astype(np.float32)


def wave(omega: float) -> FieldData:
    a = traveling_wave(omega)
    return FieldData(f"wave ω={omega:g}", a[:, :1], a[:, 1:2], a[:, 2:], grid=(10, 200), columns=["t", "x", "u"])


def ks(nus: list[float], nx: int, t_end: float, nt: int, dt: float) -> FieldData:
    """Parametric K-S: one trajectory per ν from ``u0 = -sin x + 2cos 2x + 3cos 3x - 4sin 4x``."""
    from sciprune.studies.nif.solvers import kuramoto_sivashinsky

    x = 2 * np.pi * np.arange(nx) / nx
    u0 = -np.sin(x) + 2 * np.cos(2 * x) + 3 * np.cos(3 * x) - 4 * np.sin(4 * x)
    t = np.linspace(0.0, t_end, nt)
    t = np.rint(t / dt) * dt
    fields = np.stack([kuramoto_sivashinsky(u0, nu, dt, t) for nu in nus])  # (n_nu, nt, nx)
    NU, T, X = np.meshgrid(np.asarray(nus, float), t, x, indexing="ij")
    p = np.stack([T.ravel(), NU.ravel()], axis=1)
    if not np.isfinite(fields).all():
        raise InputError(f"the K-S solution blew up for ν in {nus} at dt={dt}; use a smaller data.dt or larger ν")
    return FieldData("Kuramoto-Sivashinsky", p, X.reshape(-1, 1), fields.reshape(-1, 1),
                     grid=(len(nus) * nt, nx), columns=["t", "nu", "x", "u"], extent={"nus": list(nus), "nt": nt})


def flow2d(n: int, t_end: float, nt: int, dt: float, nu: float, k0: float, seed: int) -> FieldData:
    """Decaying 2-D turbulence: vorticity snapshots at ``nt`` times in ``[0, t_end]`` on an ``n×n`` box."""
    from sciprune.studies.nif.solvers import navier_stokes_2d, random_vorticity

    w0 = random_vorticity(n, k0, 1.0, numpy_generator(seed, "flow2d", "init"))
    t = np.rint(np.linspace(0.0, t_end, nt) / dt) * dt
    w = navier_stokes_2d(w0, nu, dt, t).numpy()
    if not np.isfinite(w).all():
        raise InputError(f"the 2-D flow solver diverged (dt={dt}, n={n}); use a smaller data.dt")
    g = 2 * np.pi * np.arange(n) / n
    T, Y, X = np.meshgrid(t, g, g, indexing="ij")
    return FieldData("2-D decaying turbulence", T.reshape(-1, 1), np.stack([X.ravel(), Y.ravel()], 1), w.reshape(-1, 1),
                     grid=(nt, n, n), columns=["t", "x", "y", "vorticity"], extent={"t": t.tolist()})


def read_table(path: Path) -> np.ndarray:
    """The rows x columns of a user's ``.npz`` / ``.npy`` / ``.csv`` file, checked by
    :func:`sciprune.validate.arrays.read_array_file` (special files, zip integrity, encodings,
    dtypes, non-finite values: one InputError line each)."""
    from sciprune.validate.arrays import read_array_file

    return read_array_file(path, "data file", "a .npz (array 'data'), .npy or .csv file of rows x columns of numbers")


def _constant_column(path: str, c: int, value: float, n_p: int, n_x: int) -> str:
    """The refusal of a constant column ``c``: advice only where the config can follow it."""
    group, count, key = ("p", n_p, "p") if c < n_p else ("x", n_x, "x") if c < n_p + n_x else ("u", 0, "u")
    if group == "u":
        advice = "a constant target leaves nothing to learn; expected a field that varies"
    elif count > 1:
        advice = f"remove the column from the file and set data.columns.{key}={count - 1}"
    else:
        advice = f"expected a varying {group} column (data.columns.{key} is at least 1)"
    return f"data file {path!r}: column {c} is constant ({group} = {value:g}), which breaks normalisation; {advice}"


def user_file(path: str, n_p: int, n_x: int, n_u: int, weight: bool) -> FieldData:
    """Rows ``[p (n_p) | x (n_x) | u (n_u) | (w)]`` from ``path``, checked column by column."""
    arr = read_table(Path(path))
    want = n_p + n_x + n_u + int(weight)
    if arr.shape[1] != want:
        raise InputError(
            f"data file {path!r} has {arr.shape[1]} columns; the declared layout [p {n_p} | x {n_x} | u {n_u}"
            f"{' | w 1' if weight else ''}] needs {want}: fix data.columns or the file"
        )
    if arr.shape[0] < 2:
        raise InputError(f"data file {path!r} has {arr.shape[0]} row(s); expected at least 2")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=0))
    if bad.size:
        raise InputError(f"data file {path!r}: column {int(bad[0])} holds NaN or inf; expected finite numbers (drop or fill those rows)")
    const = np.flatnonzero(arr.max(axis=0) == arr.min(axis=0))
    const = const[const < n_p + n_x + n_u]  # a constant weight column is fine
    if const.size:
        raise InputError(_constant_column(path, int(const[0]), float(arr[0, const[0]]), n_p, n_x))
    w = arr[:, -1] if weight else None
    if w is not None and (w <= 0).any():
        raise InputError(f"data file {path!r}: the weight column has a value <= 0 ({w.min():g}); expected positive cell areas")
    return FieldData(Path(path).name, arr[:, :n_p], arr[:, n_p:n_p + n_x], arr[:, n_p + n_x:n_p + n_x + n_u], w,
                     columns=[f"p{i}" for i in range(n_p)] + [f"x{i}" for i in range(n_x)] + [f"u{i}" for i in range(n_u)])


@dataclass(frozen=True)
class Normaliser:
    """Affine maps ``z = (v - centre) / scale`` for the inputs ``[p | x]`` and the targets ``u``."""

    in_centre: np.ndarray
    in_scale: np.ndarray
    u_centre: np.ndarray
    u_scale: np.ndarray

    def inputs(self, p: np.ndarray, x: np.ndarray) -> np.ndarray:
        return (np.hstack([p, x]) - self.in_centre) / self.in_scale

    def targets(self, u: np.ndarray) -> np.ndarray:
        return (u - self.u_centre) / self.u_scale

    def physical(self, z: np.ndarray) -> np.ndarray:
        return z * self.u_scale + self.u_centre


def normaliser(data: FieldData, kind: str) -> Normaliser:
    """``minmax`` or ``standard`` statistics of ``data`` (see the module docstring)."""
    inp = np.hstack([data.p, data.x])
    if kind == "minmax":
        lo, hi = inp.min(axis=0), inp.max(axis=0)
        return Normaliser((hi + lo) / 2, (hi - lo) / 2, data.u.mean(axis=0), np.abs(data.u).max(axis=0))
    if kind == "standard":
        return Normaliser(inp.mean(axis=0), inp.std(axis=0), data.u.mean(axis=0), data.u.std(axis=0))
    raise InputError(f"unknown normalisation {kind!r}; expected minmax or standard")


@dataclass(frozen=True)
class Split:
    """Normalised tensors of one run: train / test inputs, targets and weights; the full set for plots."""

    train_in: torch.Tensor
    train_u: torch.Tensor
    train_w: torch.Tensor | None
    test_in: torch.Tensor
    test_u: torch.Tensor   # physical units
    all_in: torch.Tensor
    norm: Normaliser


def split(data: FieldData, kind: str, test_fraction: float, seed: int, dtype: torch.dtype) -> Split:
    """Normalise and split rows at random (``test_fraction = 0``: test on the training rows)."""
    norm = normaliser(data, kind)
    inp = norm.inputs(data.p, data.x)
    tgt = norm.targets(data.u)
    w = None if data.w is None else data.w / data.w.mean()
    n = inp.shape[0]
    perm = numpy_generator(seed, "split").permutation(n)
    n_test = int(round(test_fraction * n))
    test, train = (perm[:n_test], perm[n_test:]) if n_test else (perm, perm)
    train = np.sort(train)
    test = np.sort(test)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    return Split(t(inp[train]), t(tgt[train]), None if w is None else t(w[train]), t(inp[test]), t(data.u[test]),
                 t(inp), norm)
