"""``sciprune nif`` end to end on tiny configs: results directory, compaction, resume, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sciprune.files import read_csv
from sciprune.studies.nif import protocol
from tests.runner.helpers import assert_resume_after_kill, cli

TINY = ["--preset", "demo", "--set", "train.epochs=30", "--set", "prune.sparsities=[0.25, 0.5]",
        "--set", "prune.retrain_epochs=2", "--set", "prune.id_samples=300"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("nif") / "run"
    mp = pytest.MonkeyPatch()
    cap = _Cap()
    code, _, err = cli(cap, mp, "nif", "--out", str(out), "--quiet", *TINY)
    mp.undo()
    assert code == 0, err
    return out


class _Cap:
    """A stand-in for capsys in a module fixture (the CLI output is not inspected here)."""

    def readouterr(self):
        return "", ""


def test_results_directory(finished):
    for name in ("config.yaml", "metrics.csv", "summary.json", "report.html", "checkpoints/dense.safetensors",
                 "plots/error_vs_sparsity.png", "plots/error_vs_storage.png", "plots/reconstructions.png"):
        assert (finished / name).is_file(), name
    rows = read_csv(finished / "metrics.csv")
    keys = {(r["method"], r["variant"]) for r in rows}
    assert keys == {("nif", "dense"), ("nif", "same_epochs"), ("l2", "oneshot"), ("l2", "retrained"), ("id", "oneshot"),
                    ("id", "retrained"), ("pod", "svd")}
    control = [r for r in rows if r["variant"] == "same_epochs"]  # dense, retrained like each stage, nothing removed
    assert [r["stage"] for r in control] == [1, 2] and all(r["shape_nodes"] == 32 for r in control)
    summary = json.loads((finished / "summary.json").read_text())
    stages = summary["methods"]["id-retrained"]["stages"]
    assert [s["dense_same_epochs_rel_l2"] for s in stages] == pytest.approx([r["rel_l2"] for r in control])
    for r in rows:
        assert {"method", "seed", "sparsity", "params_nnz", "rel_l2", "rmse", "params_total", "compression"} <= set(r)
        assert "time" not in " ".join(r)
    json.loads((finished / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


def test_stages_are_compacted_and_counted(finished):
    rows = read_csv(finished / "metrics.csv")
    dense = next(r for r in rows if r["method"] == "nif")
    for r in rows:
        if r["method"] in ("l2", "id"):
            assert r["shape_nodes"] == round((1 - r["sparsity"]) * 16) * 2  # two hidden layers of 16
            assert r["params_total"] < dense["params_total"]
            assert r["compression"] == pytest.approx(r["params_total"] / 2000)
    pair = {(r["method"], r["variant"], r["sparsity"]): r["params_total"] for r in rows if r["method"] in ("l2", "id")}
    assert pair[("l2", "oneshot", 0.5)] == pair[("id", "oneshot", 0.5)]
    pod = [r for r in rows if r["method"] == "pod"]
    assert [r["params_total"] for r in pod] == [k * 210 for k in range(1, 11)]  # k (200 + 10)
    assert pod[-1]["rel_l2"] < 1e-6


def test_killed_run_resumes_to_the_same_metrics(capsys, monkeypatch, tmp_path, finished):
    """Killed inside the second cascade (5th call of protocol.errors), resumed: same metrics.csv."""
    assert_resume_after_kill(capsys, monkeypatch, module=protocol, name="errors", at=5,
                             command=["nif", *TINY], out=tmp_path / "killed", finished=finished)


def test_user_npz_end_to_end(capsys, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    t = np.repeat(np.arange(4.0), 50)
    x = rng.random((200, 2))
    u = np.sin(3 * x[:, :1]) * np.cos(t[:, None]) + x[:, 1:]
    np.savez(tmp_path / "field.npz", data=np.column_stack([t, x, u, np.full(200, 0.25)]))
    out = tmp_path / "user"
    code, _, err = cli(capsys, monkeypatch, "nif", "--data-kind", "file", "--data-path", str(tmp_path / "field.npz"),
                       "--data-columns-x", "2", "--data-columns-weight",
                       "--out", str(out), "--quiet", *TINY, "--set", "data.test_fraction=0.25")
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    assert not any(r["method"] == "pod" for r in rows)  # scattered points: no snapshot matrix
    assert all(math.isfinite(r["rel_l2"]) for r in rows)
    report = (out / "report.html").read_text()
    assert "POD needs a grid" in report and "field.npz" in report and "200 rows, but 4 distinct p" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid"] is None and summary["held_out"] is True


def gridded_file(path: Path, side: int = 8, snapshots: int = 4) -> Path:
    """The benchmark field (``benchmarks/nif_field.py``) at a tiny size, rows shuffled."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nif_field", ROOT / "benchmarks" / "nif_field.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    data = mod.field(side, snapshots)
    np.savez(path, data=data[np.random.default_rng(1).permutation(len(data))])
    return path


