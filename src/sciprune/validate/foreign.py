"""Foreign files: any exception raised while parsing a user's file becomes one InputError line;
a safetensors header is checked entry by entry before any tensor is read."""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
from collections.abc import Iterator
from typing import Any

from sciprune.errors import InputError
from sciprune.validate.paths import input_file


@contextlib.contextmanager
def reading(what: str, path: str | os.PathLike[str], expected: str) -> Iterator[None]:
    """Turn any exception raised while parsing the user's file ``path`` into one InputError line."""
    try:
        yield
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{what} {str(path)!r} asks for more memory than this machine has; expected {expected}") from None
    except Exception as err:  # noqa: BLE001 - a foreign file may make any parser fail in any way
        detail = " ".join(str(err).split())[:160] or type(err).__name__
        raise InputError(f"{what} {str(path)!r} could not be read ({type(err).__name__}: {detail}); expected {expected}") from None


_ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def safetensors_header(path: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, Any]:
    """The JSON header of a safetensors file, checked entry by entry against the file's size.

    Layout: 8 bytes little-endian ``N``, ``N`` bytes of JSON (``name -> {dtype, shape,
    data_offsets}`` plus an optional ``__metadata__`` of strings), then the tensor bytes.
    """
    path = input_file(path, what)
    size = path.stat().st_size
    expect = "an intact safetensors file written by sciprune"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise InputError(f"{what} {str(path)!r} is {size} bytes, too short for a safetensors header; expected {expect}")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 << 20):
            raise InputError(f"{what} {str(path)!r} is corrupt or truncated (its first 8 bytes promise a "
                             f"{n}-byte header in a {size}-byte file); expected {expect}")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError(f"{what} {str(path)!r} is not a safetensors file (its header is not JSON); expected {expect}") from None
    if not isinstance(header, dict):
        raise InputError(f"{what} {str(path)!r} has a safetensors header of type {type(header).__name__}; expected {expect}")
    body = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
                raise InputError(f"{what} {str(path)!r}: its __metadata__ is not a mapping of strings; expected {expect}")
            continue
        ok = (isinstance(entry, dict) and entry.get("dtype") in _ST_DTYPES and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"]))
        if not ok:
            raise InputError(f"{what} {str(path)!r}: tensor {name!r} has a malformed header entry; expected {expect}")
        begin, end = entry["data_offsets"]
        nbytes = math.prod(entry["shape"]) * _ST_DTYPES[entry["dtype"]]
        if not 0 <= begin <= end <= body or end - begin != nbytes:
            raise InputError(f"{what} {str(path)!r}: tensor {name!r} claims bytes {begin}..{end} of {body} for "
                             f"{nbytes} bytes of data (truncated or corrupt); expected {expect}")
    return header
