"""Divergence is an outcome: NaN / inf rows are recorded, plots and report still appear, summary.json is strict."""

from __future__ import annotations

import json
import math

import pytest

import sciprune.runner.study as registry
from sciprune.files import atomic_write_json, read_csv
from tests.runner.helpers import cli


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.STUDIES, "toy", "tests.runner.toy.study")  # type: ignore[index]


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"summary.json holds {name}")
    return json.loads(text, parse_constant=refuse)


def test_a_diverged_run_reports_its_diverged_stages(capsys, monkeypatch, tmp_path, toy):
    out = tmp_path / "d"
    code, _, err = cli(capsys, monkeypatch, "toy", "--out", str(out), "--steps", "4", "--diverge", "-q")
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")  # recorded as measured
    assert math.isnan(rows[1]["loss"]) and rows[2]["loss"] == math.inf
    summary = _strict((out / "summary.json").read_text())
    assert summary["losses"] == [1.0, None, None, None]
    assert [d["stage"] for d in summary["diverged_stages"]] == [f"method=plain, seed=0, stage={i}, sparsity=0.0" for i in (1, 2, 3)]
    assert all(d["columns"] == ["loss"] for d in summary["diverged_stages"])
    page = (out / "report.html").read_text()
    assert "Diverged stages (3)" in page and "method=plain, seed=0, stage=2, sparsity=0.0: loss" in page
    # and `report` re-makes it the same way, as often as asked
    code, _, err = cli(capsys, monkeypatch, "report", str(out))
    assert code == 0, err
    assert _strict((out / "summary.json").read_text()) == summary


def test_json_writer_is_strict(tmp_path):
    import numpy as np

    atomic_write_json(tmp_path / "s.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float32(2.0),
                                            "d": np.array([1.0, np.nan])})
    assert _strict((tmp_path / "s.json").read_text()) == {"a": None, "b": [None, 1.5], "c": 2.0, "d": [1.0, None]}
