"""Property-based fuzzing of the data-file readers: moth's HDF5 reader, nif's .npz / .npy / .csv reader,
and ``moth simulate --resume`` on a mutated file. Whatever the bytes: a valid result or one InputError
line, never another exception, never a hang, and a refused resume leaves the file as it was."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sciprune.errors import InputError
from sciprune.studies.moth.data import read_file
from sciprune.studies.moth.simulate import simulate_file
from sciprune.validate.arrays import read_array_file
from tests.fuzz.test_fuzz_readers import FAST, mutated

_FOLDER = tempfile.TemporaryDirectory(prefix="sciprune-fuzz-files-")


def _file(data: bytes, name: str) -> Path:
    path = Path(_FOLDER.name) / name
    path.write_bytes(data)
    return path


def _moth_file() -> bytes:
    path = Path(_FOLDER.name) / "moth-good.h5"
    simulate_file(path, 40, seed=1, chunk=20)
    return path.read_bytes()


MOTH = _moth_file()
TABLE = np.column_stack([np.arange(6.0), np.linspace(0, 1, 6), np.cos(np.arange(6.0))])


def _saved(fn, name: str) -> bytes:
    buf = io.BytesIO()
    fn(buf, TABLE) if name == "npy" else fn(buf, data=TABLE)
    return buf.getvalue()


NPZ, NPZ_DEFLATED, NPY = _saved(np.savez, "npz"), _saved(np.savez_compressed, "npz"), _saved(np.save, "npy")
CSV = ("p,x,u\n" + "\n".join(",".join(f"{v:.6g}" for v in row) for row in TABLE) + "\n").encode()


def _valid_or_one_line(fn, *args) -> object:
    try:
        return fn(*args)
    except InputError as err:
        assert str(err) and "\n" not in str(err)
        return None


@FAST
@given(st.one_of(mutated(MOTH), st.binary(max_size=600)))
def test_moth_hdf5_reader(data: bytes) -> None:
    table = _valid_or_one_line(read_file, _file(data, "fuzz.h5"))
    if table is not None:
        assert table.x.shape[1] == 10 and table.y.shape[1] == 7 and table.x.shape[0] == table.y.shape[0]


@FAST
@given(mutated(MOTH))
def test_resume_of_a_mutated_file_writes_only_after_it_validates(data: bytes) -> None:
    path = _file(data, "resume.h5")
    try:
        simulate_file(path, 60, seed=1, chunk=20, resume=True)
    except InputError as err:
        assert "\n" not in str(err)
        assert path.read_bytes() == data  # refused: untouched


@FAST
@given(st.one_of(mutated(NPZ), mutated(NPZ_DEFLATED), st.binary(max_size=300)), st.sampled_from([".npz", ".npy", ".csv"]))
def test_npz_reader(data: bytes, suffix: str) -> None:
    arr = _valid_or_one_line(read_array_file, _file(data, "fuzz" + suffix))
    if arr is not None:
        assert arr.ndim == 2 and arr.dtype == np.float64 and np.isfinite(arr).all()


@FAST
@given(st.one_of(mutated(NPY), mutated(CSV), st.text(max_size=200).map(str.encode)), st.sampled_from([".npy", ".csv"]))
def test_npy_and_csv_readers(data: bytes, suffix: str) -> None:
    arr = _valid_or_one_line(read_array_file, _file(data, "fuzz" + suffix))
    if arr is not None:
        assert arr.ndim == 2 and arr.dtype == np.float64 and np.isfinite(arr).all()


def test_every_single_byte_damage_of_a_compressed_npz_is_one_line() -> None:
    """Exhaustive, not sampled: each byte of a ``savez_compressed`` file inverted in turn (a damaged deflate
    stream makes zlib raise its own error before the CRC is checked; Hypothesis found it once in ~5 runs)."""
    for i in range(len(NPZ_DEFLATED)):
        damaged = bytearray(NPZ_DEFLATED)
        damaged[i] ^= 0xFF
        _valid_or_one_line(read_array_file, _file(bytes(damaged), "flipped.npz"))
