"""Special files: what a path is, from ``lstat``/``stat`` alone, so nothing is ever opened to find out.

A FIFO opened for reading blocks until a writer appears, ``/dev/zero`` never ends and a socket cannot
be opened at all; a reader of a user's file must therefore look at the file's *type* before it opens
it. :func:`kind` names the type in words a user recognises ("a named pipe (FIFO)", "a character
device", ...); :func:`regular_file` refuses anything but a regular file (after following links) with
one line that names what the path is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sciprune.errors import InputError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISREG, "a file"),
)


def kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is (links followed): ``"a directory"``, ``"a named pipe (FIFO)"``, ...; ``None``
    when nothing is there (or a link points nowhere). Never opens the path."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:  # ELOOP (a link cycle), EACCES on a parent, ENAMETOOLONG, ...
        return f"unreachable ({err.strerror or type(err).__name__})"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def regular_file(path: Path, raw: str | os.PathLike[str], what: str, expected: str) -> None:
    """Refuse ``path`` unless it is a regular file (it is known to exist)."""
    found = kind(path)
    if found == "a file":
        return
    if found is None:
        raise InputError(f"{what} {str(raw)!r} is a link that points nowhere; expected {expected}")
    raise InputError(f"{what} {str(raw)!r} is {found}; expected {expected}")
