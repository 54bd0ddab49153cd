"""Uniform refinement of a square / cube computed as a regular grid: equal to MFEM's levels where both
exist, and it lets the baseline reach the run's error so the summary states the saving itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mfem.ser")
pytestmark = pytest.mark.mfem

from sciprune.studies.amr.config import AMRConfig  # noqa: E402
from sciprune.studies.amr.driver import make_lift, run_uniform_baseline  # noqa: E402
from sciprune.studies.amr.evaluate import TrueError, VertexValues  # noqa: E402
from sciprune.studies.amr.inr import resolve_inr  # noqa: E402
from sciprune.studies.amr.meshing import AMRMesh, load_mesh  # noqa: E402
from sciprune.studies.amr.study import summarize  # noqa: E402


@pytest.mark.parametrize("inr_name, spec, levels", [("corner", "square:4", 4), ("front", "square:3", 3),
                                                     ("spacetime", "cube:2", 3)])
def test_grid_levels_equal_mfem_uniform_levels(inr_name: str, spec: str, levels: int) -> None:
    inr = resolve_inr(inr_name)
    amr = AMRMesh(load_mesh(spec))
    lift = make_lift(inr, amr.dim, 1.0, spec)
    values = VertexValues(inr, lift, 0)
    error = TrueError(amr, inr, lift, 0, seed=3, n_points=4096)
    n = int(spec.split(":")[1])
    for it in range(levels):
        amr.refine(np.ones(amr.ne, dtype=bool), it)
        amr.set_values(values(amr))
        n *= 2
        mfem_rmse, mfem_max, mfem_se = error.estimate(amr)
        grid_rmse, grid_max, grid_se = error.grid_estimate(inr, lift, 0, n)
        assert amr.dofs == (n + 1) ** amr.dim
        np.testing.assert_allclose([grid_rmse, grid_max, grid_se], [mfem_rmse, mfem_max, mfem_se], rtol=1e-9, atol=0)


def test_the_baseline_goes_on_as_a_grid_and_the_summary_states_the_saving() -> None:
    inr = resolve_inr("corner")
    cfg = AMRConfig(inr="corner", rmse_points=4096, baseline_max_dofs=400)  # MFEM stops at 289 DOFs
    amr = AMRMesh(load_mesh("square:4"))
    lift = make_lift(inr, 2, 1.0, "square:4")
    error = TrueError(amr, inr, lift, 0, seed=cfg.seed, n_points=cfg.rmse_points)
    r32, r64 = (error.grid_estimate(inr, lift, 0, n)[0] for n in (32, 64))
    target = (r32 * r64) ** 0.5  # between the 1 089- and the 4 225-DOF levels
    records = run_uniform_baseline(cfg, inr, target)
    assert [(r.kind, r.dofs) for r in records] == [("uniform", 81), ("uniform", 289), ("grid", 1089), ("grid", 4225)]
    assert [r.it for r in records] == [0, 1, 2, 3] and [r.max_level for r in records] == [1, 2, 3, 4]
    assert [r.rmse for r in records[2:]] == [r32, r64]
    # a run finer than every MFEM level gets a saving, not a bound
    rows = [{"role": "run", "it": 0, "dofs": 1000, "true_dofs": 800, "elements": 700, "rmse": target,
             "rmse_se": 0.0, "max_error": 0.1}]
    rows += [{"role": "baseline", "dofs": r.dofs, "rmse": r.rmse} for r in records]
    s = summarize(cfg, rows, Path("/nonexistent"))
    assert "dof_saving_true_at_least" not in s
    assert 1089 / 800 < s["dof_saving_true"] < 4225 / 800
