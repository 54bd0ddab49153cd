"""A results directory is sciprune's or refused; one run at a time holds it.

The contract (every study inherits it; see docs/design.md):

* ``--out`` names a new folder (created), an empty folder, or a sciprune results folder (one with
  ``config.yaml``). A folder with other files and no ``config.yaml`` is refused with exit status 2
  and nothing in it is touched; so is a path that is a file, the empty string, a path under a system
  folder or below a regular file.
* A folder holding computed results is reused only with ``--resume`` and the identical config.
* :func:`hold` takes ``.sciprune.lock`` (a ``filelock`` lock: released by the OS if the process dies)
  and writes the holder's pid to ``.sciprune.pid``; a second run on the folder is refused with that
  pid while the first holds it.
* Under the lock, stray temporary files of interrupted atomic writes (``.NAME.XXXXXXXX.tmp``) are
  removed before the run continues.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from sciprune.errors import InputError
from sciprune.validate import output_dir

CONFIG = "config.yaml"
LOCK = ".sciprune.lock"
PID = ".sciprune.pid"
_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")
_OWN = {LOCK, PID}


def holds_results(out: Path) -> bool:
    """Whether ``out`` holds anything computed: any file but ``config.yaml``, the lock and stray temporaries
    (a run that failed on bad input before computing holds nothing)."""
    return any(p.is_file() and p.name not in (CONFIG, *_OWN) and not _TMP.match(p.name) for p in out.rglob("*"))


def check_out(raw: str | os.PathLike[str], *, what: str = "--out") -> Path:
    """``raw`` as a results folder sciprune may use: new, empty or sciprune's (see the module docstring)."""
    out = output_dir(raw, what)
    if out.is_dir() and not (out / CONFIG).is_file():
        others = sorted(p.name for p in out.iterdir() if p.name not in _OWN and not _TMP.match(p.name))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise InputError(f"{what} {str(raw)!r} is a folder with files that are not a sciprune run ({shown}; no {CONFIG}); "
                             "expected a new or empty folder or an earlier run's results: choose another --out")
    return out


def _pid_of_holder(out: Path) -> str:
    try:
        text = (out / PID).read_text().strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def hold(out: Path) -> Iterator[None]:
    """Hold the lock of results folder ``out`` (which exists) for the duration; refuse if another process does."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(out / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"results folder {str(out)!r} is in use by another sciprune run (pid {_pid_of_holder(out)}); "
                         "wait for it to finish or choose another --out") from None
    except OSError as err:
        raise InputError(f"results folder {str(out)!r} cannot be locked ({err.strerror or err}); choose another --out") from None
    try:
        (out / PID).write_text(f"{os.getpid()}\n")
        yield
    finally:
        with contextlib.suppress(OSError):
            (out / PID).unlink()
        lock.release()


def remove_stray_temporaries(out: Path) -> list[Path]:
    """Delete ``.NAME.XXXXXXXX.tmp`` files an interrupted atomic write left under ``out`` (call under :func:`hold`)."""
    removed = []
    for path in out.rglob(".*.tmp"):
        if path.is_file() and _TMP.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
