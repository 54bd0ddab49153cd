"""Run a study from a config: validate, record, run, then summary, plots and report."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
import yaml

from sciprune.errors import InputError
from sciprune.files import atomic_write_text
from sciprune.runner.config import dump_config, validate
from sciprune.runner.report import read_metrics, write_study_report
from sciprune.runner.results import (CONFIG, MARKER, ResultsFolder, check_out, create, hold, holds_results, legacy_reason, read_marker,
                                     remove_recorded_temporaries, roll_back, saved_config)
from sciprune.runner.study import get_study
from sciprune.studies.base import RunContext, Rows, Study
from sciprune.validate import input_dir, scheduler_address
from sciprune.validate import workers as validate_workers


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but no CUDA device is available; use --device cpu")
    return device


def _check_reuse(folder: ResultsFolder, text: str, resume: bool) -> None:
    """Refuse to reuse a folder with computed results, unless resuming with the identical config."""
    out = folder.path
    if folder.fresh or not holds_results(out):
        return
    if not resume:
        raise InputError(f"results directory {str(out)!r} already holds a run; pass --resume to continue it or choose another --out")
    if saved_config(out) != yaml.safe_load(text):
        raise InputError(f"--resume: the config differs from the one saved in {str(out / CONFIG)!r}; "
                         "resume with the same config or use another --out")


def run_config(
    config: dict[str, Any],
    *,
    out: str | Path,
    resume: bool = False,
    quiet: bool = False,
    device: str = "cpu",
    workers: int = 1,
    scheduler: str | None = None,
    given: Collection[str] = (),
) -> Path:
    """Validate ``config`` (``given``: the fields the user set, :func:`~sciprune.runner.config.validate`),
    run its study into ``out`` and write summary, plots and report.

    Every input is checked before anything is written. ``out`` must be new, empty or a sciprune
    results folder (:mod:`sciprune.runner.results`); one that already holds a run is only reused with
    ``resume=True`` and the identical config. The run holds the folder's lock throughout.
    """
    cfg = validate(config, given)
    study = get_study(cfg.study)
    folder = check_out(out)
    if study.check is not None:
        study.check(cfg)  # the inputs the config names, before anything is written
    ctx = RunContext(out=folder.path, resume=resume, quiet=quiet, device=_device(device), workers=_workers(study, workers),
                     scheduler=_scheduler(study, scheduler))
    text = dump_config(cfg)
    _check_reuse(folder, text, resume)
    if folder.state == "ours" and holds_results(folder.path):
        _same_study(folder.path, cfg.study)
    # every check passed: only now is anything created (the marker first)
    create(folder, cfg.study)
    held = False
    try:
        with hold(folder.path):
            held = True
            _check_reuse(folder, text, resume)  # again, under the lock
            remove_recorded_temporaries(folder.path)
            atomic_write_text(folder.path / CONFIG, text)
            study.run(cfg, ctx)
            _report(folder.path, cfg, read_metrics(folder.path, study, cfg))
    except InputError:
        if held:  # never undo a folder another run holds
            roll_back(folder)  # a fresh folder refused by its inputs is left as it was found
        raise
    return folder.path


def _same_study(out: Path, study: str) -> None:
    marker = read_marker(out) or {}
    if marker.get("study") != study:
        raise InputError(f"results directory {str(out)!r} holds a {marker.get('study')!r} run (its {MARKER}); "
                         f"got a {study!r} config: choose another --out")


def _workers(study: Study, workers: int) -> int:
    n = validate_workers(workers)
    if n > 1 and not study.workers:
        raise InputError(f"the {study.name} study runs in one process; got --workers {n}. Leave it out "
                         "(torch's operations use this machine's cores inside that process)")
    return n


def _scheduler(study: Study, scheduler: str | None) -> str | None:
    if scheduler is None:
        return None
    if not study.scheduler:
        raise InputError(f"the {study.name} study does not run on a dask scheduler; got --scheduler {scheduler!r}. "
                         "Leave it out (use --workers for local parallelism)")
    return scheduler_address(scheduler)


def load_run(run_dir: str | Path) -> tuple[Any, list[dict[str, Any]]]:
    """The validated config and the metric rows of a results directory."""
    run_dir = input_dir(run_dir, "results directory", "the --out folder of a sciprune run")
    marker = read_marker(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise InputError(f"{str(run_dir)!r} is not a results directory (no {CONFIG}); expected the --out of a sciprune run")
    if marker is None and (why := legacy_reason(run_dir)) is not None:
        raise InputError(f"{str(run_dir)!r} has no sciprune marker ({MARKER}) and is not an earlier sciprune run: {why}")
    cfg = validate(saved_config(run_dir))
    if marker is not None and marker.get("study") != cfg.study:
        raise InputError(f"results directory {str(run_dir)!r}: its marker names the {marker.get('study')!r} study, its "
                         f"{CONFIG} the {cfg.study!r} study; expected one run (the folder is damaged)")
    return cfg, read_metrics(run_dir, get_study(cfg.study), cfg)


def make_report(run_dir: str | Path, *, study: str | None = None) -> Path:
    """(Re)make ``summary.json``, ``plots/`` and ``report.html`` from the recorded rows alone (of a ``study``
    run, when given: ``sciprune moth analyze`` refuses another study's folder)."""
    cfg, rows = load_run(run_dir)
    if study is not None and cfg.study != study:
        raise InputError(f"results directory {str(run_dir)!r} holds a {cfg.study!r} run; expected a {study!r} run "
                         f"(use sciprune report for any study's folder)")
    run_dir = Path(run_dir)
    if not rows:
        raise InputError(f"results directory {str(run_dir)!r} has no recorded rows (metrics.csv missing or empty); "
                         "nothing to report: finish the run first (same command with --resume)")
    with hold(run_dir):
        return _report(run_dir, cfg, rows)


def _report(run_dir: Path, cfg: Any, rows: Rows) -> Path:
    return write_study_report(get_study(cfg.study), cfg, rows, run_dir, config_text=dump_config(cfg))
