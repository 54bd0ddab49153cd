"""HDF5 files of a user: opened only when they are regular files that carry the HDF5 signature, read
only through datasets whose schema (kind of object, rank, width, dtype, storage) was checked first.

Every failure is one :class:`~sciprune.errors.InputError` line that names the file and the object:

* the path: a directory, FIFO, device or socket is named and never opened (:mod:`.special`); a
  0-byte file is "empty";
* the container: no HDF5 signature at offset 0, 512, 1024, ... (where HDF5 looks for it) means
  "not an HDF5 file"; h5py's refusal to open it (truncated, corrupt superblock, locked by a writer)
  means "damaged";
* an object: missing, a group (or a link to another file) where a dataset belongs, the wrong rank or
  number of columns, text / compound / object data where numbers belong, external or virtual storage
  (it would read other files, possibly a FIFO); a dataset claiming more bytes than this machine has;
* an attribute: missing, of the wrong type, not the JSON it should hold;
* reading: a chunk that cannot be decompressed or lies past the end of a truncated file.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from sciprune.errors import InputError
from sciprune.validate.memory import format_bytes, physical_memory
from sciprune.validate.paths import input_file

SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _detail(err: BaseException) -> str:
    """The gist of an h5py error: the parenthesised reason of HDF5's message when there is one."""
    text = " ".join(str(err).split())
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1 : -1]
    return (text or type(err).__name__)[:120]


def _has_signature(path: os.PathLike[str], size: int) -> bool:
    """HDF5's signature at offset 0 or at 512, 1024, 2048, ... (after a user block)."""
    offset = 0
    with open(path, "rb") as f:
        while offset + len(SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(SIGNATURE)) == SIGNATURE:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def open_hdf5(raw: str | os.PathLike[str], what: str, expected: str) -> h5py.File:
    """``raw`` opened read-only as an HDF5 file (the caller closes it)."""
    path = input_file(raw, what, expected)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{what} {str(raw)!r} is empty (0 bytes); expected {expected}")
    if not _has_signature(path, size):
        raise InputError(f"{what} {str(raw)!r} is not an HDF5 file (no HDF5 signature in its {size} bytes); expected {expected}")
    try:
        return h5py.File(path, "r")
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, RuntimeError, KeyError, ... for damaged files
        if "unable to lock" in str(err).lower() or "file locking" in str(err).lower():
            raise InputError(f"{what} {str(raw)!r} is in use by another process (HDF5 file lock); expected {expected} "
                             "that no other run is writing") from None
        raise InputError(f"{what} {str(raw)!r} is a damaged or truncated HDF5 file ({_detail(err)}); expected {expected}") from None


def dataset(f: h5py.File, name: str, what: str, expected: str, *, ndim: int, columns: int | None = None,
            kinds: str = "fiu") -> h5py.Dataset:
    """The dataset ``name`` of ``f``: a hard-linked dataset of rank ``ndim`` (``columns`` wide, for 2-D),
    of a numeric dtype whose kind is in ``kinds``, stored inside the file."""
    where = f"{what} {f.filename!r}"
    try:
        link = f.get(name, getlink=True)
        if link is None:
            raise InputError(f"{where} has no dataset {name!r}; expected {expected}")
        if not isinstance(link, h5py.HardLink):
            raise InputError(f"{where}: {name!r} is a {type(link).__name__} (to another object or file), not a dataset; "
                             f"expected {expected}")
        obj = f[name]
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"{where}: {name!r} is a {type(obj).__name__.lower()}, not a dataset; expected {expected}")
        shape, dtype = obj.shape, obj.dtype
        if shape is None or len(shape) != ndim:
            got = "an empty (null) dataspace" if shape is None else f"shape {shape}"
            raise InputError(f"{where}: dataset {name!r} has {got}; expected a {ndim}-D dataset ({expected})")
        if columns is not None and shape[1] != columns:
            raise InputError(f"{where}: dataset {name!r} has {shape[1]} columns; expected {columns} ({expected})")
        if dtype.kind not in kinds or dtype.names is not None or dtype.subdtype is not None:
            raise InputError(f"{where}: dataset {name!r} holds {_describe_dtype(dtype)}; expected numbers ({expected})")
        if obj.external or obj.is_virtual:
            raise InputError(f"{where}: dataset {name!r} keeps its data in other files (external or virtual storage); "
                             f"expected a self-contained file ({expected})")
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged object header may fail in any h5py call
        raise InputError(f"{where}: object {name!r} is damaged ({_detail(err)}); expected {expected}") from None
    return obj


def _describe_dtype(dtype: np.dtype[Any]) -> str:
    if dtype.names is not None:
        return "records (a compound type)"
    if dtype.kind in "SUO" or h5py.check_string_dtype(dtype) is not None:
        return "text"
    return {"c": "complex numbers", "b": "true/false values", "V": "raw bytes"}.get(dtype.kind, f"dtype {dtype}")


def read(ds: h5py.Dataset, what: str, expected: str, rows: int | None = None) -> np.ndarray:
    """The first ``rows`` rows (all by default) of a checked dataset, as float64, after a size check."""
    where = f"{what} {ds.file.filename!r}"
    n = ds.shape[0] if rows is None else min(rows, ds.shape[0])
    nbytes = 8.0 * n * int(np.prod(ds.shape[1:], dtype=np.float64))
    if nbytes > physical_memory():
        raise InputError(f"{where}: dataset {ds.name!r} of shape {ds.shape} needs {format_bytes(nbytes)} in memory; "
                         f"this machine has {format_bytes(physical_memory())} (use fewer rows)")
    try:
        return np.asarray(ds[:n], dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - unreadable chunks of a damaged file
        raise InputError(f"{where}: dataset {ds.name!r} cannot be read ({_detail(err)}: a damaged or truncated file); "
                         f"expected {expected}") from None


def attribute(f: h5py.File, name: str, what: str, expected: str, kind: str) -> Any:
    """Attribute ``name`` of ``f`` as ``kind``: ``"text"``, ``"int"`` (a non-negative integer), ``"json"``
    (a text attribute holding JSON) or ``"any"``; ``None`` when absent."""
    where = f"{what} {f.filename!r}"
    try:
        if name not in f.attrs:
            return None
        value = f.attrs[name]
    except Exception as err:  # noqa: BLE001 - an attribute of a type h5py cannot read
        raise InputError(f"{where}: attribute {name!r} cannot be read ({_detail(err)}); expected {expected}") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.shape == ()):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if kind == "any":
        return value
    if kind in ("text", "json"):
        if not isinstance(value, str):
            raise InputError(f"{where}: attribute {name!r} is {type(value).__name__}; expected text ({expected})")
        if kind == "text":
            return value
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise InputError(f"{where}: attribute {name!r} is not JSON; expected {expected}") from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise InputError(f"{where}: attribute {name!r} is {value!r}; expected a non-negative integer ({expected})")
    return int(value)
