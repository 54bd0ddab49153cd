"""`sciprune demo`: every study's demo preset, one combined report (presets shrunk for speed)."""

import pytest

import sciprune.runner.demo as demo
from sciprune.runner.config import apply_overrides, load_preset
from tests.runner.helpers import cli

SMALL = {
    "classify": ["repeats=1", "model.hidden=[16]", "train.epochs=2", "prune.sparsities=[0.0, 0.5]",
                 "prune.retrain_epochs=0", "prune.id_samples=50", "timing_batch=64", "prune.heatmap_sparsity=0.5"],
    "amr": ["max_it=3", "rmse_points=1024", "baseline_max_dofs=2000"],
    "flows": ["nets=1", "prune.sparsities=[0.5]", "densities.train.epochs=1", "classifiers.train.epochs=1",
              "analysis.hessian=false", "densities.n_train=256", "classifiers.n_train=128"],
    "nif": ["train.epochs=20", "prune.sparsities=[0.5]", "prune.retrain_epochs=2", "prune.id_samples=200"],
    "moth": ["members=2", "data.samples=600", "schedule=[0.5, 0.9]", "model.hidden=[8]", "train.check_every=10",
             "train.window=20", "train.max_batches_dense=60", "train.max_batches_stage=30", "train.val_rows=100"],
    "prune": ["train.epochs=2", "sparsities=[0.5]", "id_samples=64", "timing_batch=64"],
}


@pytest.mark.mfem
def test_demo_runs_every_study_into_one_report(capsys, monkeypatch, tmp_path):
    pytest.importorskip("mfem.ser")
    monkeypatch.setattr(demo, "load_preset", lambda name, preset: apply_overrides(load_preset(name, preset), SMALL[name]))
    code, out, err = cli(capsys, monkeypatch, "demo", "--out", str(tmp_path / "demo"), "--quiet")
    assert code == 0, err
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "Classification: weight vs unit vs ID pruning" in page and "PruningAMR" in page
    assert page.count("data:image/png;base64,") >= 4
    for study in ("classify", "amr"):
        assert (tmp_path / "demo" / study / "report.html").is_file()
    # running it again reuses the finished runs instead of refusing the directory
    code, _, err = cli(capsys, monkeypatch, "demo", "--out", str(tmp_path / "demo"), "--quiet")
    assert code == 0, err
