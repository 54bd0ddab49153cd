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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciprune.core import numpy_generator
from sciprune.errors import InputError
from sciprune.studies.nif.grid import detect_grid


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
    source: str = "generated"  # a user file's name
    not_grid: str | None = None  # why a user file's rows are not a grid (the report says it)

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
                     columns=[f"p{i}" for i in range(n_p)] + [f"x{i}" for i in range(n_x)] + [f"u{i}" for i in range(n_u)],
                     source=Path(path).name)


def on_grid(data: FieldData, rtol: float) -> FieldData:
    """``data`` with its rows put in p-major grid order when they lie on a grid (:mod:`.grid`), else with the reason."""
    g = detect_grid(data.p, data.x, rtol)
    if isinstance(g, str):
        return replace(data, not_grid=g)
    o = g.order
    return replace(data, p=data.p[o], x=data.x[o], u=data.u[o], w=None if data.w is None else data.w[o], grid=g.shape,
                   extent={"axes": g.axes})


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


SPLITS = ("rows", "snapshots", "last_snapshots")


@dataclass(frozen=True)
class Split:
    """Normalised tensors of one run: train / held-out / validation rows; the full set for plots.

    ``test_u``, ``train_true`` and ``val_true`` are in physical units, the rest normalised.
    ``held_out`` is False when the evaluation rows are the training rows (``test_fraction = 0``).
    """

    train_in: torch.Tensor
    train_u: torch.Tensor
    train_w: torch.Tensor | None
    test_in: torch.Tensor
    test_u: torch.Tensor   # physical units
    all_in: torch.Tensor
    norm: Normaliser
    train_true: torch.Tensor
    held_out: bool = False
    val_in: torch.Tensor | None = None
    val_true: torch.Tensor | None = None

    def to(self, device: torch.device) -> Split:
        """The same split with every tensor on ``device`` (the arrays are built on the CPU, so their
        numbers do not depend on it)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return replace(self, train_in=self.train_in.to(device), train_u=self.train_u.to(device),
                       train_w=move(self.train_w), test_in=self.test_in.to(device), test_u=self.test_u.to(device),
                       all_in=self.all_in.to(device), train_true=self.train_true.to(device),
                       val_in=move(self.val_in), val_true=move(self.val_true))


def held_out_rows(data: FieldData, fraction: float, by: str, seed: int) -> np.ndarray:
    """Indices of the held-out rows: a seeded random ``fraction`` of the rows (``rows``), of the
    distinct parameter rows ``p`` (``snapshots``: every row of a chosen snapshot), or the last
    ``fraction`` of the snapshots in lexicographic order of ``p`` (``last_snapshots``: extrapolation in p)."""
    n = data.p.shape[0]
    if by == "rows":
        return numpy_generator(seed, "split").permutation(n)[:int(round(fraction * n))]
    if by not in SPLITS:
        raise InputError(f"unknown split {by!r}; expected one of {', '.join(SPLITS)}")
    _, snap = np.unique(data.p, axis=0, return_inverse=True)
    snap = snap.reshape(-1)
    n_s = int(snap.max()) + 1
    k = min(n_s - 1, max(1, int(round(fraction * n_s))))
    if n_s < 2:
        raise InputError(f"data.split={by} holds out whole snapshots, but the data has {n_s} distinct p; use data.split=rows")
    chosen = np.arange(n_s - k, n_s) if by == "last_snapshots" else numpy_generator(seed, "split").permutation(n_s)[:k]
    return np.flatnonzero(np.isin(snap, chosen))


def split(data: FieldData, kind: str, test_fraction: float, seed: int, dtype: torch.dtype, by: str = "rows",
          validation_fraction: float = 0.0) -> Split:
    """Normalise (statistics of all rows) and split (``test_fraction = 0``: evaluate on the training rows).

    ``validation_fraction`` > 0 sets a seeded random part of the training rows aside (``val_*``;
    a plateau criterion of training watches it, the held-out rows stay unseen).
    """
    norm = normaliser(data, kind)
    inp = norm.inputs(data.p, data.x)
    tgt = norm.targets(data.u)
    w = None if data.w is None else data.w / data.w.mean()
    n = inp.shape[0]
    test = np.sort(held_out_rows(data, test_fraction, by, seed)) if test_fraction > 0 else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(n), test) if test.size else np.arange(n)
    if test.size == 0:
        test = train
    val = None
    if validation_fraction > 0:
        pick = numpy_generator(seed, "validation").permutation(train.size)
        n_val = max(1, int(round(validation_fraction * train.size)))
        val, train = np.sort(train[pick[:n_val]]), np.sort(train[pick[n_val:]])
    if train.size == 0:
        raise InputError(f"no training rows are left ({n} rows, test_fraction={test_fraction}, "
                         f"validation_fraction={validation_fraction}); lower them")

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    return Split(t(inp[train]), t(tgt[train]), None if w is None else t(w[train]), t(inp[test]), t(data.u[test]),
                 t(inp), norm, t(data.u[train]), held_out=test is not train,
                 val_in=None if val is None else t(inp[val]), val_true=None if val is None else t(data.u[val]))
