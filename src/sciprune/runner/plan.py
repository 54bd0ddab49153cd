"""``sciprune <study> ... --plan``: the run's cost, printed without running it or creating ``--out``.

The study's ``plan`` hook (:mod:`sciprune.studies.planning`) returns the phases and their probes;
this module validates the config, calls the hook (calibrated: a few timed steps on this machine)
and formats the plan: tasks per phase, CPU time and peak memory per task, and the wall time on one
worker, on ``N`` local workers (``--workers N``, at most one per core) and on ``M`` remote workers
(``--plan-workers M``).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from sciprune.errors import InputError
from sciprune.runner.config import validate
from sciprune.runner.study import get_study
from sciprune.studies.planning import Plan, local_slots
from sciprune.validate.memory import format_bytes, physical_memory


def duration(seconds: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``, ``2.1 d``."""
    if seconds < 90:
        return f"{seconds:.3g} s"
    if seconds < 5400:
        return f"{seconds / 60:.3g} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def plan_text(plan: Plan, *, local: int, remote: int, preset: str | None = None, config_file: str | None = None) -> str:
    """The printout of ``plan`` for ``local`` local and ``remote`` remote workers; its first line names the
    command planned (``sciprune <study> --preset P``, or ``sciprune run FILE`` for a YAML config)."""
    how = (f"calibrated on this machine in {plan.calibration_seconds:.1f} s ({plan.threads} torch thread per task)"
           if plan.calibrated else "from the FLOP model (not calibrated)")
    command = (f"sciprune run {config_file} ({plan.study})" if config_file is not None
               else f"sciprune {plan.study}" + (f" --preset {preset}" if preset else ""))
    lines = [f"plan: {command}, {how}"]

    def span(seconds: float, least: float) -> str:
        return f"{duration(least)} to {duration(seconds)}" if least < seconds else duration(seconds)

    for i, ph in enumerate(plan.phases, 1):
        where = "independent tasks (dask shards)" if ph.parallel else "run in the calling process, one after another"
        lines.append(f"phase {i}: {ph.kind}: {ph.tasks} task{'s' * (ph.tasks != 1)}, {where}; "
                     f"{span(ph.seconds, ph.least_seconds)} CPU and about {format_bytes(ph.memory)} peak memory per task")
        for p in ph.probes:
            src = "measured" if p.seconds is not None else "FLOP model"
            fewest = f" (fewest {p.fewest:.6g})" if p.fewest is not None else ""
            lines.append(f"    {p.count:>12.6g} x {duration(p.each):>9} ({src:>10})  {p.what}{fewest}")
    slots = local_slots(local)
    lines += [
        f"tasks: {plan.tasks}   CPU time: {span(plan.cpu_seconds, plan.least_cpu_seconds)}   peak memory per task: about "
        f"{format_bytes(plan.memory)} (this machine: {format_bytes(physical_memory())}, {os.cpu_count()} cores)",
        "expected wall time" + (" (from every early stop at its earliest to every budget spent: the 'fewest' "
                                "counts above)" if plan.has_range else "") + ":",
        f"    1 worker:                      {span(plan.wall(1), plan.wall(1, least=True))}",
        f"    {local} local workers (--workers {local}): {span(plan.wall(slots), plan.wall(slots, least=True))}"
        + (f"  (at most {slots} run at once: one per core)" if slots < local else ""),
        f"    {remote} remote workers (--plan-workers {remote}, --scheduler): "
        f"{span(plan.wall(remote), plan.wall(remote, least=True))}  (equal workers, each as fast as this machine's core)",
    ]
    lines += [f"note: {n}" for n in plan.notes]
    lines.append("note: not included: the process's start-up, the report and its plots (about 8 s of CPU here: "
                 "docs/benchmarks.md, --plan against measured runs)")
    return "\n".join(lines)


def make_plan(config: dict[str, Any], *, calibrate: bool = True, given: Collection[str] = ()) -> Plan:
    """The validated config's plan (nothing is run or written; ``given`` as for ``validate``)."""
    cfg = validate(config, given)
    study = get_study(cfg.study)
    if study.plan is None:
        raise InputError(f"the {study.name} study has no cost plan; leave out --plan")
    plan: Plan = study.plan(cfg, calibrate)
    return plan


def print_plan(config: dict[str, Any], *, plan: bool, workers: int, plan_workers: int | None,
               preset: str | None = None, calibrate: bool = True, device: str = "cpu",
               config_file: str | None = None, given: Collection[str] = ()) -> str:
    """The plan's text for ``--plan`` (local workers: ``--workers``, or the machine's cores when 1;
    remote: ``--plan-workers``, 16 by default). ``--plan-workers`` without ``--plan`` is refused."""
    if not plan:
        raise InputError(f"--plan-workers {plan_workers} only applies with --plan; add --plan or leave it out")
    plan_workers = 16 if plan_workers is None else plan_workers
    if not 1 <= plan_workers <= 1_000_000:
        raise InputError(f"--plan-workers must be an integer in [1, 1000000]; got {plan_workers!r}")
    if not 1 <= workers <= 1024:
        raise InputError(f"--workers must be an integer in [1, 1024]; got {workers!r}")
    local = workers if workers > 1 else (os.cpu_count() or 1)
    text = plan_text(make_plan(config, calibrate=calibrate, given=given), local=local, remote=plan_workers, preset=preset,
                     config_file=config_file)
    if device != "cpu":
        text += (f"\nnote: the probes ran on this machine's CPU; the run on --device {device} is not estimated "
                 "(time a short preset there: benchmarks/gpu_check.sh)")
    return text
