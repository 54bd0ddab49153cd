"""User paths: the empty string, a path under ``/proc`` / ``/sys`` / ``/dev``, a path below a regular
file, a directory where a file is expected (and the reverse), a missing or unreadable file."""

from __future__ import annotations

import os
from pathlib import Path

from sciprune.errors import InputError
from sciprune.validate.special import kind, regular_file

SYSTEM_DIRS = ("/proc", "/sys", "/dev")


def _path(raw: str | os.PathLike[str], what: str) -> Path:
    text = os.fspath(raw)
    if not text.strip():
        raise InputError(f"{what} is the empty string; expected a path")
    if "\0" in text:
        raise InputError(f"{what} {text!r} contains a NUL character; expected a path")
    path = Path(text).expanduser()
    resolved = path.resolve(strict=False)
    if any(resolved == Path(d) or Path(d) in resolved.parents for d in SYSTEM_DIRS):
        found = kind(path)
        named = f"is {found} under /{resolved.parts[1]}, a system folder" if found not in (None, "a file", "a directory") else \
            f"lies under /{resolved.parts[1]}, a system folder"
        raise InputError(f"{what} {text!r} {named}; expected a path of your own")
    return path


def _below_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that is a regular file (so ``path`` cannot exist), if any."""
    for parent in reversed(path.absolute().parents):
        if parent.is_file():
            return parent
    return None


def _missing(path: Path, raw: str | os.PathLike[str], what: str, expected: str) -> InputError:
    """The error for a ``path`` that is not there: below a regular file (it cannot exist), or missing."""
    blocker = _below_file(path)
    if blocker is not None:
        return InputError(f"{what} {str(raw)!r} cannot exist: {str(blocker)!r} is a file, not a folder; expected {expected}")
    return InputError(f"{what} {str(raw)!r} does not exist; expected {expected}")


def input_file(raw: str | os.PathLike[str], what: str, expected: str = "a file") -> Path:
    """``raw`` as the path of an existing, readable regular file."""
    path = _path(raw, what)
    if kind(path) is None and not path.is_symlink():
        raise _missing(path, raw, what, expected)
    regular_file(path, raw, what, expected)  # a directory, FIFO, device or socket is named, never opened
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {str(raw)!r} cannot be read (permission denied); expected {expected} you may read")
    return path


def input_dir(raw: str | os.PathLike[str], what: str, expected: str = "a folder") -> Path:
    """``raw`` as the path of an existing, readable directory."""
    path = _path(raw, what)
    found = kind(path)
    if found is None and not path.is_symlink():
        raise _missing(path, raw, what, expected)
    if found != "a directory":
        raise InputError(f"{what} {str(raw)!r} is {found or 'a link that points nowhere'}; expected {expected}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{what} {str(raw)!r} cannot be read (permission denied); expected {expected} you may read")
    return path


def output_dir(raw: str | os.PathLike[str], what: str = "--out") -> Path:
    """``raw`` as a directory sciprune may create or write into (its contents are not judged here)."""
    path = _path(raw, what)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {str(raw)!r} is an existing file; expected a results folder (new, or of an earlier run)")
    blocker = _below_file(path)
    if blocker is not None:
        raise InputError(f"{what} {str(raw)!r} cannot be created: {str(blocker)!r} is a file, not a folder")
    existing = next((p for p in [path.absolute(), *path.absolute().parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {str(raw)!r}: {str(existing)!r} is not writable (permission denied); choose another --out")
    return path


def output_file(raw: str | os.PathLike[str], what: str = "--out", expected: str = "a file to write") -> Path:
    """``raw`` as a file sciprune may create (or, when it exists, open for writing): not a directory or
    special file, not below a regular file or under a system folder, in a folder that is writable."""
    path = _path(raw, what)
    found = kind(path)
    if found is not None and found != "a file":
        raise InputError(f"{what} {str(raw)!r} is {found}; expected {expected}")
    blocker = _below_file(path)
    if blocker is not None:
        raise InputError(f"{what} {str(raw)!r} cannot be created: {str(blocker)!r} is a file, not a folder")
    existing = next((p for p in [path.absolute().parent, *path.absolute().parent.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {str(raw)!r}: {str(existing)!r} is not writable (permission denied); choose another {what}")
    if found is not None and not os.access(path, os.R_OK | os.W_OK):
        raise InputError(f"{what} {str(raw)!r} is read-only (permission denied); expected {expected}")
    return path
