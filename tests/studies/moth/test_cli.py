"""``sciprune moth``: the commands exist; bad input is one line and exit status 2."""

from __future__ import annotations

import h5py
import pytest

from tests.runner.helpers import cli


def test_simulate_then_refuse_bad_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path):
    out = tmp_path / "f.h5"
    code, stdout, err = cli(capsys, monkeypatch, "moth", "simulate", "--samples", "64", "--out", str(out), "--quiet")
    assert code == 0, err
    assert "64 rows; 0 samples did not converge" in stdout
    with h5py.File(out, "r") as f:
        assert f["samples"].shape == (64, 19)
    for args, pattern in (
        (["moth", "simulate", "--samples", "0", "--out", str(tmp_path / "g.h5")], "positive number of samples; got 0"),
        (["moth", "simulate", "--samples", "64", "--out", str(out)], "exists; pass --resume"),
        (["moth", "train", "--preset", "demo", "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path / "r")], "does not exist"),
        (["moth", "train", "--preset", "demo", "--threshold", "-1", "--out", str(tmp_path / "s")], "threshold"),
        (["moth", "train", "--preset", "demo", "--scheduler", "tcp://127.0.0.1:9", "--data", str(out),
          "--out", str(tmp_path / "t")], "cannot reach the dask scheduler"),
    ):
        code, _, err = cli(capsys, monkeypatch, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and pattern in lines[0], (args, err)
