"""Each study's command is generated from its config model; a toy study registered in one line runs."""

from __future__ import annotations

import json

import pytest
import yaml

import sciprune.runner.study as registry
from tests.runner.helpers import cli


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.STUDIES, "toy", "tests.runner.toy.study")  # type: ignore[index]
    monkeypatch.setitem(registry.STUDIES, "toygroup", "tests.runner.toy.group")  # type: ignore[index]


def test_toy_study_runs_through_sciprune(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "t"
    code, stdout, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "--steps", "4", "--kind", "fancy",
                            "--verbose", "--inner-scale", "2.5", "--inner-tags", "[a, b]", "--quiet")
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved == {"study": "toy", "seed": 0, "steps": 4, "kind": "fancy", "verbose": True, "diverge": False,
                     "inner": {"scale": 2.5, "tags": ["a", "b"]}}
    assert json.loads((out / "summary.json").read_text())["last_loss"] == 2.5 / 4
    assert (out / "report.html").is_file() and "results:" in stdout


def test_set_wins_over_flags_and_flags_over_the_preset(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "t"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "--steps", "4", "--set", "steps=2", "-q")
    assert code == 0, err
    assert yaml.safe_load((out / "config.yaml").read_text())["steps"] == 2


def test_help_is_generated_from_the_model(capsys, monkeypatch, toy):
    monkeypatch.setenv("COLUMNS", "120")  # no help text wrapped mid-phrase
    code, out, _ = cli(capsys, monkeypatch, "toy", "--help")
    assert code == 0
    for text in ("--steps", "rows to record", "--kind", "plain", "fancy", "--verbose", "--no-verbose",
                 "--inner-scale", "multiplies every loss", "--inner-tags", "--preset", "--set", "--out",
                 "--resume", "--quiet", "--device", "--workers", "--scheduler", "--plan", "--plan-workers"):
        assert text in out, text
    code, out, _ = cli(capsys, monkeypatch, "--help")
    assert "toy" in out and "Toy study" in out


def test_sub_commands_from_the_study_hook(capsys, monkeypatch, tmp_path, toy):
    code, out, err = cli(capsys, monkeypatch, "toygroup", "hello", "--name", "moth")
    assert code == 0 and out.strip() == "hello moth", err
    code, out, err = cli(capsys, monkeypatch, "toygroup", "fit", "--help")
    assert code == 0 and "--steps" in out and "Fit the toy" in out
    code, _, err = cli(capsys, monkeypatch, "toygroup", "fit", "--out", str(tmp_path / "f"), "--steps", "1", "-q")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "f" / "config.yaml").read_text())["study"] == "toygroup"


@pytest.mark.parametrize("args, pattern", [
    (["toy", "--steps", "x"], "Invalid value for '--steps'"),
    (["toy", "--kind", "odd"], "'odd' is not one of 'plain', 'fancy'"),
    (["toy", "--stepz", "1"], "No such option: --stepz"),
    (["toygroup", "nope"], "No such command 'nope'"),
])
def test_usage_errors_are_one_line(capsys, monkeypatch, tmp_path, toy, args, pattern):
    code, _, err = cli(capsys, monkeypatch, *args, "--out", str(tmp_path / "o"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and pattern in lines[0] and "--help" in lines[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.mfem
def test_amr_command_builds_the_config(capsys, monkeypatch, tmp_path):
    pytest.importorskip("mfem.ser")
    out = tmp_path / "cli"
    code, _, err = cli(capsys, monkeypatch, "amr", "--preset", "demo", "--max-it", "3", "--mode", "basic",
                       "--out", str(out), "--quiet", "--no-paraview")
    assert code == 0, err
    saved = (out / "config.yaml").read_text()
    assert "mode: basic" in saved and "max_it: 3" in saved and "inr: corner" in saved
    assert (out / "report.html").exists() and (out / "summary.json").exists()
    code, _, err = cli(capsys, monkeypatch, "amr", "--max-it", "1", "--out", str(tmp_path / "bad"))
    assert code == 2 and "max_it=1" in err
