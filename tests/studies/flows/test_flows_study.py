"""`sciprune flows` end to end on a tiny config: artefacts, resume after a kill, failures, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sciprune.studies.flows.protocol as protocol
from sciprune.files import read_csv
from tests.runner.helpers import assert_resume_after_kill, cli

TINY = [
    "--preset", "demo",
    "--set", "densities.n_train=256", "--set", "densities.n_test=128", "--set", "densities.train.epochs=2",
    "--set", "classifiers.n_train=256", "--set", "classifiers.n_test=128", "--set", "classifiers.train.epochs=4",
    "--set", "prune.sparsities=[0.5, 0.9]", "--set", "prune.retrain_epochs=1", "--set", "prune.id_samples=64",
    "--set", "analysis.grid=12", "--set", "analysis.samples=50", "--set", "analysis.mode_samples=200",
    "--set", "analysis.hessian_points=32", "--set", "analysis.hessian_iters=2", "--set", "analysis.hessian_probes=1",
    "--set", "analysis.timing_repeats=1",
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("flows") / "run"

    class Cap:
        def readouterr(self):
            return "", ""

    code, _, err = cli(Cap(), mp, "flows", "--out", str(out), "--quiet", *TINY)  # type: ignore[arg-type]
    mp.undo()
    assert code == 0, err
    return out


def test_rows_arrays_plots_and_report(finished):
    rows = read_csv(finished / "metrics.csv")
    assert {r["method"] for r in rows} == {"dense", "wt", "ft", "id"}
    assert all(r["status"] == "ok" for r in rows)
    assert not any("ms" in k.split("_") or "time" in k for k in rows[0]) and (finished / "timing.csv").is_file()
    by = {(r["task"], r["method"], r["seed"], r["sparsity"]): r for r in rows}
    for task in ("gaussians", "moons"):
        dense = by[(task, "dense", 0, 0.0)]
        for s in (0.5, 0.9):
            wt, ft, idp = by[(task, "wt", 0, s)], by[(task, "ft", 0, s)], by[(task, "id", 0, s)]
            assert wt["achieved_sparsity"] == pytest.approx(s, abs=0.02)
            assert ft["achieved_sparsity"] >= s - 1e-9 and idp["achieved_sparsity"] >= s - 1e-9
            assert ft["neurons"] == idp["neurons"]  # FT and ID keep the same widths
            assert idp["params_total"] < dense["params_total"] == wt["params_total"]
            assert ft["flops"] < dense["flops"] and ft["flops_nfe"] == ft["flops"] * ft["nfe"]
    nll = [r for r in rows if r["kind"] == "density"]
    assert all(len(str(r["nll_reps"]).split(";")) == 2 and np.isfinite(r["nll"]) for r in nll)
    with np.load(finished / "results.npz") as z:
        assert z["density-gaussians/loss"].shape == (2, 2, 2, 3)  # [nets, ratios, reps, methods]
        assert z["classifier-moons/metric"].shape == (2, 2, 1, 3)
        assert np.isfinite(z["density-gaussians/loss"]).all()
    summary = json.loads((finished / "summary.json").read_text())
    g = summary["tasks"]["density-gaussians"]
    assert set(g["methods"]) == {"wt", "ft", "id"} and "hessian" in g and "modes_at_2std" in g
    for name in ("nll_vs_ratio", "accuracy_vs_ratio", "gaussians_density", "gaussians_samples", "gaussians_modes",
                 "moons_boundary", "cnf_cost_vs_ratio"):
        assert (finished / "plots" / f"{name}.png").is_file()
    page = (finished / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 8 and "Hessian" in page and "timing.csv" in page


def test_killed_run_resumes_to_the_same_metrics(capsys, monkeypatch, tmp_path, finished):
    """Killed inside the second network (12th call of protocol.evaluate), resumed: same metrics.csv."""
    assert_resume_after_kill(capsys, monkeypatch, module=protocol, name="evaluate", at=12,
                             command=["flows", *TINY], out=tmp_path / "killed", finished=finished)


ONE = ["--set", "classifiers.names=[]", "--set", "nets=2", "--set", "analysis.hessian=false",
       "--set", "prune.methods=[wt, ft]"]


def _without(args: list[str], *fields: str) -> list[str]:
    """``args`` without the pairs ``--set field=...`` of ``fields``."""
    out: list[str] = []
    for a in args:
        if out and out[-1] == "--set" and a.split("=")[0] in fields:
            out.pop()
        else:
            out.append(a)
    return out


# TINY without what ONE does not read (no ID method, no Hessian): given, it is refused (it would do nothing)
NO_ID = _without(TINY, "prune.id_samples", *(f"analysis.hessian_{k}" for k in ("points", "iters", "probes", "steps")))


def test_divergence_and_solver_budget_are_recorded_and_the_run_goes_on(capsys, monkeypatch, tmp_path):
    real = protocol.make_train_fn
    calls = {"n": 0}

    def nan_once(task, data):
        fn = real(task, data)

        def epoch(model, optimizer, generator):
            calls["n"] += 1
            if calls["n"] == 4:  # network 0: 2 dense epochs, WT stage 0, then WT stage 1
                raise protocol.Diverged("training loss became nan")
            return fn(model, optimizer, generator)

        return epoch

    monkeypatch.setattr(protocol, "make_train_fn", nan_once)
    out = tmp_path / "nan"
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", *NO_ID, *ONE)
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    bad = [r for r in rows if r["status"] != "ok"]
    assert [(r["method"], r["seed"], r["stage"], r["status"]) for r in bad] == [("wt", 0, 1, "diverged")]
    assert {(r["method"], r["seed"]) for r in rows if r["status"] == "ok"} >= {("ft", 0), ("wt", 1), ("ft", 1)}
    assert json.loads((out / "summary.json").read_text())["tasks"]["density-gaussians"]["failed_stages"]

    out = tmp_path / "budget"  # dopri5 at a tolerance it cannot meet in 30 evaluations
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", *NO_ID, *ONE,
                       "--set", "densities.solver={method: dopri5, atol: 1.0e-9, rtol: 1.0e-9, max_nfe: 30}")
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    assert [(r["method"], r["status"], r["failed_nfe"]) for r in rows] == [("dense", "failed", 31)] * 2


def test_a_concatsquash_cnf_runs_with_wt_and_ft(capsys, monkeypatch, tmp_path):
    out = tmp_path / "cs"
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", *NO_ID, *ONE,
                       "--set", "nets=1", "--set", "densities.field.kind=concatsquash")
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    assert all(r["status"] == "ok" for r in rows) and len(rows) == 5
    ft = [r for r in rows if r["method"] == "ft"]
    assert ft[-1]["params_total"] == rows[0]["params_total"] and ft[-1]["flops"] < rows[0]["flops"]


@pytest.mark.parametrize("override, message", [
    ("densities.field.kind=concat", "prune method 'id' needs autonomous fields; densities.field.kind is 'concat'"),
    ("densities.names=[checkerboard]", "unknown density 'checkerboard'; expected one of gaussians, gaussians_spiral, spirals2"),
    ("classifiers.names=[rings]", "unknown classification set 'rings'; expected one of moons, spirals, circles"),
    ("densities.solver.method=rk45", "unknown ODE solver; expected one of dopri5"),
    ("densities.solver.atol=0", "solver tolerances must be > 0"),
    ("classifiers.solver.rtol=-1e-4", "solver tolerances must be > 0"),
])
def test_bad_input_is_one_line(capsys, monkeypatch, tmp_path, override, message):
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(tmp_path / "bad"), "--quiet", "--preset", "demo",
                       "--set", override)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "metrics.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(capsys, monkeypatch, tmp_path):
    # the study no longer refuses --device cuda; the runner's availability check answers in one line
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(tmp_path / "gpu"), "--quiet", "--preset", "demo",
                       "--device", "cuda")
    assert code == 2 and "no CUDA device is available" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "gpu" / "metrics.csv").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_follows_the_device_and_matches_the_cpu_rows(capsys, monkeypatch, tmp_path, finished):
    out = tmp_path / "gpu"
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", "--device", "cuda", *TINY)
    assert code == 0, err
    cpu, gpu = read_csv(finished / "metrics.csv"), read_csv(out / "metrics.csv")
    assert [(r["task"], r["method"], r["stage"]) for r in gpu] == [(r["task"], r["method"], r["stage"]) for r in cpu]
    for a, b in zip(cpu, gpu):  # same draws (CPU generators); float32 arithmetic differs in the last bits
        assert a["params_total"] == b["params_total"]
        for key in ("nll", "accuracy"):
            if a["status"] == b["status"] == "ok" and a.get(key) not in (None, ""):
                assert float(b[key]) == pytest.approx(float(a[key]), rel=0.05, abs=2.0)
    assert {r["device"] for r in read_csv(out / "timing.csv")} == {"cuda"}


def test_two_workers_give_the_same_metrics(capsys, monkeypatch, tmp_path, finished):
    """Each (task, network) is one shard (``map_shards``): on two local dask workers the rows are the same bytes."""
    out = tmp_path / "w2"
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", "--workers", "2", *TINY)
    assert code == 0, err
    assert (out / "metrics.csv").read_bytes() == (finished / "metrics.csv").read_bytes()


def test_a_resumed_run_never_recomputes_a_finished_network(capsys, monkeypatch, tmp_path, finished):
    import shutil

    out = tmp_path / "again"
    shutil.copytree(finished, out)

    def refuse(*a, **k):
        raise AssertionError("a finished network was computed again")

    monkeypatch.setattr(protocol, "train_dense", refuse)
    code, _, err = cli(capsys, monkeypatch, "flows", "--out", str(out), "--quiet", "--resume", *TINY)
    assert code == 0, err
    assert (out / "metrics.csv").read_bytes() == (finished / "metrics.csv").read_bytes()