ROOT = Path(__file__).resolve().parents[3]
FILE_ARGS = ["--data-kind", "file", "--data-columns-x", "2", "--data-columns-u", "2"]


@pytest.fixture(scope="module")
def gridded_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("grid")
    path = gridded_file(base / "field.npz")
    out = base / "run"
    mp = pytest.MonkeyPatch()
    code, _, err = cli(_Cap(), mp, "nif", *FILE_ARGS, "--data-path", str(path), "--out", str(out), "--quiet", *TINY)
    mp.undo()
    assert code == 0, err
    return out


def test_gridded_user_file_gets_pod_fields_and_held_out_errors(gridded_run):
    out = gridded_run
    rows = read_csv(out / "metrics.csv")
    pod = [r for r in rows if r["method"] == "pod"]
    assert [r["params_total"] for r in pod] == [k * (8 * 8 * 2 + 4) for k in range(1, 5)]  # k (space·d_u + n_p)
    truth = np.load(out / "fields" / "truth.npy")
    assert truth.shape == (256, 2)
    ref = np.load(gridded_file(out.parent / "again.npz"))["data"]
    order = np.lexsort((ref[:, 2], ref[:, 1], ref[:, 0]))  # t, then x, then y
    assert np.array_equal(truth, ref[order][:, 3:].astype(np.float32))
    dense = rows[0]
    assert dense["rel_l2"] != dense["train_rel_l2"]  # 20 % of the rows held out by default for a file
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid"] == [4, 8, 8] and summary["held_out"] is True and summary["split"] == "rows"
    report = (out / "report.html").read_text()
    assert "field.npz" in report and "a grid of 4 snapshots × 8 × 8 points" in report and "POD baseline: truncated SVD" in report
    assert (out / "plots" / "reconstructions.png").is_file()
    # 1,301+ parameters against 2 × 205 training numbers: the memorisation warning, in the report too
    assert any("more than the" in w for w in summary["warnings"]) and "Warning:" in report


