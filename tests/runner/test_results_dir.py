"""A results folder is sciprune's or refused; a lock holds it; temporaries are cleaned; modes follow the umask."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

import sciprune.runner.study as registry
from sciprune.core import stage_checkpoint
from tests.runner.helpers import cli


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.STUDIES, "toy", "tests.runner.toy.study")  # type: ignore[index]


HOLDER = """
import sys, time
from pathlib import Path
from sciprune.runner.results import hold
out = Path(sys.argv[1])
with hold(out):
    Path(sys.argv[2]).write_text("yes")
    time.sleep(60)
"""


@contextlib.contextmanager
def _holder(out):
    """A second process holding ``out``'s lock for the duration of the block, then killed."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out.parent / "held"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(marker)])
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the holder process did not take the lock"
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_second_process_is_refused_with_the_holders_pid(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "busy"
    with _holder(out) as proc:
        code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"in use by another sciprune run (pid {proc.pid})" in err
        assert not (out / "config.yaml").exists()
    # a killed holder releases the lock: the folder is usable again
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err


def test_report_refuses_a_folder_a_run_holds(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "r"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    before = (out / "summary.json").read_bytes()
    with _holder(out) as proc:
        code, _, err = cli(capsys, monkeypatch, "report", str(out))
        assert code == 2 and f"in use by another sciprune run (pid {proc.pid})" in err, err
        assert (out / "summary.json").read_bytes() == before


def test_user_folder_without_config_is_refused_untouched(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("metrics.csv", "summary.json", "report.html"):
        (out / name).write_text(f"my own {name}\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 2 and "not a sciprune run" in err and "choose another --out" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_empty_folder_is_accepted(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "empty"
    out.mkdir()
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err


def _tree(folder):
    """Every file under ``folder`` with its bytes (to prove nothing was touched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_only_recorded_temporaries_are_removed_on_resume(capsys, monkeypatch, tmp_path, toy):
    from sciprune.core._atomic import JOURNAL, _create_temporary

    out = tmp_path / "t"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    # what a writer killed between creating its temporary and renaming it leaves: the file and its record
    (out / "checkpoints").mkdir()
    killed = [_create_temporary(out, "metrics.csv")[0], _create_temporary(out / "checkpoints", stage_checkpoint(out, 1).name)[0]]
    for p in killed:
        p.write_bytes(b"half a file")
    assert len(list((out / JOURNAL).iterdir())) == 2
    # a user's files of exactly the temporaries' shape: never ours, never removed
    users = [out / ".metrics.csv.ab12cd34.tmp", out / "checkpoints" / ".notes.0123abcd.tmp", out / ".my.notes.tmp"]
    for p in users:
        p.write_text("the user's")
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q", "--resume")
    assert code == 0, err
    assert not any(p.exists() for p in killed), "a recorded temporary survived the resume"
    assert all(p.read_text() == "the user's" for p in users), "a user's file was removed"
    assert not list((out / JOURNAL).iterdir()), "the journal keeps records after the clean-up"


def test_a_finished_write_leaves_no_record(tmp_path):
    from sciprune.core._atomic import JOURNAL
    from sciprune.files import atomic_write_text

    (tmp_path / JOURNAL).mkdir(parents=True)
    atomic_write_text(tmp_path / "sub" / "a.txt", "x")
    assert (tmp_path / "sub" / "a.txt").read_text() == "x"
    assert not list((tmp_path / JOURNAL).iterdir()) and [p.name for p in (tmp_path / "sub").iterdir()] == ["a.txt"]


def test_user_temporaries_in_a_user_folder_are_never_deleted(capsys, monkeypatch, tmp_path, toy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".data.csv.ab12cd34.tmp").write_text("the user's")
    before = _tree(mine)
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(mine), "-q")
    assert code == 2 and "not a sciprune run (.data.csv.ab12cd34.tmp" in err, err
    assert _tree(mine) == before and sorted(p.name for p in mine.iterdir()) == [".data.csv.ab12cd34.tmp"]


def test_the_marker_comes_first_and_names_the_run(capsys, monkeypatch, tmp_path, toy):
    import json

    import sciprune
    import sciprune.runner.run as run_mod

    out = tmp_path / "m"
    seen = []
    real_hold, real_write = run_mod.hold, run_mod.atomic_write_text

    @contextlib.contextmanager
    def spy_hold(path):
        seen.append(("lock", (path / ".sciprune" / "run.json").is_file()))
        with real_hold(path):
            yield

    def spy_write(path, text):
        seen.append((path.name, (out / ".sciprune" / "run.json").is_file()))
        real_write(path, text)

    monkeypatch.setattr(run_mod, "hold", spy_hold)
    monkeypatch.setattr(run_mod, "atomic_write_text", spy_write)
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    assert seen[:2] == [("lock", True), ("config.yaml", True)], seen
    marker = json.loads((out / ".sciprune" / "run.json").read_text())
    assert marker["study"] == "toy" and marker["sciprune"] == sciprune.__version__ and len(marker["run_id"]) == 32


@pytest.mark.parametrize("text", ["services:\n  web:\n    image: nginx\n", "study: toy\nsteps: 2\n"])
def test_a_folder_with_only_a_config_yaml_is_refused_untouched(capsys, monkeypatch, tmp_path, toy, text):
    """Anyone's config.yaml (a docker-compose file; even a valid toy config) proves nothing: no marker, no run."""
    out = tmp_path / "compose"
    out.mkdir()
    (out / "config.yaml").write_text(text)
    before = _tree(out)
    for extra in ([], ["--resume"]):
        code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q", *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "holds a config.yaml but no sciprune marker (.sciprune/run.json)" in err, err
        assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == ["config.yaml"]
    code, _, err = cli(capsys, monkeypatch, "report", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == ["config.yaml"]


def test_a_damaged_marker_is_refused(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "d"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    (out / ".sciprune" / "run.json").write_bytes(b"\x00garbage{")
    before = _tree(out)
    for argv in (["toy", "--out", str(out), "-q", "--resume"], ["report", str(out)]):
        code, _, err = cli(capsys, monkeypatch, *argv)
        assert code == 2 and "has a damaged sciprune marker '.sciprune/run.json'" in err, err
    assert _tree(out) == before


def test_a_legacy_results_folder_is_reported_and_resumed(capsys, monkeypatch, tmp_path, toy):
    """A folder of a version before the marker (config.yaml + metrics.csv + checkpoints/): report and
    --resume accept it when its config validates and its rows are the study's; resume adds the marker."""
    out = tmp_path / "old"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    metrics = (out / "metrics.csv").read_bytes()
    import shutil
    shutil.rmtree(out / ".sciprune")
    (out / "checkpoints").mkdir()
    code, _, err = cli(capsys, monkeypatch, "report", str(out))
    assert code == 0, err
    assert not (out / ".sciprune").exists(), "a report adopted the folder"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 2 and "already holds a run; pass --resume" in err, err
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q", "--resume")
    assert code == 0, err
    assert (out / ".sciprune" / "run.json").is_file() and (out / "metrics.csv").read_bytes() == metrics


def test_a_legacy_folder_with_foreign_rows_is_refused(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "old"
    out.mkdir()
    (out / "config.yaml").write_text("study: toy\n")
    (out / "metrics.csv").write_text("a,b\n1,2\n")
    before = _tree(out)
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q", "--resume")
    assert code == 2 and "is not an earlier sciprune run" in err and "lacks the columns method" in err, err
    assert _tree(out) == before


def _refusing_toy(monkeypatch):
    """The toy study whose run refuses its (pretend) data file first thing, as nif and moth do."""
    import dataclasses

    import tests.runner.toy.study as toy_study
    from sciprune.errors import InputError

    def run(cfg, ctx):
        raise InputError("data file 'x.npz' is not a zip archive; expected a .npz")

    monkeypatch.setattr(toy_study, "STUDY", dataclasses.replace(toy_study.STUDY, run=run))


def test_a_run_refused_by_its_data_leaves_a_new_out_absent(capsys, monkeypatch, tmp_path, toy):
    _refusing_toy(monkeypatch)
    out = tmp_path / "a" / "b" / "new"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 2 and err.strip() == "error: data file 'x.npz' is not a zip archive; expected a .npz", err
    assert not (tmp_path / "a").exists(), "a refused run left folders behind"


def test_a_run_refused_by_its_data_leaves_an_empty_out_empty(capsys, monkeypatch, tmp_path, toy):
    _refusing_toy(monkeypatch)
    out = tmp_path / "empty"
    out.mkdir()
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 2, err
    assert out.is_dir() and not list(out.iterdir()), list(out.iterdir())


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_result_files_respect_the_umask(capsys, monkeypatch, tmp_path, toy, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "u"
        code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    finally:
        os.umask(old)
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "summary.json", "report.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
