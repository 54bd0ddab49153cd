"""``sciprune moth simulate | train | analyze`` (registered by ``sciprune.cli`` as a command group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

moth = typer.Typer(name="moth", help="MothPruning: flight simulator, controller networks and Monte Carlo pruning ensembles.",
                   no_args_is_help=True)

Workers = Annotated[int, typer.Option("--workers", help="Local dask worker processes (1: in-process); results do not depend on it.")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run / file.")]


@moth.command()
def simulate(
    samples: Annotated[int, typer.Option("--samples", help="Number of simulated 20 ms flights.")],
    out: Annotated[Path, typer.Option("--out", help="The HDF5 file to write.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random initial states and controls.")] = 12345,
    chunk: Annotated[int, typer.Option("--chunk", help="Samples per chunk (a unit of work and of resumption).")] = 65536,
    workers: Workers = 1, scheduler: Scheduler = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Simulate the two-body pitch-plane model into an HDF5 file (dataset 'samples', 19 columns)."""
    from tqdm.auto import tqdm

    from sciprune.studies.moth.simulate import simulate_file

    def bar(it: Any, *, desc: str, total: int | None = None) -> Any:
        return iter(tqdm(it, desc=desc, total=total, disable=quiet, leave=False))

    got = simulate_file(out, samples, seed=seed, chunk=chunk, workers=workers, scheduler=scheduler, resume=resume, progress=bar)
    typer.echo(f"{out}: {got['rows']} rows; {got['failed']} samples did not converge and were left out (listed in 'failed')")


@moth.command()
def train(
    preset: Annotated[str, typer.Option("--preset", help="demo (seconds) | quick (minutes, the default) | paper (hours).")] = "quick",
    data: Annotated[Path | None, typer.Option("--data", help="An HDF5 file from `sciprune moth simulate` (default: simulate into --out).")] = None,
    members: Annotated[int | None, typer.Option("--members", help="Networks in the ensemble.")] = None,
    shards: Annotated[int | None, typer.Option("--shards", help="Independent shards the members are split into.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Capable: test MSE (scaled) at most this (1e-3).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed (initial weights, splits, minibatches).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any config field: --set train.lr=1e-3 (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results directory (default: runs/moth-<preset>).")] = None,
    resume: Resume = False, quiet: Quiet = False,
    device: Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")] = "cpu",
    workers: Workers = 1, scheduler: Scheduler = None,
) -> None:
    """Train, prune and evaluate the Monte Carlo ensemble; write metrics, summary, plots and report."""
    from sciprune.runner.config import apply_overrides, load_preset
    from sciprune.runner.run import run_config

    given: dict[str, Any] = {k: v for k, v in (("members", members), ("shards", shards), ("threshold", threshold),
                                               ("seed", seed)) if v is not None}
    config = {**load_preset("moth", preset), **given}
    overrides = list(set_ or [])
    if data is not None:
        overrides.append(f"data.path={data}")
    config = apply_overrides(config, overrides)
    path = run_config(config, out=out or Path("runs") / f"moth-{preset}", resume=resume, quiet=quiet, device=device,
                      workers=workers, scheduler=scheduler)
    typer.echo(f"results: {path}  (report: {path / 'report.html'})")


@moth.command()
def analyze(run_dir: Annotated[Path, typer.Argument(help="A results directory of `sciprune moth train`.")]) -> None:
    """Re-make summary.json, the plots and report.html from the recorded rows."""
    from sciprune.runner.run import make_report

    typer.echo(f"report: {make_report(run_dir)}")
