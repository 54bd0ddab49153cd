"""A results folder is sciprune's only when it carries sciprune's marker; one run at a time holds it.

The contract (every study inherits it; see docs/design.md, "Results folder"):

* **Ownership is proved by a marker.** A run writes ``.sciprune/run.json`` (the run's identity:
  study, run id, sciprune version) *first*, before the lock, ``config.yaml`` or any result. A folder
  is sciprune's only if it carries that marker, never because a ``config.yaml`` (anyone's: a
  docker-compose file, say) or a ``.tmp``-shaped name is there.
* ``--out`` names a new folder, an empty one, or a marked folder. Folders made before the marker
  existed (``config.yaml`` that validates as a sciprune config + a sciprune ``metrics.csv``) are
  *legacy* runs: reported, and resumed with ``--resume`` and the identical config (the marker is
  then added). Anything else is refused with exit status 2 and nothing in it is touched.
* Nothing is created before every check passed (config, flags, the study's data files); a run
  refused by its data inside ``study.run`` of a fresh folder removes what the runner created, so a
  refused run leaves ``--out`` as it found it (absent or empty).
* A folder holding computed results is reused only with ``--resume`` and the identical config.
* :func:`hold` takes ``.sciprune.lock`` (a ``filelock`` lock: released by the OS if the process
  dies) and writes the holder's pid to ``.sciprune.pid``; a second run is refused naming that pid.
* Temporaries: every atomic write records its temporary's name in ``.sciprune/pending/`` before
  creating it (:mod:`sciprune.core._atomic`); under the lock, :func:`remove_recorded_temporaries`
  deletes exactly the files so recorded. A user's ``.name.XXXXXXXX.tmp`` is never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciprune.core._atomic import JOURNAL
from sciprune.errors import InputError
from sciprune.files import atomic_write_json
from sciprune.validate import output_dir

CONFIG = "config.yaml"
LOCK = ".sciprune.lock"
PID = ".sciprune.pid"
OWN_DIR = ".sciprune"
MARKER = f"{OWN_DIR}/run.json"
FORMAT = "sciprune results folder"
MAX_MARKER_BYTES = 64 << 10
_TMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
_RUNNER = {LOCK, PID}


def read_marker(folder: Path, what: str = "results folder") -> dict[str, Any] | None:
    """The marker of ``folder`` (``None`` if it has none); a damaged marker is one clear line."""
    path = folder / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    why = ""
    try:
        if not path.is_file():
            why = "it is not a regular file"
        elif path.stat().st_size > MAX_MARKER_BYTES:
            why = f"it holds {path.stat().st_size} bytes"
        else:
            data = json.loads(path.read_bytes().decode("utf-8"))
            if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("study"), str):
                return data
            why = "it does not hold sciprune's run identity"
    except (OSError, ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        why = f"it cannot be read ({type(err).__name__})"
    raise InputError(f"{what} {str(folder)!r} has a damaged sciprune marker {MARKER!r} ({why}); expected a JSON object "
                     f"with format {FORMAT!r}: the folder is damaged or not sciprune's, choose another --out")


def _recorded(folder: Path) -> set[Path]:
    """The temporaries the journal of ``folder`` names (paths inside ``folder`` only)."""
    journal = folder / JOURNAL
    found: set[Path] = set()
    if not journal.is_dir():
        return found
    root = folder.resolve()
    for record in journal.iterdir():
        try:
            rel = record.read_bytes()[:4096].decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        target = (folder / rel)
        if not rel or os.path.isabs(rel) or not _TMP.match(target.name):
            continue
        if root == target.parent.resolve() or root in target.parent.resolve().parents:
            found.add(target)
    return found


def holds_results(out: Path) -> bool:
    """Whether ``out`` holds anything computed: any file but ``config.yaml``, the lock, the pid file,
    sciprune's own folder and recorded temporaries (a run refused before computing holds nothing)."""
    skip = _recorded(out)
    for p in out.rglob("*"):
        rel = p.relative_to(out)
        if rel.parts[0] == OWN_DIR or p in skip or (len(rel.parts) == 1 and p.name in (CONFIG, *_RUNNER)):
            continue
        if p.is_file() or p.is_symlink():
            return True
    return False


@dataclass
class ResultsFolder:
    """``--out`` as judged before anything is written.

    Attributes:
        path: the folder.
        state: ``new`` (does not exist), ``empty``, ``ours`` (carries the marker) or ``legacy``
            (made before the marker: ``config.yaml`` + ``metrics.csv`` of a sciprune run).
        before: names that were in the folder when it was judged (a roll-back keeps them).
    """

    path: Path
    state: str
    before: frozenset[str] = frozenset()
    created: list[Path] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        return self.state in ("new", "empty")


