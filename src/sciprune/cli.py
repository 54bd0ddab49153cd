"""``sciprune``: thin commands that parse, load a config and call one runner function.

``sciprune <study>`` for every study in ``runner.study.STUDIES`` is generated from the study's config
model (:mod:`sciprune.runner.commands`); a study's module is imported only when its command is used
(or listed by ``sciprune --help``).

Bad input (a config, a data file, a checkpoint, a flag, a command-line usage error) prints one line
on stderr and exits with status 2; nothing already written is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sciprune.runner.clicklib import click_exceptions

from sciprune.errors import InputError


class _Commands(TyperGroup):
    """The fixed commands plus one generated command per registered study."""

    def list_commands(self, ctx: Any) -> list[str]:
        from sciprune.runner.study import available_studies

        fixed = super().list_commands(ctx)
        return [*(s for s in available_studies() if s not in fixed), *fixed]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        from sciprune.runner.study import STUDIES

        if cmd_name in STUDIES:
            from sciprune.runner.commands import study_command
            from sciprune.runner.study import get_study

            return study_command(get_study(cmd_name))
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="sciprune",
    cls=_Commands,
    help="Prune the neural networks of scientific machine learning, and use pruning as an instrument.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: never truncates a flag name, whatever the width or a pipe
)

Out = Annotated[str | None, typer.Option("--out", help="Results directory (default: runs/<config name>).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Device = Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")]
Workers = Annotated[int, typer.Option("--workers", help="Worker processes/threads; results do not depend on it.")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="dask.distributed scheduler address (default: in-process).")]
Set = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: --set train.epochs=5 (repeatable).")]
Plan = Annotated[bool, typer.Option("--plan", help="Print the run's cost plan (tasks, CPU time, memory, wall time on 1 / --workers / --plan-workers workers) and exit: nothing runs, --out is not created.")]
PlanWorkers = Annotated[int | None, typer.Option("--plan-workers", metavar="M", help="With --plan: the remote workers (--scheduler) to plan for (default 16).")]


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="A YAML config (e.g. the config.yaml of an earlier run).")],
    out: Out = None, set_: Set = None, resume: Resume = False, quiet: Quiet = False,
    device: Device = "cpu", workers: Workers = 1, scheduler: Scheduler = None,
    plan: Plan = False, plan_workers: PlanWorkers = None,
) -> None:
    """Run the study a YAML config describes (or, with --plan, print its cost plan and exit)."""
    from sciprune.runner.config import apply_overrides, given_fields, load_yaml
    from sciprune.runner.run import run_config

    cfg = apply_overrides(load_yaml(config), set_ or [])
    given = given_fields((), set_ or ())  # the file's fields are a whole config (a saved one lists them all)
    if plan or plan_workers is not None:
        from sciprune.runner.plan import print_plan

        typer.echo(print_plan(cfg, plan=plan, workers=workers, plan_workers=plan_workers, device=device,
                              config_file=config, given=given))
        return
    path = run_config(cfg, out=out if out is not None else Path("runs") / Path(config).stem, resume=resume,
                      quiet=quiet, device=device, workers=workers, scheduler=scheduler, given=given)
    typer.echo(f"results: {path}  (report: {path / 'report.html'})")


@app.command()
def report(run_dir: Annotated[str, typer.Argument(help="A results directory.")]) -> None:
    """Re-make summary.json, plots and report.html of a results directory without re-running."""
    from sciprune.runner.run import make_report

    typer.echo(f"report: {make_report(run_dir)}")


@app.command()
def inspect(
    checkpoint: Annotated[str, typer.Argument(help="A sciprune (safetensors) or torch checkpoint.")],
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickle with Python objects (runs code!).")] = False,
) -> None:
    """Per-layer shapes, sparsity and non-zeros of a checkpoint."""
    from sciprune.runner.inspect import describe_checkpoint

    typer.echo(describe_checkpoint(checkpoint, trust_pickle=trust_pickle))


@app.command()
def demo(out: Annotated[str, typer.Option("--out", help="Where the combined demo results go.")] = "runs/demo",
         quiet: Quiet = False, resume: Resume = False) -> None:
    """Run every study's demo preset and write one combined report."""
    from sciprune.runner.demo import run_demo

    typer.echo(f"report: {run_demo(out, quiet=quiet, resume=resume)}")


def _usage_line(err: Any) -> str:
    """A click usage error as one line: the problem and where to read the usage."""
    message = " ".join(err.format_message().split())
    where = err.ctx.command_path if err.ctx is not None else "sciprune"
    return f"{message} (see `{where} --help`)"


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: bad input or a usage error -> one line on stderr, exit status 2."""
    errors = click_exceptions()
    try:
        code = app(args=argv, prog_name="sciprune", standalone_mode=False)
    except errors.NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help() if err.ctx is not None else "")
        sys.exit(0)
    except errors.UsageError as err:
        typer.echo(f"error: {_usage_line(err)}", err=True)
        sys.exit(2)
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except errors.ClickException as err:
        typer.echo(f"error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
