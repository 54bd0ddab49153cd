"""Fuzzing the readers of a results folder's own files: whatever the bytes, one InputError line or a value
(``mutated`` is the byte-mutation strategy of ``tests/fuzz``).

Inputs are mutations of files sciprune writes (so the fuzzing gets past the first header check) and
raw bytes: the marker, JSON, ``.npy``, ``.npz``, CSV and ``metrics.csv`` against a study.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciprune.errors import InputError
from sciprune.files import read_csv, read_result_array, read_result_arrays, read_result_json
from sciprune.runner.config import load_preset, validate
from sciprune.runner.report import read_metrics
from sciprune.runner.results import read_marker
from sciprune.runner.study import get_study
from tests.fuzz.test_fuzz_readers import mutated

FAST = settings(max_examples=int(os.environ.get("SCIPRUNE_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(12.0).reshape(6, 2))
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, lim=np.array(3.0), x=np.arange(4))
    return buf.getvalue()


MARKER = json.dumps({"format": "sciprune results folder", "study": "classify", "run_id": "0" * 32}).encode()
METRICS = b"method,variant,seed,stage,sparsity,params_nnz,accuracy,loss\ndense,dense,0,-1,0.0,100,90.0,0.3\nweight,oneshot,0,0,0.5,50,88.0,0.4\n"
CLASSIFY = validate(load_preset("classify", "demo"))


def _only_input_errors(write: bytes, read) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        try:
            read(folder, write)
        except InputError as err:
            assert "\n" not in str(err) and str(err)


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@FAST
@given(st.one_of(mutated(MARKER), st.binary(max_size=200)))
def test_marker(data: bytes) -> None:
    _only_input_errors(data, lambda f, b: read_marker(_file(f, ".sciprune/run.json", b).parents[1]))


@FAST
@given(st.one_of(mutated(b'{"rows": 300, "train": [1, 2.5, null]}'), st.binary(max_size=200)))
def test_json(data: bytes) -> None:
    _only_input_errors(data, lambda f, b: read_result_json(_file(f, "data.json", b), "data summary"))


@FAST
@given(st.one_of(mutated(_npy()), st.binary(max_size=300)))
def test_npy(data: bytes) -> None:
    _only_input_errors(data, lambda f, b: read_result_array(_file(f, "truth.npy", b), "field"))


@FAST
@given(st.one_of(mutated(_npz()), st.binary(max_size=300)))
def test_npz(data: bytes) -> None:
    _only_input_errors(data, lambda f, b: read_result_arrays(_file(f, "a.npz", b), "analysis"))


@FAST
@given(st.one_of(mutated(METRICS), st.binary(max_size=300)))
def test_csv_and_metrics(data: bytes) -> None:
    _only_input_errors(data, lambda f, b: read_csv(_file(f, "timing.csv", b)))
    _only_input_errors(data, lambda f, b: read_metrics(_file(f, "metrics.csv", b).parent, get_study("classify"), CLASSIFY))
