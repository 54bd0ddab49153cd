"""The bulk (Dörfler) pruning criterion: marking, indicator, caching, the default mode; the RQMC error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sciprune.studies.amr.marking import dorfler, element_sizes, indicator


def test_dorfler_marks_the_smallest_set_reaching_the_fraction() -> None:
    eta2 = np.array([1.0, 8.0, 0.0, 4.0, 2.0, 1.0])  # total 16
    assert dorfler(eta2, 0.5).tolist() == [False, True, False, False, False, False]  # 8 >= 8
    assert dorfler(eta2, 0.6).tolist() == [False, True, False, True, False, False]  # 12 >= 9.6
    assert dorfler(eta2, 0.9).tolist() == [True, True, False, True, True, True]  # ties with the last one go too
    assert not dorfler(eta2, 1.0)[2]  # a zero indicator is never marked
    assert not dorfler(np.zeros(4), 0.5).any() and dorfler(np.zeros(0), 0.5).shape == (0,)


def test_marking_is_invariant_to_a_common_factor() -> None:
    rng = np.random.default_rng(0)
    eta2 = rng.random(500) ** 4
    for fraction in (0.3, 0.5, 0.8):
        np.testing.assert_array_equal(dorfler(eta2, fraction), dorfler(1e3 * eta2, fraction))


def test_indicators_scale_with_the_element() -> None:
    corners = np.array([[[0, 0], [1, 0], [0, 1], [1, 1]], [[0, 0], [0.5, 0], [0, 0.5], [0.5, 0.5]]], dtype=float)
    h, vol = element_sizes(corners)
    assert h.tolist() == [1.0, 0.5] and vol.tolist() == [1.0, 0.25]
    ranks = np.array([[5, 3, 2], [5, 3, 2]])
    np.testing.assert_allclose(indicator(ranks, corners, "excess"), [2.0, 2.0 / 16])  # (5 - 3) h^2 |E|
    np.testing.assert_allclose(indicator(ranks, corners, "kept"), [10.0, 10.0 / 16])
    np.testing.assert_allclose(indicator(ranks, corners, "residual", np.array([2.0, 2.0])), [2.0, 0.5])


mfem = pytest.importorskip("mfem.ser")


@pytest.mark.mfem
def test_bulk_is_the_default_mode_and_examines_each_leaf_once(tmp_path: Path) -> None:
    from sciprune.studies.amr.config import AMRConfig
    from tests.studies.amr.conftest import run_study

    assert AMRConfig().mode == "bulk"
    cfg, rows = run_study(tmp_path, inr="corner", max_dofs=700, rmse_points=4096, baseline_max_dofs=20000)
    params = json.loads((tmp_path / "parameters.json").read_text())
    its = params["iterations"]
    assert params["limits_used"] == {"max_it": 24, "max_dofs": 700, "id_samples": 32} and params["stop_reason"] == "max_dofs"
    assert [r["kind"] for r in its[:3]] == ["uniform", "uniform", "bulk"]
    assert its[2]["examined"] == 256  # every leaf once ...
    for prev, cur in zip(its[2:], its[3:]):  # ... then only the children of what was refined
        assert cur["examined"] == 4 * prev["refined"]
    assert all(r["rmse"] < p["rmse"] for p, r in zip(its, its[1:]))
    from sciprune.studies.amr.study import STUDY

    s = STUDY.summarize(cfg, rows, tmp_path)
    assert s["dof_saving_true"] > 1.5 and 0 < s["dof_saving_true_se"] < 0.2 * s["dof_saving_true"]


@pytest.mark.mfem
def test_true_error_standard_error_covers_the_seed_to_seed_spread() -> None:
    from sciprune.studies.amr.builtin import SPECS
    from sciprune.studies.amr.evaluate import TrueError, VertexValues
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.meshing import AMRMesh, load_mesh

    inr = resolve_inr("corner")
    assert SPECS["corner"]
    amr = AMRMesh(load_mesh("square:8"))
    amr.refine(np.ones(amr.ne, bool), 0)
    amr.set_values(VertexValues(inr, lambda x: x, 0)(amr))
    est = [TrueError(amr, inr, lambda x: x, 0, seed=s, n_points=1 << 12).estimate(amr) for s in range(5)]
    rmse = np.array([e[0] for e in est])
    se = np.array([e[2] for e in est])
    assert np.all(se > 0) and np.all(se < 0.15 * rmse)
    dense = TrueError(amr, inr, lambda x: x, 0, seed=99, n_points=1 << 16).estimate(amr)
    assert np.all(np.abs(rmse - dense[0]) < 5 * np.sqrt(se**2 + dense[2] ** 2))  # honest error bars
    assert rmse.std(ddof=1) < 3 * se.mean()


def test_a_safetensors_file_whose_header_length_starts_with_0x80_is_not_a_torch_pickle(tmp_path: Path) -> None:
    from sciprune.studies.amr.legacy import is_torch_file

    path = tmp_path / "inr.safetensors"
    header = b'{"__metadata__":{"a":"' + b"x" * (0x480 - 25) + b'"}}'
    assert len(header) == 0x480
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert path.read_bytes()[:1] == b"\x80" and not is_torch_file(path)
    pickle_path = tmp_path / "old.ckpt"
    pickle_path.write_bytes(b"\x80\x02}q\x00.")
    assert is_torch_file(pickle_path)


@pytest.mark.mfem
def test_bulk_transfers_to_a_wider_inr_where_the_seed_criterion_never_fires(tmp_path: Path) -> None:
    from sciprune.studies.amr.inr import DATA
    from sciprune.studies.amr.study import STUDY
    from tests.studies.amr.conftest import run_study

    inr = str(DATA / "transfer" / "corner_w64_d4.safetensors")  # P_E <= 0.18 on every element: P = 0.2 never fires
    small = dict(rmse_points=16384, baseline_max_dofs=80000)
    cfg, rows = run_study(tmp_path / "seed", inr=inr, mode="pruning", **small)
    assert STUDY.summarize(cfg, rows, tmp_path / "seed")["dofs"] == 289  # the uniform phase only
    cfg, rows = run_study(tmp_path / "bulk", inr=inr, max_dofs=1500, **small)
    s = STUDY.summarize(cfg, rows, tmp_path / "bulk")
    assert s["dof_saving_true"] - 2 * s["dof_saving_true_se"] > 3.0
