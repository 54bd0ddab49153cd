"""``sciprune``: thin commands that parse, load a config and call one runner function.

Bad input (a config, a data file, a checkpoint, a flag) prints one line on stderr and exits with
status 2; nothing already written is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sciprune.errors import InputError

app = typer.Typer(
    name="sciprune",
    help="Prune the neural networks of scientific machine learning, and use pruning as an instrument.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Out = Annotated[Path | None, typer.Option("--out", help="Results directory (default: runs/<study>-<preset>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Device = Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")]
Workers = Annotated[int, typer.Option("--workers", help="Worker processes/threads; results do not depend on it.")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="dask.distributed scheduler address (default: in-process).")]
Set = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: --set train.epochs=5 (repeatable).")]
Preset = Annotated[str, typer.Option("--preset", help="demo (seconds) | quick (minutes, the default) | paper (hours; MNIST, GPU welcome).")]


def _run(config: dict[str, Any], out: Path, **kw: Any) -> None:
    from sciprune.runner.run import run_config

    path = run_config(config, out=out, **kw)
    typer.echo(f"results: {path}  (report: {path / 'report.html'})")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="A YAML config (e.g. the config.yaml of an earlier run).")],
    out: Out = None, set_: Set = None, resume: Resume = False, quiet: Quiet = False,
    device: Device = "cpu", workers: Workers = 1, scheduler: Scheduler = None,
) -> None:
    """Run the study a YAML config describes."""
    from sciprune.runner.config import apply_overrides, load_yaml

    cfg = apply_overrides(load_yaml(config), set_ or [])
    _run(cfg, out or Path("runs") / config.stem, resume=resume, quiet=quiet, device=device, workers=workers, scheduler=scheduler)


@app.command()
def classify(
    preset: Preset = "quick",
    dataset: Annotated[str | None, typer.Option("--dataset", help="digits (default), mnist or fashion-mnist.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder with the IDX files (MNIST / Fashion-MNIST).")] = None,
    out: Out = None, set_: Set = None, resume: Resume = False, quiet: Quiet = False,
    device: Device = "cpu", workers: Workers = 1, scheduler: Scheduler = None,
) -> None:
    """Accuracy against sparsity for weight, unit and ID pruning of an MLP classifier."""
    from sciprune.runner.config import apply_overrides, load_preset

    overrides = list(set_ or [])
    if dataset is not None:
        overrides.append(f"data.name={dataset}")
    if data_dir is not None:
        overrides.append(f"data.data_dir={data_dir}")
    cfg = apply_overrides(load_preset("classify", preset), overrides)
    _run(cfg, out or Path("runs") / f"classify-{preset}", resume=resume, quiet=quiet, device=device, workers=workers, scheduler=scheduler)


def _register_amr() -> None:
    from sciprune.studies.amr.cli import amr

    app.command("amr", help="PruningAMR: adaptive meshes of an implicit neural representation, refined where ID pruning fails.")(amr)


_register_amr()


def _register_moth() -> None:
    from sciprune.studies.moth.cli import moth

    app.add_typer(moth, name="moth")


_register_moth()


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A results directory.")]) -> None:
    """Re-make summary.json, plots and report.html of a results directory without re-running."""
    from sciprune.runner.run import make_report

    typer.echo(f"report: {make_report(run_dir)}")


@app.command()
def inspect(
    checkpoint: Annotated[Path, typer.Argument(help="A sciprune (safetensors) or torch checkpoint.")],
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickle with Python objects (runs code!).")] = False,
) -> None:
    """Per-layer shapes, sparsity and non-zeros of a checkpoint."""
    from sciprune.runner.inspect import describe_checkpoint

    typer.echo(describe_checkpoint(checkpoint, trust_pickle=trust_pickle))


@app.command()
def demo(out: Annotated[Path, typer.Option("--out", help="Where the combined demo results go.")] = Path("runs/demo"),
         quiet: Quiet = False, resume: Resume = False) -> None:
    """Run every study's demo preset and write one combined report."""
    from sciprune.runner.demo import run_demo

    typer.echo(f"report: {run_demo(out, quiet=quiet, resume=resume)}")


def main() -> None:
    """Console entry point: InputError -> one line on stderr, exit status 2."""
    try:
        app()
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
