"""Readers that never trust a file: special files, HDF5 (moth), .npz/.npy/.csv (nif), `moth simulate`'s
flags and memory bounds. Each bad input: exit 2, one line naming the problem, nothing created or changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from sciprune.errors import InputError
from sciprune.studies.moth.data import load, read_file
from sciprune.studies.moth.simulate import COLUMNS, VERSION, simulate_file
from sciprune.validate import input_file, parse_bytes
from sciprune.validate.arrays import read_array_file
from tests.runner.helpers import cli


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else p.stat().st_mode.__str__()
            for p in sorted(root.rglob("*")) if not p.is_fifo() and not p.is_socket()}


def _one_line(capsys, monkeypatch, pattern: str, *args: str) -> None:
    code, _, err = cli(capsys, monkeypatch, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and pattern in lines[0], (args, err)


# -- special files --------------------------------------------------------------------------------
@pytest.fixture()
def specials(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    sock = tmp_path / "s.npz"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "zero.npz").symlink_to("/dev/zero")
    (tmp_path / "dangling.npz").symlink_to(tmp_path / "nowhere")
    yield {"fifo": fifo, "socket": sock, "dir": tmp_path / "folder.csv", "zero": tmp_path / "zero.npz",
           "dangling": tmp_path / "dangling.npz"}
    server.close()


@pytest.mark.parametrize(("name", "said"), [("fifo", "is a named pipe (FIFO)"), ("socket", "is a socket"),
                                            ("dir", "is a directory"), ("zero", "is a character device under /dev"),
                                            ("dangling", "is a link that points nowhere")])
def test_special_files_are_named_never_opened(specials, name, said):
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        input_file(specials[name], "data file")  # a FIFO would block here if it were opened


def test_fifo_as_moth_data_or_nif_file_is_refused_before_anything_is_written(specials, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    _one_line(capsys, monkeypatch, "named pipe", "moth", "train", "--preset", "demo", "--data", str(specials["fifo"]),
              "--out", str(out))
    _one_line(capsys, monkeypatch, "character device", "nif", "--preset", "demo", "--set", "data.kind=file",
              "--set", f"data.path={specials['zero']}", "--out", str(out))
    assert not out.exists()


# -- HDF5 (moth) ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moth") / "ok.h5"
    simulate_file(path, 200, seed=3, chunk=100)
    return path


def _variant(src: Path, dst: Path, edit) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


def _replace(name: str, data) -> object:
    def edit(f: h5py.File) -> None:
        del f[name]
        if data is not None:
            f[name] = data
    return edit


def _group(f: h5py.File) -> None:
    del f["samples"]
    f.create_group("samples")


def _attr(key: str, value) -> object:
    def edit(f: h5py.File) -> None:
        f.attrs[key] = value
    return edit


def _huge(f: h5py.File) -> None:
    f["samples"][5, COLUMNS.index("F")] = 1e308


def _external(f: h5py.File) -> None:
    del f["samples"]
    f["samples"] = h5py.ExternalLink("/dev/zero", "x")


HDF5_CASES = [
    ("no-samples", _replace("samples", None), "has no dataset 'samples'"),
    ("group", _group, "'samples' is a group, not a dataset"),
    ("1-d", _replace("samples", np.zeros(19)), "has shape (19,); expected a 2-D dataset"),
    ("columns", _replace("samples", np.zeros((5, 18))), "has 18 columns; expected 19"),
    ("strings", _replace("samples", np.array([["a"] * 19] * 3, dtype="S1")), "holds text"),
    ("complex", _replace("samples", np.zeros((3, 19), complex)), "holds complex numbers"),
    ("compound", _replace("samples", np.zeros(3, dtype=[("a", "f8"), ("b", "f8")])), "expected a 2-D dataset"),
    ("external-link", _external, "ExternalLink"),
    ("columns-not-json", _attr("columns", "[F, alpha"), "attribute 'columns' is not JSON"),
    ("columns-not-list", _attr("columns", json.dumps({"a": 1})), "attribute 'columns' is {'a': 1}"),
    ("columns-int", _attr("columns", 7), "attribute 'columns' is int; expected text"),
    ("next-negative", _attr("next_sample", -4), "attribute 'next_sample' is -4"),
    ("next-text", _attr("next_sample", "many"), "attribute 'next_sample' is 'many'"),
    ("version", _attr("version", "moth-9"), "data version 'moth-9'"),
    ("index-short", _replace("index", np.arange(50)), "200 rows, 50 sample indices"),
    ("index-order", _replace("index", np.arange(200)[::-1].copy()), "sample indices (expected as many, increasing)"),
    ("overflow", _huge, "beyond the float32 range"),
]


@pytest.mark.parametrize(("name", "edit", "said"), HDF5_CASES, ids=[c[0] for c in HDF5_CASES])
def test_bad_hdf5_files_are_one_line(moth_file, tmp_path, name, edit, said):
    path = _variant(moth_file, tmp_path / f"{name}.h5", edit)
    with pytest.raises(InputError) as err:
        load(path, seed=0)
    assert said in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("name", "data", "said"), [
    ("empty", b"", "is empty (0 bytes)"), ("text", b"x,y\n1,2\n", "not an HDF5 file"),
    ("truncated", None, "damaged or truncated HDF5 file"),
])
def test_broken_containers(moth_file, tmp_path, name, data, said):
    path = tmp_path / f"{name}.h5"
    path.write_bytes(moth_file.read_bytes()[:3000] if data is None else data)
    with pytest.raises(InputError, match=re.escape(said)):
        read_file(path)


def test_half_written_file_is_used_with_a_note_and_its_partial_chunk_cut(moth_file, tmp_path):
    whole = read_file(moth_file)
    assert whole.note == ""

    def half(f: h5py.File) -> None:  # killed after 100 of 200 samples, 20 rows of the next chunk appended
        f.attrs["next_sample"] = 100
        f["index"][100:120] = np.arange(100, 120)
    part = read_file(_variant(moth_file, tmp_path / "half.h5", half))
    assert "unfinished simulation (100 of 200 samples)" in part.note and "--resume" in part.note
    rows = int(np.searchsorted(h5py.File(moth_file, "r")["index"][:], 100))
    assert np.array_equal(part.x, whole.x[:rows]) and np.array_equal(part.y, whole.y[:rows])


# -- moth simulate ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "said"), [
    (["--out", "{d}"], "is a directory"),
    (["--out", "{d}/plain.txt/x.h5"], "is a file, not a folder"),
    (["--out", "/proc/moth.h5"], "under /proc"),
    (["--out", "{d}/s.h5", "--seed", str(2**64 + 1)], "--seed got 18446744073709551617: expected a seed, an integer in [0, 2**63)"),
    (["--out", "{d}/s.h5", "--seed", "-1"], "--seed got -1: expected a seed, an integer in [0, 2**63)"),
    (["--out", "{d}/s.h5", "--workers", "0"], "--workers must be an integer in [1, 1024]"),
    (["--out", "{d}/s.h5", "--workers", "-2"], "--workers must be an integer in [1, 1024]"),
    (["--out", "{d}/s.h5", "--scheduler", "nohost"], "is not a scheduler address"),
    (["--out", "{d}/s.h5", "--chunk", "0"], "--chunk must be an integer"),
], ids=lambda v: "-".join(v) if isinstance(v, list) else "")
def test_simulate_flags(tmp_path, capsys, monkeypatch, args, said):
    (tmp_path / "plain.txt").write_text("mine")
    before = _tree(tmp_path)
    _one_line(capsys, monkeypatch, said, "moth", "simulate", "--samples", "10", "-q", *[a.format(d=tmp_path) for a in args])
    assert _tree(tmp_path) == before


def test_simulate_refuses_a_trillion_samples_naming_size_and_time(tmp_path, capsys, monkeypatch):
    _one_line(capsys, monkeypatch, "would write about 160 TB and take about", "moth", "simulate", "--samples",
              str(10**12), "--out", str(tmp_path / "big.h5"))
    assert not (tmp_path / "big.h5").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_simulate_into_a_read_only_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    _one_line(capsys, monkeypatch, "is not writable", "moth", "simulate", "--samples", "10", "--out", str(folder / "a.h5"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "group", "no-next"])
def test_resume_of_a_damaged_file_never_writes_into_it(moth_file, tmp_path, damage):
    path = tmp_path / "d.h5"
    data = moth_file.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    else:
        _variant(moth_file, path, _group if damage == "group" else lambda f: f.attrs.__delitem__("next_sample"))
    before = path.read_bytes()
    with pytest.raises(InputError):
        simulate_file(path, 400, seed=3, chunk=100, resume=True)
    assert path.read_bytes() == before


# -- nif arrays -------------------------------------------------------------------------------------
def _npz(arrays: dict[str, np.ndarray], pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=pickle)
            z.writestr(f"{name}.npy", member.getvalue())
    return buf.getvalue()


GOOD = np.column_stack([np.repeat(np.arange(4.0), 5), np.tile(np.linspace(0, 1, 5), 4), np.arange(20.0) ** 0.5])
ARRAY_CASES = [
    ("empty.npz", b"", "is empty (0 bytes)"),
    ("truncated.npz", _npz({"data": GOOD})[:300], "damaged or truncated .npz"),
    ("text.npz", b"t,x,u\n1,2,3\n", "not a .npz file (not a zip archive)"),
    ("pickle.npz", _npz({"data": np.array([{"a": 1}, None], dtype=object)}, pickle=True), "Python objects (a pickle"),
    ("complex.npz", _npz({"data": GOOD + 1j}), "complex numbers (its imaginary part would be lost)"),
    ("strings.npz", _npz({"data": np.array([["a", "b"]])}), "holds text"),
    ("bools.npz", _npz({"data": np.ones((3, 3), bool)}), "true/false values"),
    ("records.npz", _npz({"data": np.zeros(3, [("a", "f8")])}), "records"),
    ("oned.npz", _npz({"data": np.arange(5.0)}), "shape (5,)"),
    ("noarray.npz", _npz({}), "holds no array"),
    ("huge.npz", _npz({"data": np.where(GOOD == 0, 1e300, GOOD)}), "beyond float32's range"),
    ("nan.npy", None, "holds NaN or inf"),
    ("latin1.csv", "t,x,u\n1,2,3\ncafé,1,2\n".encode("latin-1"), "is not UTF-8 text (byte 15 is 0xe9)"),
    ("binary.csv", b"\x00\x01\x02\xff" * 10, "is a binary file"),
    ("header.csv", b"t,x,u\n", "has no data rows"),
    ("letters.csv", b"t,x,u\n1,2,3\n4,five,6\n", "line 3 holds 'five', not a real number"),
    ("complex.csv", b"1,2,3+4j\n5,6,7\n", "a complex number"),
    ("ragged.csv", b"1,2,3\n4,5\n", "line 2 has 2 fields, the first data row 3"),
    ("data.txt", b"1,2,3\n", "has suffix '.txt'"),
]


@pytest.mark.parametrize(("name", "data", "said"), ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_bad_array_files_are_one_line_of_our_own(tmp_path, name, data, said):
    path = tmp_path / name
    if data is None:
        np.save(path, np.where(GOOD == 1.0, np.nan, GOOD))
    else:
        path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_array_file(path)
    text = str(err.value)
    assert said in text and "\n" not in text and "allow_pickle" not in text and "numpy" not in text.lower()


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".csv"])
def test_good_array_files_read_exactly(tmp_path, suffix):
    path = tmp_path / f"ok{suffix}"
    if suffix == ".npz":
        np.savez_compressed(path, other=np.zeros((2, 2)), data=GOOD)
    elif suffix == ".npy":
        np.save(path, np.asfortranarray(GOOD.astype(">f4")))
    else:
        path.write_text("\ufeffp,x,u\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in GOOD) + "\n")
    got = read_array_file(path)
    expect = GOOD.astype(np.float32).astype(np.float64) if suffix == ".npy" else GOOD
    assert got.dtype == np.float64 and np.array_equal(got, expect)


def test_nif_refusals_come_before_the_results_folder(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"")
    base = ["nif", "--preset", "demo", "--set", "data.kind=file", "--set", "data.columns.p=1", "--out", str(out)]
    _one_line(capsys, monkeypatch, "is empty (0 bytes)", *base, "--set", f"data.path={bad}")
    two = tmp_path / "two.csv"
    two.write_text("0,0,1\n1,1,2\n")
    _one_line(capsys, monkeypatch, "leaves none to train on", *base, "--set", f"data.path={two}", "--set", "data.test_fraction=0.9")
    const = tmp_path / "const.csv"
    const.write_text("0,5,1\n1,5,2\n2,5,4\n")
    code, _, err = cli(capsys, monkeypatch, *base, "--set", f"data.path={const}")
    assert code == 2 and "column 1 is constant" in err and "drop a dimension" not in err and "data.columns.x is at least 1" in err
    assert not out.exists()


# -- memory bounds --------------------------------------------------------------------------------
@pytest.mark.parametrize(("study", "sets", "said"), [
    ("flows", ["densities.field.layers=64", "densities.field.hidden=65536"], "2.66e+11 parameters"),
    ("flows", ["classifiers.field.hidden=4096", "analysis.grid=4096"], "the decision grid"),
    ("nif", ["model.shape.units=65536"], "generated weights"),
    ("nif", ["data.kind=ks", "data.nx=65536", "data.nt=1000000"], "the data (3.28e+11 rows)"),
    ("nif", ["model.parameter.units=65536"], "parameters"),
    ("moth", ["members=100000", "model.hidden=[4000, 4000]"], "members of 10-4000-4000-7"),
    ("classify", ["model.hidden=[900000, 900000]"], "needs about"),
    ("flows", ["memory_limit=1MB"], "the limit is memory_limit=1 MB"),
    ("nif", ["memory_limit='100 KiB'"], "the limit is memory_limit=102 KB"),
    ("moth", ["memory_limit=12XB"], "expected a number of bytes or a size such as '8GB'"),
])
def test_memory_bounds_refuse_with_the_estimate(tmp_path, capsys, monkeypatch, study, sets, said):
    command = [study, "train"] if study == "moth" else [study]
    args = [a for s in sets for a in ("--set", s)]
    _one_line(capsys, monkeypatch, said, *command, "--preset", "demo", *args, "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("text", "expect"), [("8GB", 8 * 10**9), ("512 MiB", 512 * 2**20), ("1e9", 10**9), (4096, 4096),
                                              (2.5e9, 2_500_000_000), ("3 kb", 3000)])
def test_parse_bytes(text, expect):
    assert parse_bytes(text) == expect


@pytest.mark.parametrize("bad", ["", "GB", "-5", "8 parsecs", True, 0, float("inf"), "1e30TB"])
def test_parse_bytes_refuses(bad):
    with pytest.raises(InputError):
        parse_bytes(bad)
