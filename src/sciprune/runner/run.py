"""Run a study from a config: validate, record, run, then summary, plots and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from sciprune.errors import InputError
from sciprune.runner.config import dump_config, validate
from sciprune.studies.base import RunContext
from sciprune.files import atomic_write_json, atomic_write_text
from sciprune.runner.report import write_report
from sciprune.runner.study import get_study

CONFIG = "config.yaml"


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but no CUDA device is available; use --device cpu")
    return device


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

    A directory that already holds a run is only reused with ``resume=True``, and then only with
    the same config: nothing already written is overwritten by a different experiment.
    """
    cfg = validate(config)
    out = Path(out)
    if workers < 1:
        raise InputError(f"--workers must be >= 1; got {workers}")
    ctx = RunContext(out=out, resume=resume, quiet=quiet, device=_device(device), workers=workers, scheduler=scheduler)
    saved = out / CONFIG
    text = dump_config(cfg)
    if saved.exists() and _holds_results(out):
        if not resume:
            raise InputError(f"results directory {str(out)!r} already holds a run; pass --resume to continue it or choose another --out")
        if yaml.safe_load(saved.read_text()) != yaml.safe_load(text):
            raise InputError(f"--resume: the config differs from the one saved in {str(saved)!r}; resume with the same config or use another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, text)
    get_study(cfg.study).run(cfg, ctx)
    make_report(out)
    return out


def _holds_results(out: Path) -> bool:
    """Whether ``out`` holds computed results (a run that failed on bad input before computing does not)."""
    checkpoints = out / "checkpoints"
    return (out / "metrics.csv").exists() or (checkpoints.is_dir() and any(checkpoints.iterdir()))


def load_run(run_dir: str | Path) -> tuple[Any, list[dict[str, Any]]]:
    """The validated config and the metric rows of a results directory."""
    run_dir = Path(run_dir)
    saved = run_dir / CONFIG
    if not saved.exists():
        raise InputError(f"{str(run_dir)!r} is not a results directory (no {CONFIG}); expected the --out of a sciprune run")
    cfg = validate(yaml.safe_load(saved.read_text()) or {})
    return cfg, RunContext(out=run_dir).read_rows()


def make_report(run_dir: str | Path) -> Path:
    """(Re)make ``summary.json``, ``plots/`` and ``report.html`` from the recorded rows alone."""
    run_dir = Path(run_dir)
    cfg, rows = load_run(run_dir)
    study = get_study(cfg.study)
    summary = study.summarize(cfg, rows, run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    plots = study.plot(cfg, rows, run_dir)
    extra = study.describe(cfg, rows, run_dir) if study.describe else ""
    return write_report(run_dir / "report.html", title=f"{study.title}", config=dump_config(cfg),
                        summary=summary, plots=plots, rows=rows, extra_html=extra)
