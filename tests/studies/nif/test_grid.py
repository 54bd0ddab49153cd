"""Grid detection of user rows, held-out splits (rows / snapshots / last snapshots), step budgets, plateau stop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciprune.errors import InputError
from sciprune.studies.nif.data import FieldData, held_out_rows, on_grid, split
from sciprune.studies.nif.grid import detect_grid, levels
from sciprune.studies.nif.train import Plateau, epochs_for


def table(n_p: int = 3, nx: int = 4, ny: int = 5) -> np.ndarray:
    """``[t | x y | u]`` p-major (t, then x, then y), u distinct per row."""
    T, X, Y = np.meshgrid(np.linspace(0, 1, n_p), np.arange(nx) * 0.1, np.arange(ny) * 0.3 + 2, indexing="ij")
    u = np.arange(T.size, dtype=float).reshape(T.shape)
    return np.stack([T, X, Y, u], axis=-1).reshape(-1, 4)


def test_levels_cluster_within_the_tolerance():
    codes, values = levels(np.array([1.0, 0.0, 1.0 + 1e-9, 0.5, 1e-10]), 1e-6)
    assert codes.tolist() == [2, 0, 2, 1, 0] and values.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffled_grid_is_found_and_put_back_in_p_major_order(seed):
    a = table()
    b = a[np.random.default_rng(seed).permutation(len(a))]
    b[:, 1:3] += np.random.default_rng(seed).uniform(-1e-9, 1e-9, (len(b), 2))  # float noise of a written file
    g = detect_grid(b[:, :1], b[:, 1:3])
    assert not isinstance(g, str)
    assert g.shape == (3, 4, 5)
    assert np.array_equal(b[g.order][:, 3], a[:, 3])  # u lands where the generated p-major layout has it
    assert g.axes[0] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=2e-9)


def test_two_parameter_columns_are_one_snapshot_each_distinct_pair():
    T, NU, X = np.meshgrid([0.0, 1.0, 2.0], [0.1, 0.2], np.arange(7.0), indexing="ij")
    g = detect_grid(np.stack([T.ravel(), NU.ravel()], 1), X.reshape(-1, 1))
    assert not isinstance(g, str) and g.shape == (6, 7)


def test_not_a_grid_says_why():
    a = table()
    missing = detect_grid(a[1:, :1], a[1:, 1:3])
    assert isinstance(missing, str) and "59 rows, but 3 distinct p × 4 × 5 distinct x values = 60" in missing
    dup = a.copy()
    dup[0, 1:3] = dup[1, 1:3]  # one point twice, another missing: the counts still match
    reason = detect_grid(dup[:, :1], dup[:, 1:3])
    assert isinstance(reason, str) and "more than once" in reason
    scattered = np.random.default_rng(0).random((40, 3))
    assert isinstance(detect_grid(scattered[:, :1], scattered[:, 1:]), str)


def test_jitter_beyond_the_tolerance_is_not_a_grid():
    a = table()
    a[5, 1] += 1e-3 * 0.3  # 1e-3 of the x range
    assert isinstance(detect_grid(a[:, :1], a[:, 1:3], rtol=1e-6), str)
    assert not isinstance(detect_grid(a[:, :1], a[:, 1:3], rtol=1e-2), str)


def fdata(a: np.ndarray) -> FieldData:
    return FieldData("t", a[:, :1], a[:, 1:3], a[:, 3:], source="t.npz")


def test_on_grid_reorders_every_column_and_keeps_the_reason_otherwise():
    a = table()
    b = a[np.random.default_rng(3).permutation(len(a))]
    d = on_grid(fdata(b), 1e-6)
    assert d.grid == (3, 4, 5) and np.array_equal(np.hstack([d.p, d.x, d.u]), a) and d.not_grid is None
    s = on_grid(fdata(b[1:]), 1e-6)
    assert s.grid is None and "grid points" in (s.not_grid or "")


@pytest.mark.parametrize("by", ["snapshots", "last_snapshots"])
def test_snapshot_splits_hold_out_whole_snapshots(by):
    a = table(n_p=10)
    d = fdata(a)
    test = held_out_rows(d, 0.2, by, seed=0)
    held = set(np.unique(a[test, 0]).tolist())
    assert len(held) == 2 and len(test) == 2 * 20
    assert not held & set(np.delete(a[:, 0], test).tolist())  # no held-out snapshot has a training row
    if by == "last_snapshots":
        assert held == set(np.unique(a[:, 0])[-2:].tolist())
    sp = split(d, "minmax", 0.2, 0, torch.float64, by)
    assert sp.held_out and sp.test_in.shape[0] == 40 and sp.train_in.shape[0] == 160


def test_row_split_and_validation_rows_are_disjoint_and_seeded():
    d = fdata(table(n_p=10))
    sp = split(d, "minmax", 0.25, 7, torch.float64, "rows", validation_fraction=0.1)
    assert sp.val_in is not None and sp.test_in.shape[0] == 50 and sp.val_in.shape[0] == 15 and sp.train_in.shape[0] == 135
    rows = {tuple(r) for t in (sp.train_in, sp.test_in, sp.val_in) for r in t.tolist()}
    assert len(rows) == 200
    again = split(d, "minmax", 0.25, 7, torch.float64, "rows", validation_fraction=0.1)
    assert torch.equal(again.val_in, sp.val_in)
    with pytest.raises(InputError, match="distinct p"):
        held_out_rows(fdata(table(n_p=1)), 0.2, "snapshots", 0)


def test_epochs_for_a_step_budget():
    assert epochs_for(None, None, 200, 1000, 100) == 200 and epochs_for(7, None, 200, 1000, 100) == 7
    assert epochs_for(None, 3000, 200, 2000, 2000) == 3000        # one batch an epoch: a step is an epoch
    assert epochs_for(None, 3000, 200, 80_000, 2000) == 75         # 40 batches an epoch
    assert epochs_for(None, 100, 200, 1001, 100) == 10             # 11 batches: ceil(100 / 11)


def test_plateau_stops_after_patience_checks_without_improvement():
    errs = iter([1.0, 0.5, 0.499, 0.6, 0.45, 0.3])  # improvements at checks 1, 2, 5 (0.499 is not 1 % better)
    calls = {"n": 0}

    def tfn(model, opt, gen):
        calls["n"] += 1
        return 0.1 * calls["n"]

    pl = Plateau(tfn, lambda m: next(errs), batches_per_epoch=5, check_every=10, patience=2, min_delta=0.01)
    model = torch.nn.Linear(1, 1)
    out = [pl(model, None, None) for _ in range(12)]  # type: ignore[arg-type]
    # checks after epochs 2, 4, 6, 8: 1.0 (best), 0.5 (best), 0.499 (bad 1), 0.6 (bad 2: stop)
    assert calls["n"] == 8 and pl.stopped and pl.steps == 40
    assert out[-1] == {"loss": pytest.approx(0.8), "train_steps": 40}
    pl.reset()
    assert not pl.stopped and pl.steps == 0 and math.isinf(pl.best)
