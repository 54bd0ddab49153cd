"""Numeric tables of a user: ``.npz``, ``.npy`` and ``.csv`` files read into a 2-D float64 array, or
refused with one line of our own (never a library's message or advice, never a pickle).

The checks, in order:

* the path (:func:`~sciprune.validate.input_file`: directories, FIFOs, devices, sockets are named and
  never opened); a 0-byte file is "empty"; a file larger than this machine's memory is refused;
* ``.npz``: a zip archive (its signature, its central directory, every member's CRC) of ``.npy``
  members; the array ``data`` (or the only / first one) is chosen;
* ``.npy`` (alone or in a ``.npz``): the magic string and header are parsed *before* any data is read,
  so an object array (pickled Python objects) is refused without loading it, and a header that
  promises more bytes than the file holds is "truncated";
* ``.csv``: UTF-8 text (a BOM is allowed; a NUL byte means a binary file), comma separated, a header
  row allowed when it is not numeric, every row with the same number of fields, every field a real
  number;
* the array: 2-D (a 1-D array is a single row or column only by guessing: refused), at least one row,
  real numbers (complex is refused: its imaginary part would be lost; text, records, objects and
  true/false values are refused), every value finite and within ±:data:`MAX_MAGNITUDE`. numpy's
  warnings while converting become one InputError line.
"""

from __future__ import annotations

import ast
import io
import math
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sciprune.errors import InputError
from sciprune.validate.memory import format_bytes, physical_memory
from sciprune.validate.paths import input_file

#: the largest magnitude a value may have: float32's range (a model in float32 overflows beyond it)
MAX_MAGNITUDE = float(np.finfo(np.float32).max)
SUFFIXES = (".npz", ".npy", ".csv")
_NPY_MAGIC = b"\x93NUMPY"


def _error(what: str, path: Path, problem: str, expected: str) -> InputError:
    return InputError(f"{what} {str(path)!r} {problem}; expected {expected}")


def _npy_header(f: BinaryIO, what: str, path: Path, expected: str, member: str = "") -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """``(shape, fortran_order, dtype, header_end)`` of the ``.npy`` stream ``f``, parsed by hand
    (numpy's own parser would accept an object dtype and tell the user to pass ``allow_pickle``)."""
    where = f"{member} " if member else ""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        raise _error(what, path, f"{where}is not a .npy array (no NumPy magic string)", expected)
    major = magic[6]
    if major == 1:
        raw = f.read(2)
        size = struct.unpack("<H", raw)[0] if len(raw) == 2 else -1
    elif major in (2, 3):
        raw = f.read(4)
        size = struct.unpack("<I", raw)[0] if len(raw) == 4 else -1
    else:
        raise _error(what, path, f"{where}has .npy format version {major}; expected version 1-3 (from numpy.save)", expected)
    if not 0 <= size <= 1 << 16:
        raise _error(what, path, f"{where}has a truncated or oversized .npy header", expected)
    text = f.read(size)
    try:
        header = ast.literal_eval(text.decode("latin-1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise _error(what, path, f"{where}has an unreadable .npy header", expected) from None
    ok = (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}
          and isinstance(header["shape"], tuple) and all(isinstance(d, int) and d >= 0 for d in header["shape"])
          and isinstance(header["fortran_order"], bool))
    if not ok:
        raise _error(what, path, f"{where}has a malformed .npy header", expected)
    descr = header["descr"]
    if not isinstance(descr, str):
        raise _error(what, path, f"{where}holds records (a structured dtype)", "an array of real numbers")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise _error(what, path, f"{where}has the unknown dtype {descr!r}", expected) from None
    _check_dtype(dtype, what, path, where)
    return header["shape"], header["fortran_order"], dtype, f.tell()


def _check_dtype(dtype: np.dtype[Any], what: str, path: Path, where: str = "") -> None:
    if dtype.kind == "c":
        raise _error(what, path, f"{where}holds complex numbers (its imaginary part would be lost)",
                     "real numbers (store real and imaginary parts as separate columns)")
    if dtype.kind not in "fiu" or dtype.names is not None or dtype.subdtype is not None:
        kind = {"O": "Python objects (a pickle, which sciprune never loads)", "b": "true/false values", "U": "text",
                "S": "bytes", "V": "records or raw bytes", "M": "dates", "m": "time spans"}.get(dtype.kind, f"dtype {dtype}")
        raise _error(what, path, f"{where}holds {kind}", "an array of real numbers")


def _memory(nbytes: float, what: str, path: Path) -> None:
    if nbytes > physical_memory():
        raise _error(what, path, f"needs about {format_bytes(nbytes)} in memory; this machine has "
                     f"{format_bytes(physical_memory())}", "a smaller file")


def _read_npy(f: BinaryIO, available: int, what: str, path: Path, expected: str, member: str = "") -> np.ndarray:
    shape, fortran, dtype, start = _npy_header(f, what, path, expected, member)
    count = math.prod(shape)
    _memory(8.0 * count, what, path)
    if count * dtype.itemsize > available - start:
        where = f"{member} " if member else ""
        raise _error(what, path, f"{where}is truncated (its header promises {count * dtype.itemsize} bytes of data, "
                     f"{max(available - start, 0)} follow)", expected)
    data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C")


def _read_npz(path: Path, what: str, expected: str) -> np.ndarray:
    with path.open("rb") as f:
        head = f.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise _error(what, path, "is not a .npz file (not a zip archive)", expected)
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if not i.is_dir()]
            if not members:
                raise _error(what, path, "holds no array", expected)
            chosen = next((i for i in members if i.filename == "data.npy"), members[0])
            if chosen.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _error(what, path, f"compresses {chosen.filename!r} with a method numpy does not write", expected)
            _memory(float(chosen.file_size), what, path)
            with z.open(chosen) as member:
                raw = member.read()  # checks the member's CRC at its end
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError,
            RuntimeError):  # zlib.error: a damaged deflate stream, raised before the member's CRC is checked
        raise _error(what, path, "is a damaged or truncated .npz (its zip structure or a checksum does not hold)",
                     expected) from None
    return _read_npy(io.BytesIO(raw), len(raw), what, path, expected, f"array {chosen.filename.removesuffix('.npy')!r}")


