"""Drive the CLI in-process: returns (exit status, stdout, stderr); kill a run midway and resume it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


class Killed(Exception):
    """Raised inside a run to stop it midway (click turns KeyboardInterrupt into exit 1; this escapes)."""


def assert_resume_after_kill(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *, module: Any,
                             name: str, at: int, command: list[str], out: Path, finished: Path) -> None:
    """Kill ``sciprune *command --out out`` at the ``at``-th call of ``module.name``, then resume it with
    ``--resume``: no summary is written by the killed run, and the resumed run's metrics.csv is byte for
    byte that of the uninterrupted run in ``finished``."""
    calls = {"n": 0}
    real = getattr(module, name)

    def dying(*a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == at:
            raise Killed
        return real(*a, **k)

    monkeypatch.setattr(module, name, dying)
    with pytest.raises(Killed):
        cli(capsys, monkeypatch, command[0], "--out", str(out), "--quiet", *command[1:])
    monkeypatch.setattr(module, name, real)
    assert not (out / "summary.json").exists()
    code, _, err = cli(capsys, monkeypatch, command[0], "--out", str(out), "--quiet", "--resume", *command[1:])
    assert code == 0, err
    assert (out / "metrics.csv").read_text() == (finished / "metrics.csv").read_text()
