"""amr: a killed run resumed with --resume ends with a byte-identical metrics.csv; a finished one is reused."""

from __future__ import annotations

import pytest

from tests.runner.helpers import Killed, cli

ARGS = ["amr", "--preset", "demo", "--set", "max_dofs=300", "--set", "rmse_points=1024",
        "--set", "baseline_max_dofs=2000", "-q"]


@pytest.mark.mfem
def test_killed_amr_run_resumes_to_the_same_metrics(capsys, monkeypatch, tmp_path):
    pytest.importorskip("mfem.ser")
    import sciprune.studies.amr.driver as driver

    full = tmp_path / "full"
    code, _, err = cli(capsys, monkeypatch, *ARGS, "--out", str(full))
    assert code == 0, err

    out = tmp_path / "killed"
    real = driver.run_uniform_baseline

    def dying(*a, **k):  # after every refinement iteration was written, before parameters.json
        raise Killed

    monkeypatch.setattr(driver, "run_uniform_baseline", dying)
    with pytest.raises(Killed):
        cli(capsys, monkeypatch, *ARGS, "--out", str(out))
    monkeypatch.setattr(driver, "run_uniform_baseline", real)
    assert (out / "it_0.mesh").exists() and not (out / "metrics.csv").exists()
    from sciprune.core._atomic import _create_temporary

    stray = _create_temporary(out, "parameters.json")[0]  # a write the kill interrupted (journaled)
    stray.write_text("{half")
    users = out / ".parameters.json.abcd1234.tmp"  # the user's, of the same shape: never removed
    users.write_text("mine")
    code, _, err = cli(capsys, monkeypatch, *ARGS, "--out", str(out))
    assert code == 2 and "already holds a run; pass --resume" in err  # partial results: only --resume continues
    code, _, err = cli(capsys, monkeypatch, *ARGS, "--out", str(out), "--resume")
    assert code == 0, err
    assert not stray.exists() and users.read_text() == "mine"
    assert (out / "metrics.csv").read_bytes() == (full / "metrics.csv").read_bytes()

    # resuming a finished run reuses it: nothing is recomputed, metrics.csv stays identical
    monkeypatch.setattr(driver, "run_amr", dying)
    code, _, err = cli(capsys, monkeypatch, *ARGS, "--out", str(out), "--resume")
    assert code == 0, err
    assert (out / "metrics.csv").read_bytes() == (full / "metrics.csv").read_bytes()
