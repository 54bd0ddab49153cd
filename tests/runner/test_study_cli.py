"""Each study's command is generated from its config model; a toy study registered in one line runs."""

from __future__ import annotations

import json
import re

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
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the help column by the widths of every row: no wrapping here
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


def _commands() -> list[tuple[str, ...]]:
    """Every registered study's command line to its help: ``(study,)`` or ``(study, sub-command)``."""
    import click

    from sciprune.runner.commands import study_command
    from sciprune.runner.study import STUDIES, get_study

    out: list[tuple[str, ...]] = []
    for name in STUDIES:
        cmd = study_command(get_study(name))
        out += [(name, sub) for sub in cmd.commands] if isinstance(cmd, click.Group) else [(name,)]
    return out


ROLE = re.compile(r":[a-z]+:`|``")


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_every_study_help_is_plain_text_and_describes_every_option(capsys, monkeypatch, words):
    """No Sphinx role or double back-quote, no option without a description, and at 80 columns
    (captured: not a terminal, as in a pipe) every flag name printed in full."""
    import click

    from sciprune.runner.commands import study_command
    from sciprune.runner.study import get_study

    monkeypatch.setenv("COLUMNS", "80")
    cmd = study_command(get_study(words[0]))
    if len(words) > 1:
        cmd = cmd.commands[words[1]]
    code, out, _ = cli(capsys, monkeypatch, *words, "--help")
    assert code == 0
    assert not ROLE.search(out), ROLE.search(out)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            assert (p.help or "").strip(), f"{' '.join(words)}: {p.opts} has no help"
            for opt in p.opts:
                assert re.search(rf"(^|[\s,/]){re.escape(opt)}([\s,/]|$)", out, re.M), f"{opt} not printed in full"


def test_help_through_a_pipe_keeps_long_flag_names():
    """``sciprune nif --help | cat`` in an 80-column environment: the longest flag names are whole."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "sciprune.cli", "nif", "--help"], capture_output=True, text=True,
                          env=env, check=True)
    for flag in ("--data-columns-weight", "--model-parameter-use-resblock", "--model-shape-weight-init-factor"):
        assert flag in done.stdout, flag
    assert "…" not in done.stdout


def test_a_field_the_config_does_not_read_is_refused_only_when_the_user_gave_it():
    """``prune.id_samples`` without an ID method: refused from a flag or ``--set`` (leaves of a section
    too), accepted from a preset or a whole config file (a saved config.yaml lists every field)."""
    from sciprune.errors import InputError
    from sciprune.runner.config import apply_overrides, given_fields, load_preset, validate

    config = apply_overrides(load_preset("classify", "demo"), ["prune.methods=[weight]", "prune.id_samples=7",
                                                                 "model.hidden=[4]"])
    assert validate(config).prune.id_samples == 7  # as a file: accepted
    for given in (given_fields(["prune.id_samples"], []), given_fields([], ["prune.id_samples=7"]),
                  given_fields([], ["prune={methods: [weight], id_samples: 7}"])):
        with pytest.raises(InputError, match=r"prune.id_samples=7 is given but no method of prune.methods=\['weight'\]"):
            validate(config, given)
    assert given_fields([], ["prune={methods: [weight]}"]) == {"prune.methods"}
    validate(config, {"prune.methods"})  # the methods were given, the samples were not
    with_id = apply_overrides(config, ["prune.methods=[weight, id]"])
    assert validate(with_id, given_fields(["prune.id_samples"], [])).prune.id_samples == 7
