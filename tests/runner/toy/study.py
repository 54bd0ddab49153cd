"""The toy study: ``steps`` rows of ``loss = scale / (step + 1)``; a nested section and a choice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field

from sciprune.studies.base import RunContext, Rows, Study, StudyConfig


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scale: float = Field(1.0, gt=0, description="multiplies every loss")
    tags: list[str] = Field(default_factory=list)


class ToyConfig(StudyConfig):
    """A toy study for the CLI tests.

    Attributes:
        steps: rows to record.
        kind: which toy.
        verbose: say more.
    """

    study: Literal["toy", "toygroup"] = "toy"
    steps: int = Field(3, ge=0, le=1000)
    kind: Literal["plain", "fancy"] = "plain"
    verbose: bool = False
    diverge: bool = False
    inner: Inner = Inner()


def _loss(cfg: ToyConfig, i: int) -> float:
    if cfg.diverge and i >= 1:
        return float("nan") if i % 2 else float("inf")
    return cfg.inner.scale / (i + 1)


def run(cfg: ToyConfig, ctx: RunContext) -> None:
    ctx.write_rows([{"method": cfg.kind, "seed": cfg.seed, "sparsity": 0.0, "params_nnz": 1, "stage": i,
                     "loss": _loss(cfg, i)} for i in ctx.progress(range(cfg.steps), desc="toy")])


def summarize(cfg: ToyConfig, rows: Rows, run_dir: Path) -> dict[str, Any]:
    return {"rows": len(rows), "last_loss": rows[-1]["loss"] if rows else None,
            "losses": [r["loss"] for r in rows]}


def plot(cfg: ToyConfig, rows: Rows, run_dir: Path) -> list[Path]:
    if any(r["loss"] is not None and not math.isfinite(r["loss"]) for r in rows):
        raise AssertionError("plots must see diverged values as None, and only None")
    return []


def _commands(cli: Any) -> None:
    @cli.group.command()
    def hello(name: str = "world") -> None:
        """Say hello."""
        typer.echo(f"hello {name}")

    cli.add_run_command("fit", help="Fit the toy (every config flag).")


STUDY = Study(name="toy", title="Toy study", config=ToyConfig, run=run, summarize=summarize, plot=plot)
GROUP = Study(name="toygroup", title="Toy study with sub-commands", config=ToyConfig, run=run,
              summarize=summarize, plot=plot, commands=_commands)
