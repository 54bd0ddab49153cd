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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciprune.core import numpy_generator
from sciprune.errors import InputError
from sciprune.studies.moth.simulate import COLUMNS, VERSION
from sciprune.validate.hdf5 import attribute, dataset, open_hdf5, read

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
    note: str = ""  # an unfinished simulation (see :func:`read_file`)


EXPECT = "the output of sciprune moth simulate"
#: the largest magnitude a column may hold: beyond it the float32 network sees overflowed values
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Table:
    """Raw ``x [n, 10]``, ``y [n, 7]`` (float64) of a simulated file, and a note when it is unfinished."""

    x: np.ndarray
    y: np.ndarray
    note: str = ""


def read_file(path: str | Path) -> Table:
    """The checked contents of a simulated file (see :mod:`sciprune.validate.hdf5` for the checks).

    Only the samples below the attribute ``next_sample`` count: rows of a chunk a killed
    ``simulate`` left half-written are cut off, as ``simulate --resume`` would. A file with
    ``next_sample < samples`` (an unfinished simulation) is used as it is, with a note.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"data file {str(path)!r} does not exist; make one with: sciprune moth simulate --samples N --out {path}")
    with open_hdf5(path, "data file", EXPECT) as f:
        version = attribute(f, "version", "data file", EXPECT, "any")
        if version != VERSION:
            raise InputError(f"data file {str(path)!r} has data version {version!r}; expected {VERSION!r}: re-simulate it with this sciprune")
        names = attribute(f, "columns", "data file", EXPECT, "json")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise InputError(f"data file {str(path)!r}: attribute 'columns' is {names!r}; expected a list of distinct column names")
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise InputError(f"data file {str(path)!r} lacks the columns {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        samples = dataset(f, "samples", "data file", EXPECT, ndim=2, columns=len(names))
        done = attribute(f, "next_sample", "data file", EXPECT, "int")
        wanted = attribute(f, "samples", "data file", EXPECT, "int")
        rows = samples.shape[0]
        if done is not None and "index" in f:
            index = read(dataset(f, "index", "data file", EXPECT, ndim=1, kinds="iu"), "data file", EXPECT)
            if index.shape[0] != rows or np.any(np.diff(index) <= 0):
                raise InputError(f"data file {str(path)!r} is damaged: {rows} rows, {index.shape[0]} sample indices (expected as many, increasing); expected {EXPECT}")
            rows = int(np.searchsorted(index, done))  # rows past next_sample: a chunk left half-written
        raw = read(samples, "data file", EXPECT, rows)
    note = ""
    if done is not None and wanted is not None and done < wanted:
        note = (f"data file {str(path)!r} is an unfinished simulation ({done} of {wanted} samples); training on its "
                f"{rows} rows (finish it with: sciprune moth simulate --resume --samples {wanted} --out {path})")
    col = {n: raw[:, names.index(n)] for n in COLUMNS}
    big = [n for n in COLUMNS if np.any(np.abs(col[n][np.isfinite(col[n])]) > FLOAT32_MAX)]
    if big:
        worst = float(np.nanmax(np.abs(np.where(np.isfinite(col[big[0]]), col[big[0]], np.nan))))
        raise InputError(f"data file {str(path)!r}: column {big[0]!r} holds {worst:.3g}, beyond the float32 range "
                         f"(±{FLOAT32_MAX:.3g}) the networks compute in; expected {EXPECT}")
    x = np.stack([col[n] for n in INPUTS], axis=1)
    fx, fy = col["F"] * np.cos(col["alpha"]), col["F"] * np.sin(col["alpha"])
    y = np.stack([fx, fy, col["tau0"], col["xd_f"], col["yd_f"], col["phid_f"], col["thetad_f"]], axis=1)
    return Table(x, y, note)


def check_data(cfg: Any) -> None:
    """The study's ``check``: a given data file (``cfg.data.path``) is read and checked before the results
    folder is created (an unfinished simulation passes here; its note comes with the run)."""
    if cfg.data.path is not None:
        read_file(cfg.data.path)


def failed_count(path: str | Path) -> int:
    """Samples whose integration failed (dataset ``failed``; 0 when the file has none)."""
    with open_hdf5(path, "data file", EXPECT) as f:
        return dataset(f, "failed", "data file", EXPECT, ndim=1, kinds="iu").shape[0] if "failed" in f else 0


def read_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(X [n, 10], Y [n, 7])`` (float64) from a simulated file, after checking it."""
    table = read_file(path)
    return table.x, table.y


def load(path: str | Path, *, seed: int, val_fraction: float = 0.16, test_fraction: float = 0.2,
         max_rows: int | None = None) -> MothData:
    """Read, drop non-finite rows, split (seeded) and scale to [−½, ½] on the training split."""
    table = read_file(path)
    x, y = table.x, table.y
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

    return MothData(scaled(train_i), scaled(val_i), scaled(test_i), x_min, x_max, y_min, y_max, n, dropped, table.note)
