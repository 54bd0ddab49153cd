r"""The inverse-model data set: (initial state, desired final pose) → (controls, final velocities).

From the simulated file (:mod:`.simulate`): 10 inputs
``[φ₀, θ₀, x_f, y_f, φ_f, θ_f, ẋ₀, ẏ₀, φ̇₀, θ̇₀]`` and 7 outputs
``[F cos α, F sin α, τ, ẋ_f, ẏ_f, φ̇_f, θ̇_f]`` (α is measured from the thorax axis, so F cos α and
F sin α are body-frame components). Angles are not wrapped. Rows are split into train /
validation / test by a permutation drawn from ``seed``, and every column is scaled by
:math:`v \mapsto (v - \min)/(\max - \min) - ½` with the minima and maxima of the training split, so
losses are MSEs in :math:`[-½, ½]` units, as in the paper. Rows with a NaN or inf are dropped and
counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from sciprune.core.seeding import numpy_generator
from sciprune.errors import InputError
from sciprune.studies.moth.simulate import COLUMNS, VERSION

INPUTS = ("phi_0", "theta_0", "x_f", "y_f", "phi_f", "theta_f", "xd_0", "yd_0", "phid_0", "thetad_0")
INPUT_LABELS = ("φ₀", "θ₀", "x_f", "y_f", "φ_f", "θ_f", "ẋ₀", "ẏ₀", "φ̇₀", "θ̇₀")
OUTPUTS = ("Fx", "Fy", "tau0", "xd_f", "yd_f", "phid_f", "thetad_f")


@dataclass(frozen=True)
class Split:
    """Scaled inputs ``x [n, 10]`` and targets ``y [n, 7]`` (float32)."""

    x: Tensor
    y: Tensor


@dataclass(frozen=True)
class MothData:
    """Train / validation / test splits, the scaling (per column: min, max) and what was dropped."""

    train: Split
    val: Split
    test: Split
    x_min: np.ndarray
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    rows: int
    dropped_nan: int


def read_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(X [n, 10], Y [n, 7])`` (float64) from a simulated file, after checking it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"data file {path} does not exist; make one with: sciprune moth simulate --samples N --out {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path} is not an HDF5 file ({err}); expected the output of sciprune moth simulate") from None
    with f:
        version = f.attrs.get("version")
        if version != VERSION:
            raise InputError(f"{path} has data version {version!r}; expected {VERSION!r}: re-simulate it with this sciprune")
        if "samples" not in f:
            raise InputError(f"{path} has no dataset 'samples'; expected the output of sciprune moth simulate")
        names = json.loads(f.attrs.get("columns", "[]"))
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise InputError(f"{path} lacks the columns {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        raw = np.asarray(f["samples"][:], dtype=np.float64)
    col = {n: raw[:, names.index(n)] for n in COLUMNS}
    x = np.stack([col[n] for n in INPUTS], axis=1)
    fx, fy = col["F"] * np.cos(col["alpha"]), col["F"] * np.sin(col["alpha"])
    y = np.stack([fx, fy, col["tau0"], col["xd_f"], col["yd_f"], col["phid_f"], col["thetad_f"]], axis=1)
    return x, y


def load(path: str | Path, *, seed: int, val_fraction: float = 0.16, test_fraction: float = 0.2,
         max_rows: int | None = None) -> MothData:
    """Read, drop non-finite rows, split (seeded) and scale to [−½, ½] on the training split."""
    x, y = read_table(path)
    if max_rows is not None:
        x, y = x[:max_rows], y[:max_rows]
    finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    dropped = int((~finite).sum())
    x, y = x[finite], y[finite]
    n = len(x)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    if n - n_test - n_val < 2 or n_val < 1 or n_test < 1:
        raise InputError(f"{path} has {n} usable rows (after dropping {dropped} with NaN/inf); too few to split into train/val/test")
    order = numpy_generator(seed, "moth-split").permutation(n)
    test_i, val_i, train_i = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    x_min, x_max = x[train_i].min(axis=0), x[train_i].max(axis=0)
    y_min, y_max = y[train_i].min(axis=0), y[train_i].max(axis=0)

    def scaled(idx: np.ndarray) -> Split:
        sx = (x[idx] - x_min) / np.where(x_max > x_min, x_max - x_min, 1.0) - 0.5
        sy = (y[idx] - y_min) / np.where(y_max > y_min, y_max - y_min, 1.0) - 0.5
        return Split(torch.from_numpy(sx.astype(np.float32)), torch.from_numpy(sy.astype(np.float32)))

    return MothData(scaled(train_i), scaled(val_i), scaled(test_i), x_min, x_max, y_min, y_max, n, dropped)