def test_two_workers_give_byte_identical_metrics_and_resume_reuses_finished_jobs(capsys, monkeypatch, tmp_path, gridded_run):
    path = gridded_file(tmp_path / "field.npz")
    out = tmp_path / "two"
    code, _, err = cli(capsys, monkeypatch, "nif", *FILE_ARGS, "--data-path", str(path), "--out", str(out), "--quiet",
                       "--workers", "2", *TINY)
    assert code == 0, err
    assert (out / "metrics.csv").read_text() == (gridded_run / "metrics.csv").read_text()
    # a resume reruns no finished cascade: every job's rows.json is reused, run_cascade is never called
    monkeypatch.setattr(protocol, "run_cascade", lambda *a, **k: pytest.fail("a finished cascade ran again"))
    code, _, err = cli(capsys, monkeypatch, "nif", *FILE_ARGS, "--data-path", str(path), "--out", str(out), "--quiet",
                       "--resume", *TINY)
    assert code == 0, err
    assert (out / "metrics.csv").read_text() == (gridded_run / "metrics.csv").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "prune.sparsities=[0.5, 0.99]"], r"would prune every one of the 16 nodes"),
    (["--data-kind", "file", "--data-path", "missing.npz"], r"does not exist"),
    (["--data-columns-x", "x"], r"data-columns-x|data.columns.x"),
    (["--data-kind", "file"], r"data.kind=file needs data.path"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, args, message):
    code, _, err = cli(capsys, monkeypatch, "nif", "--preset", "demo", "--out", str(tmp_path / "bad"), "--quiet", *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_column_mismatch_leaves_nothing_on_disk_lost(capsys, monkeypatch, tmp_path):
    np.savez(tmp_path / "f.npz", data=np.random.default_rng(0).random((20, 4)))
    args = ["--preset", "demo", "--data-kind", "file", "--data-path", str(tmp_path / "f.npz"),
            "--data-columns-x", "2", "--data-columns-weight", "--quiet"]
    fresh = tmp_path / "fresh"
    code, _, err = cli(capsys, monkeypatch, "nif", *args, "--out", str(fresh))
    assert code == 2 and "has 4 columns" in err
    assert not (fresh / "metrics.csv").exists() and not (fresh / "checkpoints").exists()
    out = tmp_path / "keep"  # a folder of the user's: refused, untouched
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = cli(capsys, monkeypatch, "nif", *args, "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


PRESETS = Path(protocol.__file__).parent / "presets"


@pytest.mark.parametrize(("preset", "kind"), [("quick_ks", "ks"), ("quick_flow", "flow2d")])
def test_pde_presets_run_end_to_end(capsys, monkeypatch, tmp_path, preset, kind):
    """The shipped K-S and 2-D flow presets at tiny size: train, prune (L2 and ID, retrained), compact, POD, report."""
    path = PRESETS / f"{preset}.yaml"
    tiny = ["data.nx=16", "data.nt=6", "data.t_end=1.0", "data.dt=0.05", "train.epochs=3", "model.shape.units=8",
            "prune.sparsities=[0.25, 0.5]", "prune.retrain_epochs=2", "prune.id_samples=300", "timing=false"]
    if kind == "ks":
        tiny.append("data.nus=[0.2, 0.3]")
    out = tmp_path / kind
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--out", str(out), "--quiet",
                       *[a for t in tiny for a in ("--set", t)])
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    control = {("nif", "same_epochs")} if kind == "ks" else set()  # quick_flow leaves the control out
    assert {(r["method"], r["variant"]) for r in rows} == {("nif", "dense"), ("l2", "retrained"), ("id", "retrained"),
                                                           ("pod", "svd")} | control
    numbers = (2 * 6 * 16) if kind == "ks" else (6 * 16 * 16)
    dense = rows[0]
    assert dense["compression"] == pytest.approx(dense["params_total"] / numbers)
    for r in rows:
        if r["method"] in ("l2", "id"):
            assert r["shape_nodes"] == round((1 - r["sparsity"]) * 8) * 3 and r["params_total"] < dense["params_total"]
        assert math.isfinite(r["rel_l2"])
    assert (out / "report.html").is_file() and (out / "plots" / "reconstructions.png").is_file()


@pytest.mark.parametrize("kind", ["ks", "flow2d"])
def test_generated_pde_data_runs(capsys, monkeypatch, tmp_path, kind):
    extra = ["--set", "data.nx=16", "--set", "data.nt=6", "--set", "data.t_end=1.0", "--set", "data.dt=0.05",
             "--set", "data.nus=[0.2, 0.3]", "--set", "train.epochs=3", "--set", "prune.methods=[l2]",
             "--set", "prune.oneshot=false"]
    no_id = TINY[:-2]  # prune.id_samples would do nothing with l2 only: given, it is refused
    assert TINY[-2:] == ["--set", "prune.id_samples=300"]
    code, _, err = cli(capsys, monkeypatch, "nif", "--data-kind", kind, "--out", str(tmp_path / kind), "--quiet", *no_id, *extra)
    assert code == 0, err
    rows = read_csv(tmp_path / kind / "metrics.csv")
    numbers = (2 * 6 * 16) if kind == "ks" else (6 * 16 * 16)
    assert rows[0]["compression"] == pytest.approx(rows[0]["params_total"] / numbers)


def test_docs_user_example_runs(capsys, monkeypatch, tmp_path):
    """The commands of docs/nif.md "Your own field", as written, with a smaller budget and grid appended."""
    import shlex
    import subprocess
    import sys

    text = (ROOT / "docs" / "nif.md").read_text()
    block = text.split("## Your own field", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(c, comments=True) for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    assert [c[0] for c in commands] == ["python", "sciprune"]
    monkeypatch.chdir(tmp_path)
    gen = commands[0]
    subprocess.run([sys.executable, str(ROOT / gen[1]), *gen[2:], "--side", "8", "--snapshots", "4"], check=True)
    smaller = ["--train-steps", "20", "--prune-retrain-steps", "3", "--set", "prune.id_samples=200", "--set", "timing=false"]
    code, _, err = cli(capsys, monkeypatch, *commands[1][1:], "--quiet", *smaller)
    assert code == 0, err
    out = tmp_path / "runs" / "nif-field"
    rows = read_csv(out / "metrics.csv")
    assert any(r["method"] == "pod" for r in rows) and {r["sparsity"] for r in rows if r["method"] == "id"} == {0.3, 0.5, 0.7}
    assert "field.npz" in (out / "report.html").read_text()


@pytest.mark.parametrize("sparsity", [0.1, 0.25, 0.5, 0.75])
def test_kept_counts_equal_what_l2_pruning_keeps(sparsity):
    """ID's node counts (core's kept_width, layerwise) are exactly what pruning a copy with L2 used to keep."""
    import copy

    import torch

    from sciprune.core import torch_generator
    from sciprune.core import units_of
    from sciprune.nn.nif import build_nif

    arch = {"class": "NIFMultiScale", "shape": {"input_dim": 1, "output_dim": 1, "units": 13, "nlayers": 2, "activation": "swish",
            "use_resblock": False, "omega_0": 30.0, "weight_init_factor": 0.01},
            "parameter": {"input_dim": 1, "latent_dim": 2, "units": 8, "nlayers": 1, "activation": "swish", "use_resblock": False}}
    m = build_nif(arch, torch_generator(0, "t"))
    dense = units_of(m)
    p = torch.rand(50, 1, generator=torch_generator(1, "p"))
    narrower = protocol.prune_nodes(copy.deepcopy(m), dense, 0.2, "layerwise", p)  # a cascade's earlier stage
    for model in (m, narrower):
        pruned = protocol.prune_nodes(copy.deepcopy(model), dense, sparsity, "layerwise", p)
        assert protocol.kept_counts(protocol.group_sizes(model), dense, sparsity) == protocol.group_sizes(pruned)


def test_a_criterion_registered_here_is_used_from_yaml(capsys, monkeypatch, tmp_path):
    """prune.methods takes any registered structured criterion: a node-pruning cascade scored by it."""
    import yaml

    from sciprune.core import Criterion, register_criterion
    from sciprune.core._criteria import _CRITERIA
    from sciprune.nn.nif import hyper_node_rms

    calls = {"n": 0}

    def largest_first(weight, **kw):  # the opposite of hyper_node_rms: prunes the strongest nodes
        calls["n"] += 1
        return -hyper_node_rms(weight, **kw)

    monkeypatch.setattr("sciprune.core._criteria._CRITERIA", dict(_CRITERIA))  # the registration ends with the test
    register_criterion(Criterion("test_largest_first", True, largest_first, "test", wants_context=True))
    cfg = yaml.safe_load((PRESETS / "demo.yaml").read_text())
    cfg["train"]["epochs"] = 30
    cfg["prune"].update(methods=["l2", "test_largest_first"], sparsities=[0.5], retrain_epochs=0)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = cli(capsys, monkeypatch, "run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    assert calls["n"] > 0
    worst = read_csv(tmp_path / "run" / "metrics.csv")
    code, _, err = cli(capsys, monkeypatch, "nif", "--preset", "demo", "--out", str(tmp_path / "bad"), "--quiet",
                       "--set", "prune.methods=[no_such_rule]")
    assert code == 2 and "unknown pruning method 'no_such_rule'" in err and "test_largest_first" in err
    mine = [r for r in worst if r["method"] == "test_largest_first"]
    l2 = [r for r in worst if r["method"] == "l2"]
    assert len(mine) == len(l2) == 1 and mine[0]["shape_nodes"] == l2[0]["shape_nodes"] == 16
    assert mine[0]["rel_l2"] != l2[0]["rel_l2"]  # other nodes were removed


def test_a_step_budget_on_one_batch_an_epoch_equals_the_epoch_budget(capsys, monkeypatch, tmp_path):
    """On the wave (2,000 rows, batch 2,000) a step is an epoch: steps + step-keyed lr schedules give the
    epoch run's metrics byte for byte (the quick preset's meaning is kept), train_steps aside."""
    base = ["--preset", "demo", "--set", "prune.sparsities=[0.25, 0.5]", "--set", "prune.id_samples=300",
            "--set", "train.lr_steps={10: 0.0005}", "--set", "prune.retrain_lr=0.001", "--set", "prune.retrain_lr_steps={1: 0.0005}"]
    epochs = ["--set", "train.epochs=30", "--set", "prune.retrain_epochs=2"]
    steps = ["--set", "train.epochs=null", "--set", "train.steps=30", "--set", "prune.retrain_epochs=null",
             "--set", "prune.retrain_steps=2"]
    for name, extra in (("epochs", epochs), ("steps", steps)):
        code, _, err = cli(capsys, monkeypatch, "nif", "--out", str(tmp_path / name), "--quiet", *base, *extra)
        assert code == 0, err
    assert (tmp_path / "epochs" / "metrics.csv").read_text() == (tmp_path / "steps" / "metrics.csv").read_text()
    code, _, err = cli(capsys, monkeypatch, "nif", "--out", str(tmp_path / "both"), "--quiet", *base,
                       "--set", "train.epochs=30", "--set", "train.steps=30")
    assert code == 2 and "are both set" in err