def _fields(line: str) -> list[str]:
    return [v.strip() for v in line.split(",")]


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in _fields(line)]
    except ValueError:
        return False
    return True


def _read_csv(path: Path, what: str, expected: str) -> np.ndarray:
    data = path.read_bytes()
    nul = data.find(b"\0")
    if nul >= 0:
        raise _error(what, path, f"is a binary file (a NUL byte at offset {nul})", expected)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _error(what, path, f"is not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x})", expected) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if lines and not all(_numeric(v) or _complex(v) for v in _fields(lines[0][1])):
        lines = lines[1:]  # a header row (a row of complex numbers is data, refused below)
    if not lines:
        raise _error(what, path, "has no data rows (only a header, comments or blank lines)", expected)
    try:  # the fast path; on any failure the loop below names the line at fault
        fast = np.loadtxt(io.StringIO("\n".join(line for _, line in lines)), delimiter=",", ndmin=2, dtype=np.float64,
                          comments=None)
        if fast.shape[0] == len(lines):
            return fast
    except (ValueError, Warning):
        pass
    width = len(_fields(lines[0][1]))
    rows = np.empty((len(lines), width), dtype=np.float64)
    for i, (n, line) in enumerate(lines):
        fields = _fields(line)
        if len(fields) != width:
            raise _error(what, path, f"line {n} has {len(fields)} fields, the first data row {width}", expected)
        try:
            rows[i] = [float(v) for v in fields]
        except ValueError:
            bad = next(v for v in fields if not _numeric(v))
            hint = " (a complex number: its imaginary part would be lost)" if _complex(bad) else ""
            raise _error(what, path, f"line {n} holds {bad[:40]!r}, not a real number{hint}", expected) from None
    return rows


def _complex(text: str) -> bool:
    try:
        complex(text.replace(" ", ""))
    except ValueError:
        return False
    return True


def read_array_file(raw: str | os.PathLike[str], what: str = "data file",
                    expected: str = "a .npz, .npy or .csv file of rows x columns of numbers") -> np.ndarray:
    """The 2-D float64 array in ``raw`` (a ``.npz``, ``.npy`` or ``.csv`` file), checked as the module says."""
    path = input_file(raw, what, expected)
    if path.suffix.lower() not in SUFFIXES:
        raise _error(what, path, f"has suffix {path.suffix!r}", "a .npz, .npy or .csv file")
    size = path.stat().st_size
    if size == 0:
        raise _error(what, path, "is empty (0 bytes)", expected)
    _memory(float(size), what, path)
    suffix = path.suffix.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if suffix == ".npz":
                arr = _read_npz(path, what, expected)
            elif suffix == ".npy":
                with path.open("rb") as f:
                    arr = _read_npy(f, size, what, path, expected)
            else:
                arr = _read_csv(path, what, expected)
            return _checked(arr, what, path)
    except InputError:
        raise
    except (Warning, MemoryError, OSError, ValueError, TypeError, OverflowError) as err:
        raise _error(what, path, f"could not be read ({type(err).__name__})", expected) from None


def _checked(arr: np.ndarray, what: str, path: Path) -> np.ndarray:
    if arr.ndim != 2:
        raise _error(what, path, f"holds an array of shape {arr.shape}", "a 2-D array: rows x columns")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise _error(what, path, f"holds an empty array of shape {arr.shape}", "at least one row and one column")
    _check_dtype(arr.dtype, what, path)
    with np.errstate(all="raise"):
        out = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(out)
    if not finite.all():
        r, c = (int(i) for i in np.argwhere(~finite)[0])
        raise _error(what, path, f"column {c} holds NaN or inf (at row {r})", "finite numbers (drop or fill those rows)")
    big = np.abs(out) > MAX_MAGNITUDE
    if big.any():
        r, c = (int(i) for i in np.argwhere(big)[0])
        raise _error(what, path, f"holds {out[r, c]:.3g} at row {r}, column {c}, beyond float32's range "
                     f"(±{MAX_MAGNITUDE:.3g})", "values of a physical field (rescale the column)")
    return out
