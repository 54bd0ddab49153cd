"""What a study sees of the run it is part of: where to write, whether to resume, how to report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from sciprune.runner.files import atomic_write_csv, read_csv

T = TypeVar("T")

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
