"""The CLI end to end on a tiny classify run: results directory, report, resume, replay."""

import json

import pytest
import torch

import sciprune.studies.classify.protocol as protocol
from sciprune.files import read_csv
from sciprune.core import stage_checkpoint
from tests.runner.helpers import TINY, assert_resume_after_kill, cli


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    mp = pytest.MonkeyPatch()
    import sys

    from sciprune.cli import main

    mp.setattr(sys, "argv", ["sciprune", "classify", "--out", str(out), "--quiet", *TINY])
    with pytest.raises(SystemExit) as e:
        main()
    mp.undo()
    assert e.value.code in (0, None)
    return out


def test_results_directory_layout(finished):
    for name in ("config.yaml", "metrics.csv", "summary.json", "report.html", "timing.csv",
                 "plots/accuracy_loss_vs_sparsity.png", "plots/weights_heatmap.png"):
        assert (finished / name).is_file(), name
    rows = read_csv(finished / "metrics.csv")
    # 2 seeds x (dense + 3 methods x 2 variants x 3 sparsities)
    assert len(rows) == 2 * (1 + 3 * 2 * 3)
    assert {"method", "seed", "sparsity", "params_nnz", "accuracy", "loss", "flops"} <= set(rows[0])
    summary = json.loads((finished / "summary.json").read_text())
    for method in ("weight", "unit", "id"):
        entry = summary["methods"][method]["oneshot"]
        assert set(entry["accuracy_mean"]) == {"0", "0.5", "0.9"}
        assert "max_sparsity_within_1pt" in entry
    html = (finished / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "timing.csv" in html


def test_unit_and_id_keep_the_same_neurons_and_id_at_zero_is_exact(finished):
    rows = read_csv(finished / "metrics.csv")
    pick = {(r["method"], r["variant"], r["seed"], r["sparsity"]): r for r in rows}
    for s in (0.5, 0.9):
        assert pick[("unit", "oneshot", 0, s)]["neurons"] == pick[("id", "oneshot", 0, s)]["neurons"]
        assert pick[("id", "oneshot", 0, s)]["params_total"] == pick[("unit", "oneshot", 0, s)]["compact_params"]
    dense = pick[("dense", "dense", 0, 0.0)]["accuracy"]
    for method in ("weight", "unit", "id"):
        assert pick[(method, "oneshot", 0, 0.0)]["accuracy"] == pytest.approx(dense)


def test_report_is_remade_from_rows(capsys, monkeypatch, finished):
    (finished / "report.html").unlink()
    (finished / "plots" / "accuracy_loss_vs_sparsity.png").unlink()
    code, out, _ = cli(capsys, monkeypatch, "report", str(finished))
    assert code == 0 and (finished / "report.html").is_file()
    assert (finished / "plots" / "accuracy_loss_vs_sparsity.png").is_file()


def test_killed_run_resumes_to_the_same_metrics(capsys, monkeypatch, tmp_path, finished):
    # killed in the middle of the second seed's cascades (the 15th evaluation)
    assert_resume_after_kill(capsys, monkeypatch, module=protocol, name="evaluate", at=15, command=["classify", *TINY],
                             out=tmp_path / "killed", finished=finished)


def test_config_yaml_replays(capsys, monkeypatch, tmp_path, finished):
    out = tmp_path / "replay"
    code, _, err = cli(capsys, monkeypatch, "run", str(finished / "config.yaml"), "--out", str(out), "--quiet")
    assert code == 0, err
    assert (out / "metrics.csv").read_text() == (finished / "metrics.csv").read_text()


def test_two_dask_workers_give_the_same_metrics(capsys, monkeypatch, tmp_path, finished):
    out = tmp_path / "sharded"
    code, _, err = cli(capsys, monkeypatch, "classify", "--out", str(out), "--quiet", "--workers", "2", *TINY)
    assert code == 0, err
    assert (out / "metrics.csv").read_text() == (finished / "metrics.csv").read_text()


def test_inspect_reads_stage_checkpoints(capsys, monkeypatch, finished):
    stage = stage_checkpoint(finished / "checkpoints" / "seed0" / "unit-oneshot", 2)
    code, out, err = cli(capsys, monkeypatch, "inspect", str(stage))
    assert code == 0, err
    assert '"class": "MLP"' in out and "layers.0.weight" in out and "yes" in out  # masked
    assert "layers.0.weight_mask" not in out


def test_diverged_classify_rows_still_make_plots_and_report(capsys, monkeypatch, tmp_path, finished):
    import shutil

    from sciprune.files import atomic_write_csv

    run = tmp_path / "diverged"
    shutil.copytree(finished, run)
    rows = read_csv(run / "metrics.csv")
    for i, r in enumerate(rows):
        if r["method"] == "dense" or i % 3 == 0:  # every dense net and a third of the stages
            r["accuracy"], r["loss"] = float("nan"), float("inf")
    atomic_write_csv(run / "metrics.csv", rows)
    (run / "plots" / "accuracy_loss_vs_sparsity.png").unlink()
    code, _, err = cli(capsys, monkeypatch, "report", str(run))
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert summary["dense_accuracy"] is None and len(summary["diverged_stages"]) >= 2
    assert (run / "plots" / "accuracy_loss_vs_sparsity.png").is_file()
    assert "Diverged stages" in (run / "report.html").read_text()


def test_inspect_counts_a_tensor_held_under_two_names_once(capsys, monkeypatch, tmp_path):
    """A CNF holds its field as ``field`` and ``dynamics.field``: both names are listed, the weights
    counted once (2·8+8 + 8·8+8 + 8·2+2 = 114 entries), from sciprune's safetensors file (copies, with
    the names recorded) and from a torch file of its state dict (the memory shared)."""
    from sciprune.core import prune, save_checkpoint, torch_generator
    from sciprune.nn.mlp import MLP
    from sciprune.nn.ode import CNF, Autonomous, Solver

    cnf = CNF(Autonomous(MLP([2, 8, 8, 2], "tanh", generator=torch_generator(0, "f"))), Solver("rk4", steps=2))
    prune(cnf, 0.5)  # magnitude, every weight: 8 + 32 + 8 of the 96 weights are left
    save_checkpoint(tmp_path / "cnf.safetensors", cnf)
    torch.save(cnf.state_dict(), tmp_path / "cnf.pt")
    for name in ("cnf.safetensors", "cnf.pt"):
        code, out, err = cli(capsys, monkeypatch, "inspect", str(tmp_path / name))
        assert code == 0, err
        total = next(line for line in out.splitlines() if line.startswith("total")).split()
        assert total[1:3] == ["114", str(48 + 18)], out
        assert "dynamics.field.net.layers.1.weight" in out and "(the tensor field.net.layers.1.weight)" in out
        assert "6 tensors are held under a second name" in out
