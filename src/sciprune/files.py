"""Atomic writes: a file is either its old content or its complete new content, never half.

Every result file (config, metrics, summary, checkpoints, plots, report) goes through these, so a
killed run never leaves a truncated file behind and a resumed run can trust what it finds.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sciprune.core.atomic import atomic_write_bytes as atomic_write_bytes
from sciprune.core.atomic import atomic_write_with as atomic_write_with


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
    """Rows of a CSV written by :func:`atomic_write_csv`, numbers parsed back to int / float."""
    with open(path, newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


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
