"""The contract between the runner and a study: its config, its run context, its entry points.

A study is a package ``sciprune.studies.<name>`` whose ``study`` module defines ``STUDY``, a
:class:`Study`. The runner validates the config with ``STUDY.config``, calls ``STUDY.run`` with a
:class:`RunContext` and then makes ``summary.json``, the plots and ``report.html`` from the recorded
rows alone (so ``sciprune report DIR`` can re-make them without re-running anything).

This module sits below both ``runner`` and the studies: a study imports its contract from here and
never from ``runner``, so the registry (``runner.study``) can import studies without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer
from tqdm.auto import tqdm

from sciprune.files import atomic_write_csv, read_csv

T = TypeVar("T")
Rows = list[dict[str, Any]]


METRICS = "metrics.csv"


@dataclass
class RunContext:
    """The run a study executes in.

    Attributes:
        out: the results directory (exists).
        resume: continue from the checkpoints in ``out/checkpoints`` instead of starting afresh.
        quiet: no progress bars.
        device: where tensors live (``cpu`` by default).
        workers: worker processes / threads a study may use (results never depend on it).
        scheduler: address of a dask.distributed scheduler, or ``None`` for in-process work.
    """

    out: Path
    resume: bool = False
    quiet: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workers: int = 1
    scheduler: str | None = None

    @property
    def checkpoints(self) -> Path:
        path = self.out / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def plots(self) -> Path:
        path = self.out / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, iterable: Iterable[T], *, desc: str, total: int | None = None) -> Iterator[T]:
        """``iterable`` wrapped in a tqdm bar (silent with ``quiet``)."""
        return iter(tqdm(iterable, desc=desc, total=total, disable=self.quiet, leave=False, dynamic_ncols=True))

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace ``metrics.csv`` with ``rows`` (atomically)."""
        atomic_write_csv(self.out / METRICS, rows)

    def read_rows(self) -> list[dict[str, Any]]:
        """Rows of ``metrics.csv`` (empty when there is none yet)."""
        path = self.out / METRICS
        return read_csv(path) if path.exists() else []


class StudyConfig(BaseModel):
    """Fields every study config has. Unknown fields are errors; configs are immutable.

    Attributes:
        seed: root seed: every random draw of the run (data, initial weights, batches, samples)
            derives from it
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: str
    seed: int = 0
    memory_limit: int | float | str | None = Field(
        None, description="refuse a run estimated to need more memory (bytes or e.g. 8GB; default: this machine's RAM)")

    @field_validator("memory_limit")
    @classmethod
    def _bytes(cls, v: int | float | str | None) -> int | None:
        from sciprune.errors import InputError
        from sciprune.validate.memory import parse_bytes

        try:
            return None if v is None else parse_bytes(v)
        except InputError as err:
            raise ValueError(str(err).split(": ", 1)[-1]) from None

    def unused_fields(self) -> dict[str, str]:
        """``{dotted field: why}`` for the fields this config does not read (an ID's samples without an ID
        method). The runner refuses such a field when the user gave it (a flag or ``--set``): it would do
        nothing. A study overrides this; the default is none."""
        return {}

    @model_serializer(mode="wrap")
    def _without_default_limit(self, handler: Any) -> Any:
        """The config as saved: ``memory_limit`` only when set (results folders made before the field
        existed keep resuming with an identical config)."""
        data = handler(self)
        if isinstance(data, dict) and data.get("memory_limit", 0) is None:
            del data["memory_limit"]
        return data

    @property
    def memory_bytes(self) -> int | None:
        """``memory_limit`` in bytes (``None``: this machine's memory is the limit)."""
        return None if self.memory_limit is None else int(self.memory_limit)


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
        commands: optional CLI hook ``commands(cli)`` for a study with several commands
            (``sciprune moth simulate|train|analyze``): ``cli`` is a
            :class:`sciprune.runner.commands.StudyCLI`; the hook adds Typer commands to ``cli.group``
            and the generated run command with ``cli.add_run_command("train")``. Without it,
            ``sciprune <name>`` is the generated run command alone.
        check: optional ``check(cfg)``: validate every input the config names (data files,
            checkpoints, meshes) *before* the results folder is created or touched; raises
            :class:`~sciprune.errors.InputError`. Use :mod:`sciprune.validate`.
        scheduler: whether the study can run its shards on a dask scheduler (``--scheduler``);
            ``False`` makes the runner refuse the flag instead of ignoring it.
        workers: whether the study runs anything in parallel with ``--workers``; ``False`` makes the
            runner refuse ``--workers`` above 1 instead of ignoring it.
        columns: the study's own ``metrics.csv`` columns and the kind of each value (``"text"``,
            ``"int"``, ``"number"``, ``"fraction"``; numbers may be empty), beyond ``method, seed,
            sparsity, params_nnz``: a report or resume refuses a file whose rows lack them.
        methods: optional ``methods(cfg)``: the method names the rows of a run of ``cfg`` carry (a row
            of another study or config is refused).
        plan: optional ``plan(cfg, calibrate) -> studies.planning.Plan``: the run's tasks, CPU time and
            memory per task, without running it (``--plan``); ``calibrate`` times a few representative
            steps on this machine (seconds), else a FLOP model is used.
    """

    name: str
    title: str
    config: type[StudyConfig]
    run: Callable[[Any, RunContext], None]
    summarize: Callable[[Any, Rows, Path], dict[str, Any]]
    plot: Callable[[Any, Rows, Path], list[Path]]
    describe: Callable[[Any, Rows, Path], str] | None = None
    commands: Callable[[Any], None] | None = None
    check: Callable[[Any], None] | None = None
    scheduler: bool = True
    workers: bool = True
    columns: Mapping[str, str] = field(default_factory=dict)
    methods: Callable[[Any], Iterable[str]] | None = None
    plan: Callable[[Any, bool], Any] | None = None
