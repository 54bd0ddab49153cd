"""``sciprune moth simulate | train | analyze``: the study's ``commands`` hook (see ``Study.commands``).

``train`` is the study's generated run command (every config field a flag, ``--preset``, ``--out``,
``--resume``, ...); ``simulate`` writes the flight model's data; ``analyze`` re-makes the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


Workers = Annotated[int, typer.Option("--workers", help="Local dask worker processes (1: in-process); results do not depend on it.")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run / file.")]


def simulate(
    samples: Annotated[int, typer.Option("--samples", help="Number of simulated 20 ms flights.")],
    out: Annotated[Path, typer.Option("--out", help="The HDF5 file to write.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random initial states and controls.")] = 12345,
    chunk: Annotated[int, typer.Option("--chunk", help="Samples per chunk (a unit of work and of resumption).")] = 65536,
    workers: Workers = 1, scheduler: Scheduler = None, resume: Resume = False, quiet: Quiet = False,
) -> None:
    """Simulate the two-body pitch-plane model into an HDF5 file (dataset 'samples', 19 columns)."""
    from tqdm.auto import tqdm

    from sciprune.validate import seed as check_seed
    from sciprune.validate import workers as check_workers

    check_workers(workers)
    check_seed(seed, "--seed")

    from sciprune.studies.moth.simulate import simulate_file

    def bar(it: Any, *, desc: str, total: int | None = None) -> Any:
        return iter(tqdm(it, desc=desc, total=total, disable=quiet, leave=False))

    got = simulate_file(out, samples, seed=seed, chunk=chunk, workers=workers, scheduler=scheduler, resume=resume, progress=bar)
    typer.echo(f"{out}: {got['rows']} rows; {got['failed']} samples did not converge and were left out (listed in 'failed')")


def commands(cli: Any) -> None:
    """Add ``simulate`` and ``analyze`` to ``cli.group`` and the generated run command as ``train``.

    ``cli`` is the runner's ``StudyCLI`` (typed loosely: a study does not import the runner).
    """
    cli.group.command()(simulate)
    cli.add_run_command("train", help="Train, prune and evaluate the Monte Carlo ensemble; write metrics, summary, plots and report.")
    cli.add_report_command("analyze")
