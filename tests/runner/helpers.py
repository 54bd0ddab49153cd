"""Drive the CLI in-process: returns (exit status, stdout, stderr)."""

from __future__ import annotations

import sys

import pytest

from sciprune.cli import main

TINY = [
    "--preset", "demo",
    "--set", "repeats=2", "--set", "model.hidden=[16, 16]", "--set", "train.epochs=3",
    "--set", "prune.sparsities=[0.0, 0.5, 0.9]", "--set", "prune.retrain_epochs=1",
    "--set", "prune.id_samples=100", "--set", "timing_batch=256", "--set", "prune.heatmap_sparsity=0.5",
]


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["sciprune", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