def check_out(raw: str | os.PathLike[str], *, what: str = "--out") -> ResultsFolder:
    """``raw`` as a results folder sciprune may use: new, empty, marked, or a legacy run (module docstring)."""
    out = output_dir(raw, what)
    if not out.is_dir():
        return ResultsFolder(out, "new")
    names = frozenset(p.name for p in out.iterdir())
    if read_marker(out, what) is not None:
        return ResultsFolder(out, "ours", names)
    if not names - _RUNNER:
        return ResultsFolder(out, "empty", names)
    if (out / CONFIG).is_file():
        why = legacy_reason(out)
        if why is None:
            return ResultsFolder(out, "legacy", names)
        raise InputError(f"{what} {str(raw)!r} holds a {CONFIG} but no sciprune marker ({MARKER}) and is not an earlier "
                         f"sciprune run ({why}); expected a new or empty folder or a sciprune results folder: "
                         "choose another --out (nothing in it was touched)")
    others = sorted(names - _RUNNER)
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    raise InputError(f"{what} {str(raw)!r} is a folder with files that are not a sciprune run ({shown}; no {CONFIG}); "
                     "expected a new or empty folder or an earlier run's results: choose another --out")


def legacy_reason(out: Path) -> str | None:
    """Why ``out`` (no marker) is not a results folder of an earlier sciprune version, or ``None`` if it is one:
    its ``config.yaml`` validates as a sciprune config and its ``metrics.csv`` as that study's rows."""
    from sciprune.runner.config import validate
    from sciprune.runner.report import read_metrics
    from sciprune.runner.study import get_study

    try:
        cfg = validate(saved_config(out))
        rows = read_metrics(out, get_study(cfg.study), cfg)
    except InputError as err:
        return str(err)
    return None if rows else "it has no recorded rows (metrics.csv missing or empty)"


def saved_config(out: Path) -> Any:
    """The config saved in results folder ``out`` (a corrupt one is one clear line)."""
    from sciprune.validate import load_yaml, read_text

    saved = out / CONFIG
    data = load_yaml(read_text(saved, "saved config"), f"saved config {str(saved)!r}")
    if not isinstance(data, dict):
        raise InputError(f"saved config {str(saved)!r} holds a {type(data).__name__}; expected a mapping of fields "
                         "(the folder is damaged: choose another --out)")
    return data


def create(folder: ResultsFolder, study: str) -> None:
    """Make ``folder`` (recording which folders this made) and write its marker first, with the run's identity.
    A marked folder keeps its marker; a legacy one gets one."""
    from sciprune import __version__

    missing = [p for p in [folder.path.absolute(), *folder.path.absolute().parents] if not p.exists()]
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        (folder.path / JOURNAL).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {str(folder.path)!r} cannot be created ({err.strerror or err}); choose another --out") from None
    folder.created = missing
    if folder.state != "ours" or (read_marker(folder.path) or {}).get("study") != study:
        atomic_write_json(folder.path / MARKER, {"format": FORMAT, "study": study, "run_id": uuid.uuid4().hex,
                                                 "sciprune": __version__, "adopted_legacy": folder.state == "legacy"})


def roll_back(folder: ResultsFolder) -> None:
    """Undo :func:`create` and the runner's files in a fresh ``folder`` that holds nothing computed
    (a run refused by its inputs leaves ``--out`` as it found it). Call after the lock is released."""
    if not folder.fresh or not folder.path.is_dir() or holds_results(folder.path):
        return
    for name in (CONFIG, PID, LOCK):
        if name not in folder.before:
            (folder.path / name).unlink(missing_ok=True)
    remove_recorded_temporaries(folder.path)
    shutil.rmtree(folder.path / OWN_DIR, ignore_errors=True)
    for d in folder.created:  # innermost first
        with contextlib.suppress(OSError):
            d.rmdir()


def _pid_of_holder(out: Path) -> str:
    try:
        text = (out / PID).read_text().strip()
    except (OSError, UnicodeDecodeError):
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


def remove_recorded_temporaries(out: Path) -> list[Path]:
    """Delete the temporaries of interrupted atomic writes that ``out``'s journal records, and the records
    (call under :func:`hold`). Files the journal does not name are never touched, whatever their names."""
    removed = []
    for path in sorted(_recorded(out)):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    journal = out / JOURNAL
    if journal.is_dir():
        for record in journal.iterdir():
            with contextlib.suppress(OSError):
                record.unlink()
    return removed
