"""Atomic file writes: a file holds either its old content or its complete new content.

A write goes to a temporary file ``.NAME.XXXXXXXX.tmp`` beside its target and is renamed onto it.
Inside a folder that keeps a journal (one of its ancestors holds :data:`JOURNAL`, a results
folder's ``.sciprune/pending/``), the temporary's name is recorded there *before* the temporary is
created, and the record is removed after the rename: a killed writer leaves a record naming exactly
the temporary it made, so a later clean-up removes that file and nothing else (a user's own file
that merely looks like a temporary is never touched).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the journal of pending temporaries, relative to the folder that keeps it
JOURNAL = Path(".sciprune") / "pending"


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def journal_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` that keeps a journal of temporaries (``None`` if none)."""
    for d in (folder, *folder.parents):
        if (d / JOURNAL).is_dir():
            return d
    return None


def _create_temporary(folder: Path, name: str) -> tuple[Path, Path | None]:
    """Create an empty temporary for ``folder/name`` (mode as ``open()`` gives) after journaling its name;
    returns the temporary and its journal record (or ``None`` outside a journaling folder)."""
    root = journal_root(folder.absolute())
    for _ in range(100):
        token = secrets.token_hex(4)
        tmp = folder / f".{name}.{token}.tmp"
        if os.path.lexists(tmp):  # never record a name a file already has
            continue
        record = None
        if root is not None:
            record = root / JOURNAL / f"{os.getpid()}-{secrets.token_hex(8)}"
            record.write_text(os.path.relpath(tmp.absolute(), root) + "\n")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if record is not None:
                record.unlink(missing_ok=True)
            continue
        os.fchmod(fd, 0o666 & ~_umask())  # a result file gets the mode open() would give
        os.close(fd)
        return tmp, record
    raise FileExistsError(f"no free temporary name for {folder / name}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_with(path: str | Path, writer: Callable[[str], Any]) -> None:
    """Call ``writer(tmp_path)`` to produce the file, then rename it onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, record = _create_temporary(path.parent, path.name)
    try:
        writer(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if record is not None:
            record.unlink(missing_ok=True)
