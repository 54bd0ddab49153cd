"""``sciprune prune`` end to end: the shipped example, a user's two-input network from an .npz, resume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from sciprune.core import load_model
from sciprune.files import read_csv
from sciprune.studies.prune import protocol
from tests.runner.helpers import assert_resume_after_kill, cli

TINY = ["--preset", "demo", "--set", "train.epochs=20", "--sparsities", "0.25,0.5", "--set", "id_samples=128",
        "--set", "timing_batch=64"]


def _rows(out: Path) -> list[dict]:
    return read_csv(out / "metrics.csv")


def test_example_end_to_end(capsys, monkeypatch, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(capsys, monkeypatch, "prune", *TINY, "--out", str(out), "--quiet")
    assert code == 0, err
    rows = _rows(out)
    assert [(r["method"], r["sparsity"]) for r in rows] == [
        ("dense", 0.0), *((m, s) for m in ("weight", "neuron", "id") for s in (0.25, 0.5))]
    assert not any(k.startswith("ms_") or "speed" in k or "time" in k for k in rows[0])  # timings: timing.csv only
    assert {r["method"] for r in read_csv(out / "timing.csv")} == {"weight", "neuron", "id"}
    by = {(r["method"], r["sparsity"]): r for r in rows}
    dense = by[("dense", 0.0)]
    for r in rows:
        assert r["compact_rel_diff"] <= 1e-6  # compacted == masked
    for s in (0.25, 0.5):
        # neuron and ID keep the same neurons per group: equal sizes after compaction
        assert by[("neuron", s)]["compact_params"] == by[("id", s)]["compact_params"] < dense["params_total"]
        assert by[("id", s)]["rel_error"] < by[("neuron", s)]["rel_error"]
        # exact magnitude sparsity in each weight of the example (lift 32x2, two blocks 32x32, head 1x32)
        assert by[("weight", s)]["params_nnz"] == dense["params_nnz"] - sum(round(s * n) for n in (64, 1024, 1024, 32))
    # the saved compacted network rebuilds through the factory and gives the recorded error
    small = load_model(out / "checkpoints" / "compact" / "id-001-s0.5.safetensors")
    data = protocol.prepare(protocol.PruneStudyConfig(**{"model_kwargs": {}, "seed": 0}))[1]
    err_again = protocol.errors(small, data.test)["rel_error"]
    assert math.isclose(err_again, by[("id", 0.5)]["rel_error"], rel_tol=1e-5)
    assert "error_vs_sparsity.png" in (out / "report.html").read_text() or (out / "plots" / "error_vs_sparsity.png").is_file()


def test_killed_run_resumes_byte_identical(capsys, monkeypatch, tmp_path):
    command = ["prune", *TINY, "--method", "neuron,id", "--retrain-epochs", "1"]
    finished = tmp_path / "finished"
    code, _, err = cli(capsys, monkeypatch, *command[:1], "--out", str(finished), "--quiet", *command[1:])
    assert code == 0, err
    assert_resume_after_kill(capsys, monkeypatch, module=protocol, name="evaluate", at=4,
                             command=command, out=tmp_path / "killed", finished=finished)


def test_users_two_input_network_from_npz(capsys, monkeypatch, tmp_path):
    """A user's module in the current folder, two inputs passed as one tuple (DeepXDE's convention)."""
    (tmp_path / "mynets.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Gated(nn.Module):\n"
        "    def __init__(self, width):\n"
        "        super().__init__()\n"
        "        self.a = nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, width))\n"
        "        self.b = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, width))\n"
        "        self.head = nn.Linear(width, 2)\n"
        "    def forward(self, inputs):\n"
        "        u, t = inputs\n"
        "        return self.head(torch.tanh(self.a(u)) * torch.tanh(self.b(t)))\n\n"
        "def build(width=16):\n"
        "    torch.manual_seed(0)\n"
        "    return Gated(width)\n")
    rng = np.random.default_rng(1)
    u, t = rng.uniform(-1, 1, (200, 3)), rng.uniform(0, 1, (200, 1))
    y = np.concatenate([np.sin(u.sum(1, keepdims=True)) * t, np.cos(u[:, :1]) - t], axis=1)
    np.savez(tmp_path / "samples.npz", x0=u, x1=t, y=y)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, monkeypatch, "prune", "--model", "mynets:build", "--model-kwargs", "{width: 12}",
                       "--data", "samples.npz", "--inputs", "tuple", "--method", "neuron,id", "--sparsities", "0.5",
                       "--train-epochs", "5", "--set", "timing_batch=32", "--out", "run", "--quiet")
    assert code == 0, err
    rows = _rows(tmp_path / "run")
    assert [r["method"] for r in rows] == ["dense", "neuron", "id"]
    assert all(r["compact_rel_diff"] <= 1e-6 for r in rows)
    # gated product: the two branches' last layers form one coupled group (12), the hidden layers one each
    assert rows[0]["neurons"] == "12;12;12" and rows[1]["neurons"] == "6;6;6"
    small = load_model(tmp_path / "run" / "checkpoints" / "compact" / "neuron-000-s0.5.safetensors")
    user_net = small.module  # the user's own class, narrower, called as before
    assert type(user_net).__name__ == "Gated" and user_net.head.in_features == 6
    assert user_net((torch.zeros(4, 3), torch.zeros(4, 1))).shape == (4, 2)


def test_a_network_with_dropout_and_batch_norm_resumes_byte_identical(capsys, monkeypatch, tmp_path):
    """Dropout draws from the global random stream: each training epoch seeds it from its own generator
    (core.global_stream_from), so a killed run resumes to the same numbers; the ID sees the network in
    eval mode (batch norm on its running statistics, no dropout)."""
    (tmp_path / "dropnet.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(2, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Dropout(0.3),\n"
        "                         nn.Linear(12, 12), nn.Tanh(), nn.Dropout(0.3), nn.Linear(12, 1))\n")
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (120, 2))
    np.savez(tmp_path / "samples.npz", x=x, y=np.sin(3 * x[:, :1]) * x[:, 1:])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    command = ["prune", "--preset", "demo", "--model", "dropnet:build", "--data", "samples.npz", "--method", "neuron,id",
               "--sparsities", "0.25,0.5", "--mode", "iterative", "--set", "train.epochs=3", "--retrain-epochs", "2",
               "--set", "id_samples=64", "--set", "timing_batch=32"]
    finished = tmp_path / "finished"
    code, _, err = cli(capsys, monkeypatch, *command[:1], "--out", str(finished), "--quiet", *command[1:])
    assert code == 0, err
    torch.manual_seed(12345)  # the caller's global stream: another state must not change the run's numbers
    assert_resume_after_kill(capsys, monkeypatch, module=protocol, name="evaluate", at=3,
                             command=command, out=tmp_path / "killed", finished=finished)
