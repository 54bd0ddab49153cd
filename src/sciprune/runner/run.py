"""Run a study from a config: validate, record, run, then summary, plots and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from sciprune.errors import InputError
from sciprune.files import atomic_write_text
from sciprune.runner.config import dump_config, validate
from sciprune.runner.report import read_metrics, write_study_report
from sciprune.runner.results import CONFIG, check_out, hold, holds_results, remove_stray_temporaries
from sciprune.runner.study import get_study
from sciprune.studies.base import RunContext, Rows, Study
from sciprune.validate import input_dir, load_yaml, read_text, scheduler_address


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but no CUDA device is available; use --device cpu")
    return device


def _workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise InputError(f"--workers must be an integer in [1, 1024]; got {workers!r}")
    return workers


def _saved_config(out: Path) -> Any:
    """The config saved in results folder ``out`` (a corrupt one is one clear line)."""
    saved = out / CONFIG
    data = load_yaml(read_text(saved, "saved config"), f"saved config {str(saved)!r}")
    if not isinstance(data, dict):
        raise InputError(f"saved config {str(saved)!r} holds a {type(data).__name__}; expected a mapping of fields "
                         "(the folder is damaged: choose another --out)")
    return data


def _check_reuse(out: Path, text: str, resume: bool) -> None:
    """Refuse to reuse a folder with computed results, unless resuming with the identical config."""
    if not (out / CONFIG).exists() or not holds_results(out):
        return
    if not resume:
        raise InputError(f"results directory {str(out)!r} already holds a run; pass --resume to continue it or choose another --out")
    if _saved_config(out) != yaml.safe_load(text):
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
) -> Path:
    """Validate ``config``, run its study into ``out`` and write summary, plots and report.

    Every input is checked before anything is written. ``out`` must be new, empty or a sciprune
    results folder (:mod:`sciprune.runner.results`); one that already holds a run is only reused with
    ``resume=True`` and the identical config. The run holds the folder's lock throughout.
    """
    cfg = validate(config)
    study = get_study(cfg.study)
    out = check_out(out)
    if study.check is not None:
        study.check(cfg)  # the inputs the config names, before anything is written
    ctx = RunContext(out=out, resume=resume, quiet=quiet, device=_device(device), workers=_workers(workers),
                     scheduler=_scheduler(study, scheduler))
    text = dump_config(cfg)
    _check_reuse(out, text, resume)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {str(out)!r} cannot be created ({err.strerror or err}); choose another --out") from None
    with hold(out):
        _check_reuse(out, text, resume)  # again, under the lock
        remove_stray_temporaries(out)
        atomic_write_text(out / CONFIG, text)
        study.run(cfg, ctx)
        _report(out, cfg, ctx.read_rows())
    return out


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
    if not (run_dir / CONFIG).exists():
        raise InputError(f"{str(run_dir)!r} is not a results directory (no {CONFIG}); expected the --out of a sciprune run")
    cfg = validate(_saved_config(run_dir))
    return cfg, read_metrics(run_dir)


def make_report(run_dir: str | Path) -> Path:
    """(Re)make ``summary.json``, ``plots/`` and ``report.html`` from the recorded rows alone."""
    cfg, rows = load_run(run_dir)
    run_dir = Path(run_dir)
    if not rows:
        raise InputError(f"results directory {str(run_dir)!r} has no recorded rows (metrics.csv missing or empty); "
                         "nothing to report: finish the run first (same command with --resume)")
    with hold(run_dir):
        return _report(run_dir, cfg, rows)


def _report(run_dir: Path, cfg: Any, rows: Rows) -> Path:
    return write_study_report(get_study(cfg.study), cfg, rows, run_dir, config_text=dump_config(cfg))
