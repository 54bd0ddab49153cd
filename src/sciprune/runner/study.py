"""The contract between the runner and a study, and the registry of studies.

A study is a package ``sciprune.studies.<name>`` whose ``study`` module defines ``STUDY``, a
:class:`Study`. The runner validates the config with ``STUDY.config``, calls ``STUDY.run`` and
then makes ``summary.json``, the plots and ``report.html`` from the recorded rows alone (so
``sciprune report DIR`` can re-make them without re-running anything).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from sciprune.errors import InputError
from sciprune.runner.context import RunContext

Rows = list[dict[str, Any]]


class StudyConfig(BaseModel):
    """Fields every study config has. Unknown fields are errors; configs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: str
    seed: int = 0


@dataclass(frozen=True)
class Study:
    """One study, as the runner sees it.

    Attributes:
        name: the CLI command and the ``study:`` value of its configs.
        title: a human title for reports.
        config: the pydantic model of its config (a :class:`StudyConfig` subclass).
        run: does the work: ``run(cfg, ctx)`` writes ``metrics.csv`` (``ctx.write_rows``),
            checkpoints and any study files into ``ctx.out``; resumes when ``ctx.resume``.
        summarize: ``summarize(cfg, rows, run_dir) -> dict``: the headline figures.
        plot: ``plot(cfg, rows, run_dir) -> [png paths]`` written under ``run_dir/plots``.
        describe: optional ``describe(cfg, rows, run_dir) -> str``: an HTML fragment for the report.
    """

    name: str
    title: str
    config: type[StudyConfig]
    run: Callable[[Any, RunContext], None]
    summarize: Callable[[Any, Rows, Path], dict[str, Any]]
    plot: Callable[[Any, Rows, Path], list[Path]]
    describe: Callable[[Any, Rows, Path], str] | None = None


STUDIES: Mapping[str, str] = {
    "classify": "sciprune.studies.classify.study",
    "amr": "sciprune.studies.amr.study",
}


def get_study(name: str) -> Study:
    """The study called ``name``; an unknown name lists the valid ones."""
    if name not in STUDIES:
        raise InputError(f"unknown study {name!r}; expected one of {', '.join(STUDIES)}")
    module = importlib.import_module(STUDIES[name])
    study: Study = module.STUDY
    return study


def available_studies() -> list[str]:
    return list(STUDIES)
