"""The ``sciprune amr`` command: a preset, then the flags that were given, then ``run_config``.

Registered by ``sciprune.cli`` as ``app.command("amr")(amr)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

_FLAGS = (
    "mode", "id_samples", "error_samples", "threshold", "prop_threshold", "epsilon", "max_it", "max_dofs",
    "num_uniform_ref", "time_slice", "paraview", "inr", "mesh", "seed",
)


def amr(
    preset: Annotated[str, typer.Option("--preset", help="demo | quick | paper.")] = "quick",
    mode: Annotated[str | None, typer.Option("--mode", help="bulk (default: bulk PruningAMR) | pruning (the seed's PruningAMR) | basic (BasicAMR) | uniform.")] = None,
    id_samples: Annotated[int | None, typer.Option("--id-samples", help="Samples per element for the ID (256; bulk: 32).")] = None,
    error_samples: Annotated[int | None, typer.Option("--error-samples", help="Samples per element for the error check (128).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Error threshold T (1e-3).")] = None,
    prop_threshold: Annotated[float | None, typer.Option("--prop-threshold", help="Kept-neuron proportion threshold P (0.2).")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="ID tolerance: keep |R_kk| >= eps |R_11| (1e-3).")] = None,
    max_it: Annotated[int | None, typer.Option("--max-it", help="Iterations, uniform ones included (4; bulk: 24).")] = None,
    max_dofs: Annotated[int | None, typer.Option("--max-dofs", help="No adaptive iteration starts at or beyond this many DOFs (5000; bulk: 20000 in 2-D, 50000 in 3-D).")] = None,
    num_uniform_ref: Annotated[int | None, typer.Option("--num-uniform-ref", help="Leading uniform refinements (2).")] = None,
    time_slice: Annotated[float | None, typer.Option("--time-slice", help="Time t for an INR with one input more than the mesh (1.0).")] = None,
    paraview: Annotated[bool | None, typer.Option("--paraview/--no-paraview", help="Also write a ParaView collection.")] = None,
    inr: Annotated[str | None, typer.Option("--inr", help="corner | front | spacetime | hos | a checkpoint path.")] = None,
    mesh: Annotated[str | None, typer.Option("--mesh", help="square[:N] | cube[:N] | an MFEM mesh file (default: the INR's).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed of every random draw.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any config field: --set error_offset=0 (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results directory (default: runs/amr-<preset>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")] = "cpu",
    workers: Annotated[int, typer.Option("--workers", help="Threads for the element pass; results do not depend on it.")] = 1,
) -> None:
    """Adaptive meshes for an implicit neural representation, refined where ID pruning says the INR is complex."""
    from sciprune.runner.config import apply_overrides, load_preset
    from sciprune.runner.run import run_config

    given: dict[str, Any] = {k: v for k, v in locals().items() if k in _FLAGS and v is not None}
    config = apply_overrides({**load_preset("amr", preset), **given}, list(set_ or []))
    path = run_config(config, out=out or Path("runs") / f"amr-{preset}", resume=resume, quiet=quiet,
                      device=device, workers=workers)
    typer.echo(f"results: {path}  (report: {path / 'report.html'})")
