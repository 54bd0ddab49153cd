"""Atomic writes: a file is either its old content or its complete new content, never half.

Every result file (config, metrics, summary, checkpoints, plots, report) goes through these, so a
killed run never leaves a truncated file behind and a resumed run can trust what it finds.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sciprune.core import atomic_write_bytes as atomic_write_bytes, atomic_write_with as atomic_write_with
from sciprune.errors import InputError


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON (RFC 8259): NaN and ±inf become ``null``; numpy / torch scalars and arrays become numbers."""
    atomic_write_text(path, json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def strict_json(x: Any) -> Any:
    """``x`` with every non-finite float replaced by ``None`` and array-likes made plain (for strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / torch arrays and scalars
        return strict_json(x.tolist())
    if hasattr(x, "item"):
        return strict_json(x.item())
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def atomic_write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as CSV; the header is the union of keys in first-seen order."""
    rows = list(rows)
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def _csv_cell(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return v


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`atomic_write_csv`, numbers parsed back to int / float; a file that is
    not UTF-8 CSV with one value a column is one :class:`InputError` line."""
    path = Path(path)
    expected = "a CSV table"
    try:
        text = _result_bytes(path, "results table", expected).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except UnicodeDecodeError:
        raise _damaged(path, "results table", "not UTF-8 text", expected) from None
    except csv.Error as err:
        raise _damaged(path, "results table", f"not valid CSV: {err}", expected) from None
    if any(None in row or None in row.values() for row in rows):
        raise _damaged(path, "results table", "a row's number of values differs from the header's", expected)
    return [{k: _parse(v) for k, v in row.items()} for row in rows]


def _parse(v: str) -> Any:
    if v == "":
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if v in ("True", "False"):
        return v == "True"
    return v


# -- reading a results folder's own files back (report and resume never trust them) -------------------

MAX_RESULT_BYTES = 1 << 30
_NOTES: ContextVar[list[str] | None] = ContextVar("sciprune_report_notes", default=None)


@contextlib.contextmanager
def collecting_notes() -> Iterator[list[str]]:
    """Collect, for the report being made, the notes of statistics that could not be read (see :func:`note_missing`)."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def note_missing(path: str | Path, what: str, why: str = "it is missing") -> None:
    """Record that ``what`` (``path``) is left out of the report because ``why``: the report names it."""
    notes = _NOTES.get()
    text = f"{what} ({Path(path).name}): {why}; its statistics are missing from this report"
    if notes is not None and text not in notes:
        notes.append(text)


def _absent(path: Path, what: str) -> bool:
    """Whether ``path`` is not there (then noted for the report: its statistics are missing)."""
    if path.exists() or path.is_symlink():
        return False
    note_missing(path, what)
    return True


def _damaged(path: Path, what: str, why: str, expected: str) -> InputError:
    return InputError(f"{what} {str(path)!r} is damaged ({why}); expected {expected} written by sciprune: delete it "
                      "and make the report again (its statistics are then reported as missing), or re-run into a new --out")


def _result_bytes(path: Path, what: str, expected: str) -> bytes:
    if not path.is_file():
        raise _damaged(path, what, "not a regular file", expected)
    size = path.stat().st_size
    if size > MAX_RESULT_BYTES:
        raise _damaged(path, what, f"{size} bytes, more than {MAX_RESULT_BYTES}", expected)
    return path.read_bytes()


def read_result_json(path: str | Path, what: str, *, kind: type = dict) -> Any:
    """A JSON value of type ``kind`` that sciprune wrote into a results folder; ``None`` (and a report note)
    when the file is missing; a damaged file is one :class:`InputError` line."""
    path = Path(path)
    if _absent(path, what):
        return None
    expected = f"a JSON {'object' if kind is dict else kind.__name__}"
    try:
        value = json.loads(_result_bytes(path, what, expected).decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, what, "not UTF-8 text", expected) from None
    except (ValueError, RecursionError) as err:  # JSONDecodeError, or an integer of more digits than Python converts
        raise _damaged(path, what, f"not valid JSON: {getattr(err, 'msg', type(err).__name__)}", expected) from None
    if not isinstance(value, kind):
        raise _damaged(path, what, f"it holds a JSON {type(value).__name__}", expected)
    return value


_NUMERIC = "biuf"


def _check_array(path: Path, what: str, name: str, value: Any, expected: str) -> Any:
    if not hasattr(value, "dtype"):
        raise _damaged(path, what, f"member {name!r} is not a .npy array", expected)
    if value.dtype.kind not in _NUMERIC:
        raise _damaged(path, what, f"{name!r} holds {value.dtype} values, not numbers", expected)
    return value


def _magic_bytes(path: Path, what: str, expected: str, magic: bytes, not_it: str) -> bytes | None:
    """The bytes of ``path`` if they start with ``magic``; ``None`` (noted) when it is missing."""
    if _absent(path, what):
        return None
    data = _result_bytes(path, what, expected)
    if not data.startswith(magic):
        raise _damaged(path, what, not_it, expected)
    return data


def _npy_why(err: ValueError) -> str:
    """What numpy's ``ValueError`` on reading ``.npy`` data means, in our words (never its advice)."""
    return "an array of Python objects, which needs a pickle" if "allow_pickle" in str(err) else "truncated or unreadable .npy data"


def read_result_array(path: str | Path, what: str) -> Any:
    """A numeric ``.npy`` array sciprune wrote (never a pickle); ``None`` (and a report note) when missing."""
    import numpy as np

    path, expected = Path(path), "a numeric .npy array"
    data = _magic_bytes(path, what, expected, b"\x93NUMPY", "not a .npy file")
    if data is None:
        return None
    try:
        value = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as err:
        raise _damaged(path, what, _npy_why(err), expected) from None
    except Exception:  # numpy's header parser raises what its tokenizer meets: all of it is damage
        raise _damaged(path, what, "truncated or unreadable .npy data", expected) from None
    return _check_array(path, what, path.name, value, expected)


def read_result_arrays(path: str | Path, what: str) -> dict[str, Any] | None:
    """The numeric arrays of an ``.npz`` sciprune wrote (never a pickle); ``None`` (and a report note) when missing."""
    import zipfile

    import numpy as np

    path, expected = Path(path), "a .npz archive of numeric arrays"
    data = _magic_bytes(path, what, expected, b"PK", "not a zip archive")
    if data is None:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if bad := next((n for n in names if not n.endswith(".npy")), None):
                raise _damaged(path, what, f"member {bad!r} is not a .npy array (another program's archive?)", expected)
            if (zf.testzip()) is not None:
                raise _damaged(path, what, "a member fails its checksum", expected)
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: _check_array(path, what, k, z[k], expected) for k in z.files}
    except InputError:
        raise
    except ValueError as err:
        raise _damaged(path, what, _npy_why(err), expected) from None
    except zipfile.BadZipFile:
        raise _damaged(path, what, "a truncated or corrupt zip archive", expected) from None
    except Exception:  # zlib, numpy's header parser, ...: whatever a damaged archive makes them raise
        raise _damaged(path, what, "a truncated or corrupt zip archive, or unreadable .npy data in it", expected) from None
