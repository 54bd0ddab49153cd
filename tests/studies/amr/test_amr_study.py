"""Whole runs: the three modes in 2-D and 3-D, every output, determinism, resume, hos, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

mfem = pytest.importorskip("mfem.ser")
pytestmark = pytest.mark.mfem

from sciprune.studies.amr.config import AMRConfig  # noqa: E402
from sciprune.studies.amr.examine import CHUNK  # noqa: E402
from sciprune.studies.amr.study import STUDY, equal_error_dofs  # noqa: E402
from tests.studies.amr.conftest import run_study  # noqa: E402

RECORD_KEYS = {"it", "dofs", "true_dofs", "elements", "rmse", "rmse_se", "max_error", "seconds"}
SMALL = dict(rmse_points=4096, baseline_max_dofs=5000)


def _numbers(out: Path) -> list[dict[str, object]]:
    params = json.loads((out / "parameters.json").read_text())
    drop = {"seconds", "seconds_examine", "seconds_error"}
    return [{k: v for k, v in r.items() if k not in drop} for r in params["iterations"] + params["baseline"]]


def test_pruning_run_writes_every_output(tmp_path: Path) -> None:
    cfg, rows = run_study(tmp_path, inr="corner", mode="pruning", paraview=True, **SMALL)
    params = json.loads((tmp_path / "parameters.json").read_text())
    for key in [*AMRConfig.model_fields, "workers", "device"]:
        assert key in params or key == "memory_limit"  # saved only when set (older folders resume)
    assert params["uniform_baseline"] is True and params["baseline"] and params["device"] == "cpu"
    assert params["limits_used"] == {"max_it": 4, "max_dofs": 5000, "id_samples": 256}  # the seed's defaults
    its = params["iterations"]
    assert [r["it"] for r in its] == list(range(len(its))) and len(its) == 4
    assert all(RECORD_KEYS <= set(r) for r in its)
    assert [r["dofs"] for r in its[:2]] == [81, 289]  # two uniform refinements of the 4x4 square
    assert its[-1]["dofs"] > its[-1]["true_dofs"]  # hanging vertices appeared
    assert its[-1]["rmse"] < its[1]["rmse"]
    for it in range(len(its)):
        mesh = mfem.Mesh(str(tmp_path / f"it_{it}.mesh"), 1, 1)
        gf = mfem.GridFunction(mesh, str(tmp_path / f"it_{it}.gf"))
        assert mesh.GetNE() == its[it]["elements"] and gf.Size() == its[it]["dofs"]
    pvd = (tmp_path / "paraview" / "amr" / "amr.pvd").read_text()
    assert pvd.count("<DataSet") == len(its)  # one ParaView cycle per iteration
    run_rows = [r for r in rows if r["role"] == "run"]
    assert len(run_rows) == len(its)
    for row in run_rows:
        assert {"method", "seed", "sparsity", "params_nnz"} <= set(row) and row["method"] == "pruning"
        assert row["params_nnz"] == 3297
    assert run_rows[0]["sparsity"] is None and 0 < run_rows[2]["sparsity"] < 1
    assert any(r["role"] == "baseline" and r["method"] == "uniform" for r in rows)
    assert "seconds" not in rows[0] and rows[0]["rmse_se"] > 0  # timings live in timing.csv
    timing = (tmp_path / "timing.csv").read_text().splitlines()
    assert timing[0] == "role,it,seconds,seconds_examine,seconds_error" and len(timing) == 1 + len(rows)
    summary = STUDY.summarize(cfg, rows, tmp_path)
    assert summary["seconds_total"] > 0 and summary["dof_saving_true_se"] >= 0
    assert summary["dofs"] == its[-1]["dofs"] and summary["dof_saving_true"] > 1
    plots = STUDY.plot(cfg, rows, tmp_path)
    assert {p.name for p in plots} == {"error_vs_dofs.png", "final_mesh.png"}
    assert all(p.stat().st_size > 10_000 for p in plots)
    assert "PruningAMR" in STUDY.describe(cfg, rows, tmp_path)  # type: ignore[misc]


def test_refinement_concentrates_in_the_corner(tmp_path: Path) -> None:
    run_study(tmp_path, inr="corner", mode="pruning", uniform_baseline=False, rmse_points=4096)
    mesh = mfem.Mesh(str(tmp_path / "it_3.mesh"), 1, 1)
    V = np.array(mesh.GetVertexArray())
    sizes = []
    for e in range(mesh.GetNE()):
        c = V[mesh.GetElementVertices(e)]
        sizes.append(((c.max(0) - c.min(0))[0], c.mean(0)))
    fine = [centre for size, centre in sizes if size < 1 / 16]
    near = [np.linalg.norm(c) < 0.35 for c in fine]
    assert len(fine) >= 8 and np.mean(near) >= 0.75  # mostly in the corner (a few where the ReLU net kinks)
    assert min(np.linalg.norm(c) for c in fine) < 0.05  # the corner element itself was split


@pytest.mark.parametrize("mode", ["basic", "uniform"])
def test_other_modes(tmp_path: Path, mode: str) -> None:
    small = SMALL if mode != "uniform" else {"rmse_points": 4096}  # uniform mode is its own baseline
    _, rows = run_study(tmp_path, inr="corner", mode=mode, max_it=3, **small)
    its = json.loads((tmp_path / "parameters.json").read_text())["iterations"]
    if mode == "uniform":
        assert [r["dofs"] for r in its] == [81, 289, 1089]
        assert all(r["dofs"] == r["true_dofs"] for r in its)
        assert not any(r["role"] == "baseline" for r in rows)
    else:
        assert its[2]["examined"] == 256 and 0 < its[2]["refined"] < 256
        assert all(r["sparsity"] is None for r in rows)


def test_three_d_space_time_and_time_slice(tmp_path: Path) -> None:
    _, rows = run_study(tmp_path / "3d", inr="spacetime", max_it=3, uniform_baseline=False, rmse_points=8192)
    its = json.loads((tmp_path / "3d" / "parameters.json").read_text())["iterations"]
    assert [r["dofs"] for r in its[:2]] == [125, 729]  # cube:2 refined twice
    assert its[2]["dofs"] > its[2]["true_dofs"] and its[2]["rmse"] < its[1]["rmse"]
    run_study(tmp_path / "slice", inr="spacetime", mesh="square", time_slice=0.25, max_it=3,
              uniform_baseline=False, rmse_points=4096)
    sliced = json.loads((tmp_path / "slice" / "parameters.json").read_text())
    assert sliced["iterations"][0]["dofs"] == 81 and sliced["time_slice"] == 0.25


def test_same_numbers_and_meshes_with_1_2_8_workers(tmp_path: Path) -> None:
    runs = {w: run_study(tmp_path / f"w{w}", workers=w, inr="corner", mode="pruning", max_it=5,
                         prop_threshold=0.15, **SMALL) for w in (1, 2, 8)}
    assert set(runs) == {1, 2, 8}
    ref = _numbers(tmp_path / "w1")
    # not a vacuous comparison: some pruning iteration examined more than one chunk of elements (so the
    # workers split it) and refined some of them
    assert any(r["kind"] == "pruning" and r["examined"] > CHUNK and 0 < r["refined"] for r in ref), ref
    for w in (2, 8):
        assert _numbers(tmp_path / f"w{w}") == ref
        for it in range(len(ref)):
            a = tmp_path / "w1" / f"it_{it}.mesh"
            if a.exists():
                assert a.read_bytes() == (tmp_path / f"w{w}" / f"it_{it}.mesh").read_bytes()


def test_resume_reuses_a_finished_run_and_reruns_a_killed_one_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sciprune.studies.amr import driver
    from sciprune.studies.base import RunContext

    cfg, rows = run_study(tmp_path, inr="corner", max_it=4, max_dofs=600, **SMALL)
    metrics = (tmp_path / "metrics.csv").read_bytes()
    with monkeypatch.context() as m:  # a finished run is recognised and not run again
        m.setattr(driver, "run_amr", lambda *a, **k: pytest.fail("a finished run was run again"))
        STUDY.run(cfg, RunContext(out=tmp_path, resume=True, quiet=True))
    assert (tmp_path / "metrics.csv").read_bytes() == metrics and (tmp_path / "timing.csv").is_file()
    (tmp_path / "parameters.json").unlink()  # killed before the end: run again, same bytes
    (tmp_path / "metrics.csv").write_text("method\n")
    STUDY.run(cfg, RunContext(out=tmp_path, resume=True, quiet=True))
    assert (tmp_path / "metrics.csv").read_bytes() == metrics


def test_a_dask_scheduler_is_refused_in_one_line(tmp_path: Path) -> None:
    from sciprune.errors import InputError
    from sciprune.studies.base import RunContext

    with pytest.raises(InputError, match="--scheduler tcp://x:1. Drop --scheduler$"):
        STUDY.run(AMRConfig(), RunContext(out=tmp_path, scheduler="tcp://x:1"))


def test_equal_error_dofs_interpolates_log_log() -> None:
    base = [(100.0, 0.1), (400.0, 0.05), (1600.0, 0.025)]
    assert equal_error_dofs(base, 0.05) == pytest.approx(400.0)
    assert equal_error_dofs(base, 0.0707106781) == pytest.approx(200.0, rel=1e-6)
    assert equal_error_dofs(base, 0.2) == 100.0
    assert equal_error_dofs(base, 0.01) is None


def test_hos_reproduces_the_measured_reference_values(tmp_path: Path, hos_path: Path) -> None:
    # spec §0/§6: true RMSE of uniform refinement 0.0598 @ 1089 and 0.0293 @ 4225 DOFs (65 536 random
    # points); the fixed PruningAMR with defaults ends at 316-328 DOFs, true RMSE ~0.059
    run_study(tmp_path / "u", inr="hos", mode="uniform", rmse_points=65536)
    u = json.loads((tmp_path / "u" / "parameters.json").read_text())["iterations"]
    assert [r["dofs"] for r in u] == [81, 289, 1089, 4225]
    assert u[2]["rmse"] == pytest.approx(0.0598, rel=0.03) and u[3]["rmse"] == pytest.approx(0.0293, rel=0.03)
    run_study(tmp_path / "p", inr="hos", mode="pruning", rmse_points=65536, uniform_baseline=False)
    p = json.loads((tmp_path / "p" / "parameters.json").read_text())["iterations"]
    assert [r["dofs"] for r in p[:2]] == [81, 289]
    assert 310 <= p[-1]["dofs"] <= 340 and p[-1]["rmse"] == pytest.approx(0.0592, rel=0.05)


@pytest.mark.parametrize("mode", ["pruning", "bulk"])
def test_a_linear_half_of_the_domain_is_never_refined(tmp_path: Path, mode: str) -> None:
    from sciprune.studies.amr.driver import run_amr
    from tests.studies.amr.test_amr_flags import kinked_inr

    cfg = AMRConfig(mesh="square:4", mode=mode, num_uniform_ref=0, max_it=3, rmse_points=1024, uniform_baseline=False)
    res = run_amr(cfg, kinked_inr(), out=tmp_path)
    assert res.iterations[0].examined == 16 and res.iterations[0].refined > 0
    mesh = mfem.Mesh(str(tmp_path / f"it_{len(res.iterations) - 1}.mesh"), 1, 1)
    V = np.array(mesh.GetVertexArray())
    for e in range(mesh.GetNE()):
        c = V[mesh.GetElementVertices(e)]
        if c[:, 0].max() <= 0.5:  # the affine half keeps its initial 1/4 elements
            assert c[:, 0].max() - c[:, 0].min() == pytest.approx(0.25)


@pytest.mark.parametrize("mode", ["basic", "uniform"])
def test_other_modes_in_3d(tmp_path: Path, mode: str) -> None:
    run_study(tmp_path, inr="spacetime", mode=mode, max_it=3, rmse_points=4096, uniform_baseline=False)
    its = json.loads((tmp_path / "parameters.json").read_text())["iterations"]
    assert [r["dofs"] for r in its[:2]] == [125, 729]
    if mode == "uniform":
        assert its[2]["dofs"] == 17**3
    else:
        assert its[2]["examined"] == 512 and 0 < its[2]["refined"] < 512


def test_a_run_finer_than_every_uniform_level_reports_a_lower_bound(tmp_path: Path) -> None:
    base = [{"role": "baseline", "dofs": d, "rmse": r} for d, r in ((100, 0.1), (400, 0.05))]
    run = [{"role": "run", "dofs": 300, "true_dofs": 200, "elements": 250, "rmse": 0.01, "rmse_se": 0.001, "max_error": 0.1}]
    s = STUDY.summarize(AMRConfig(), base + run, tmp_path)
    assert s["dof_saving_true"] is None and s["dof_saving_true_at_least"] == pytest.approx(2.0)
    run[0]["rmse"] = 0.07
    s = STUDY.summarize(AMRConfig(), base + run, tmp_path)
    assert "dof_saving_true_at_least" not in s and 1.0 < s["dof_saving_true"] < 2.0 and s["dof_saving_true_se"] > 0
