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
from sciprune.core.cascade import stage_checkpoint
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


def test_stray_temporaries_are_removed_on_resume(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "t"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q")
    assert code == 0, err
    strays = [out / ".metrics.csv.ab12_xyZ.tmp", out / "checkpoints" / f".{stage_checkpoint(out, 1).name}.q9w8e7r6.tmp"]
    for p in strays:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half a file")
    keep = out / ".my.notes.tmp"  # not of mkstemp's shape: not ours
    keep.write_text("keep")
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "-q", "--resume")
    assert code == 0, err
    assert not any(p.exists() for p in strays) and keep.exists()


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
