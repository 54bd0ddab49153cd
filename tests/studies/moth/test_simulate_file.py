"""``simulate_file``: the same file for any chunking or worker count, resumable, checked on load."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from sciprune.errors import InputError
from sciprune.studies.moth.data import load, read_table
from sciprune.studies.moth.simulate import COLUMNS, simulate_file


def _content(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    with h5py.File(path, "r") as f:
        return f["samples"][:], f["index"][:], {k: str(v) for k, v in f.attrs.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moth") / "ref.h5"
    simulate_file(path, 300, seed=5, chunk=300)
    return path


def test_file_layout_and_metadata(reference: Path):
    rows, index, attrs = _content(reference)
    assert rows.shape == (300, 19) and list(index) == list(range(300))
    assert json.loads(attrs["columns"]) == list(COLUMNS)
    assert attrs["seed"] == "5" and attrs["next_sample"] == "300"
    assert json.loads(attrs["integrator"])["method"].startswith("Rodas4")
    assert {"ranges", "constants", "version"} <= set(attrs)
    assert np.all(rows[:, [0, 2]] == 0.0)  # x0 = y0 = 0
    assert np.all((rows[:, 16] >= 0) & (rows[:, 16] <= 44300))


def test_same_file_for_any_chunk_size_and_after_a_resume(reference: Path, tmp_path: Path):
    simulate_file(tmp_path / "a.h5", 300, seed=5, chunk=70)
    assert all(np.array_equal(x, y) for x, y in zip(_content(tmp_path / "a.h5")[:2], _content(reference)[:2]))
    assert _content(tmp_path / "a.h5")[2] == _content(reference)[2]
    # a run killed after 130 samples, with half a chunk already appended after its last complete one
    simulate_file(tmp_path / "b.h5", 130, seed=5, chunk=65)
    with h5py.File(tmp_path / "b.h5", "a") as f:
        f["samples"].resize((150, 19))
        f["index"].resize((150,))
        f["index"][130:] = np.arange(130, 150)
    simulate_file(tmp_path / "b.h5", 300, seed=5, chunk=100, resume=True)
    assert all(np.array_equal(x, y) for x, y in zip(_content(tmp_path / "b.h5")[:2], _content(reference)[:2]))


def test_same_file_on_two_dask_workers(reference: Path, tmp_path: Path):
    simulate_file(tmp_path / "w.h5", 300, seed=5, chunk=64, workers=2)
    assert np.array_equal(_content(tmp_path / "w.h5")[0], _content(reference)[0])


def test_bad_input_is_one_line(reference: Path, tmp_path: Path):
    with pytest.raises(InputError, match="positive number of samples; got 0"):
        simulate_file(tmp_path / "x.h5", 0)
    with pytest.raises(InputError, match="exists; pass --resume"):
        simulate_file(reference, 10, seed=5)
    with pytest.raises(InputError, match="another seed"):
        simulate_file(reference, 400, seed=6, resume=True)
    other = tmp_path / "old.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("samples", data=np.zeros((3, 19)))
        f.attrs["version"] = "moth-0"
        f.attrs["columns"] = json.dumps(list(COLUMNS))
    with pytest.raises(InputError, match="data version 'moth-0'"):
        read_table(other)
    with h5py.File(other, "a") as f:
        f.attrs["version"] = _content(reference)[2]["version"]
        f.attrs["columns"] = json.dumps(list(COLUMNS[:-1]))
    with pytest.raises(InputError, match="lacks the columns tau0"):
        read_table(other)


def test_nan_rows_are_dropped_and_counted(reference: Path, tmp_path: Path):
    path = tmp_path / "nan.h5"
    path.write_bytes(reference.read_bytes())
    with h5py.File(path, "a") as f:
        f["samples"][[3, 10], 9] = np.nan
    data = load(path, seed=0)
    assert data.dropped_nan == 2 and data.rows == 298
    assert len(data.train.x) + len(data.val.x) + len(data.test.x) == 298
    assert data.train.x.shape[1] == 10 and data.train.y.shape[1] == 7
    assert float(data.train.x.min()) == -0.5 and float(data.train.y.max()) == 0.5
    again = load(path, seed=0)
    assert np.array_equal(again.test.y.numpy(), data.test.y.numpy())
