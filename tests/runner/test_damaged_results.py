"""Reading a results folder back: a missing statistic is named in the report, a damaged file is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sciprune.core import load_state, save_state
from sciprune.errors import InputError
from sciprune.files import collecting_notes, read_csv, read_result_array, read_result_arrays, read_result_json
from tests.runner.helpers import cli

DATA = Path(__file__).parents[1] / "bad_input" / "data"


def _marked(folder: Path, study: str) -> Path:
    (folder / ".sciprune" / "pending").mkdir(parents=True)
    (folder / ".sciprune" / "run.json").write_text(json.dumps({"format": "sciprune results folder", "study": study}))
    shutil.copy(DATA / f"{study}.config.yaml", folder / "config.yaml")
    shutil.copy(DATA / f"{study}.metrics.csv", folder / "metrics.csv")
    return folder


@pytest.mark.parametrize("study, missing", [("flows", ["density-gaussians analysis (density-gaussians.npz)",
                                                        "classifier-moons analysis (classifier-moons.npz)"]),
                                            ("moth", ["moth data summary (data.json)"]),
                                            ("nif", ["NIF field metadata (meta.json)"])])
def test_a_missing_statistic_is_named_in_summary_and_report(capsys, monkeypatch, tmp_path, study, missing):
    run = _marked(tmp_path / study, study)
    code, _, err = cli(capsys, monkeypatch, "report", str(run))
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["missing_statistics"] == [f"{m}: it is missing; its statistics are missing from this report" for m in missing]
    html = (run / "report.html").read_text()
    assert f"Missing statistics ({len(missing)})" in html and all(m in html for m in missing)


def test_a_complete_folder_has_no_missing_note(capsys, monkeypatch, tmp_path):
    run = _marked(tmp_path / "moth", "moth")
    (run / "data.json").write_text(json.dumps({"rows": 300, "train": 192}))
    code, _, err = cli(capsys, monkeypatch, "report", str(run))
    assert code == 0, err
    assert "missing_statistics" not in json.loads((run / "summary.json").read_text())
    assert "Missing statistics" not in (run / "report.html").read_text()


def test_a_failed_report_leaves_the_folder_as_it_was(capsys, monkeypatch, tmp_path):
    run = _marked(tmp_path / "flows", "flows")
    (run / "analysis").mkdir()
    (run / "analysis" / "density-gaussians.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    before = sorted(p.name for p in run.iterdir())
    code, _, err = cli(capsys, monkeypatch, "report", str(run))
    assert code == 2 and "density-gaussians analysis" in err and "is damaged" in err, err
    assert sorted(p.name for p in run.iterdir() if p.name != ".sciprune.lock") == before  # no results.npz, no summary


def test_notes_are_collected_only_while_a_report_is_made(tmp_path):
    assert read_result_json(tmp_path / "none.json", "x") is None  # outside a report: nothing to note, no error
    with collecting_notes() as notes:
        assert read_result_array(tmp_path / "none.npy", "field") is None
        assert read_result_arrays(tmp_path / "none.npz", "analysis") is None
        read_result_array(tmp_path / "none.npy", "field")  # the same note once
    assert notes == ["field (none.npy): it is missing; its statistics are missing from this report",
                     "analysis (none.npz): it is missing; its statistics are missing from this report"]


def test_readers_round_trip_what_sciprune_writes(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    np.savez(tmp_path / "b.npz", x=np.ones(2), y=np.arange(3))
    (tmp_path / "c.json").write_text('{"k": [1, 2]}')
    assert np.array_equal(read_result_array(tmp_path / "a.npy", "a"), np.arange(6.0).reshape(3, 2))
    arrays = read_result_arrays(tmp_path / "b.npz", "b")
    assert arrays is not None and set(arrays) == {"x", "y"} and arrays["y"].tolist() == [0, 1, 2]
    assert read_result_json(tmp_path / "c.json", "c") == {"k": [1, 2]}


@pytest.mark.parametrize("data, why", [(b"\xff\xfe", "not UTF-8 text"), (b"a,b\n1,2,3\n", "number of values differs"),
                                       (b"a,b\n1\n", "number of values differs")])
def test_a_damaged_table_is_one_line(tmp_path, data, why):
    (tmp_path / "t.csv").write_bytes(data)
    with pytest.raises(InputError, match=why):
        read_csv(tmp_path / "t.csv")


def test_a_checkpoint_without_its_keys_names_the_file_and_the_key(tmp_path):
    save_state(tmp_path / "stage_001.pt", {"state": {"w": torch.ones(2)}})
    saved = load_state(tmp_path / "stage_001.pt")
    assert saved["state"]["w"].tolist() == [1.0, 1.0] and saved.get("rows") is None
    with pytest.raises(InputError, match=r"run state '.*stage_001.pt' has no 'rows' entry \(it holds 'state'\); expected a checkpoint"):
        saved["rows"]


@pytest.mark.parametrize("data", [b"1" * 5000, b"[" * 100_000, b'{"a": NaN', b"\xef\xbb\xbf{}"])
def test_json_that_python_cannot_convert_is_one_line(tmp_path, data):
    from sciprune.runner.results import read_marker

    (tmp_path / "d.json").write_bytes(data)
    with pytest.raises(InputError, match=r"'.*d.json' is damaged \(not (valid JSON|UTF-8)"):
        read_result_json(tmp_path / "d.json", "data summary")
    (tmp_path / ".sciprune").mkdir()
    (tmp_path / ".sciprune" / "run.json").write_bytes(data)
    with pytest.raises(InputError, match=r"has a damaged sciprune marker"):
        read_marker(tmp_path)
