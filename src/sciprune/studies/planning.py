r"""A run's cost, stated before it starts: tasks, CPU time per task, memory per task, wall time.

A study's plan hook (``Study.plan(cfg, calibrate) -> Plan``) describes its run as **phases** run one
after the other (moth: simulate the data, then train the shards); a phase is ``tasks`` equal,
independent tasks (dask shards) of one kind, or work done in the calling process
(``parallel=False``). One task's time is a sum of **probes**, each a representative piece of work
(a training step at the preset's sizes, one ID pruning, one evaluation) times how often it occurs:

.. math:: t_{task} = \sum_p n_p\, t_p, \qquad
          T_{wall}(w) = \sum_{phases} \lceil \text{tasks} / w \rceil\, t_{task}
                        \quad (\text{tasks}\cdot t_{task} \text{ when not parallel}).

:math:`t_p` is measured (``calibrate=True``: the probe's ``run`` timed on this machine, one torch
thread, as shards run) or, without calibration, ``flops / NOMINAL_FLOPS``. The timer is the
process's CPU time, not the wall clock: on a busy machine a probe waits for a core, which the
estimate should not include (it states the cost on free cores; a loaded machine's wall time is
longer by its load). The ceiling assumes tasks
of equal length, as a study's shards are; ``w`` local workers count at most as many as the machine
has cores. Calibration stays short: each probe runs once untimed, then until ``PROBE_SECONDS`` are spent, and
a large forward pass is timed on a slice (:func:`probe_rows`) and scaled.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

#: single-thread float32 throughput assumed without calibration (a deliberately round figure)
NOMINAL_FLOPS = 1e10
#: a probe is repeated until this much time is spent on it (after one untimed warm-up), over its rounds
PROBE_SECONDS = 0.3
#: at most this many timed repetitions of one probe in a round
PROBE_REPEATS = 20
#: rounds of a probe; the fastest round's mean is its time (see ``_time``)
PROBE_ROUNDS = 3


@dataclass(frozen=True)
class Probe:
    """A representative piece of work occurring ``count`` times in one task.

    Attributes:
        what: what it is, for the printout ("training step, batch 128, 784-1000-...").
        count: occurrences in one task (may be fractional: an average).
        flops: floating-point operations of one occurrence (used when not calibrated).
        run: the timed work (one occurrence, or ``1/scale`` of one); ``None``: always the FLOP model.
        scale: one occurrence is ``scale`` times ``run`` (a large batch timed on a slice of it, so
            calibration stays short).
        warmup: run once untimed first (off for a long probe with nothing to warm up).
        seconds: the measured time of one ``run`` (set by :func:`calibrate`).
        fewest: occurrences when every early stop the task has (a plateau rule) fires at its earliest;
            ``None``: always ``count``. A plan with such probes states a range (:attr:`Plan.has_range`).
    """

    what: str
    count: float
    flops: float
    run: Callable[[], Any] | None = None
    scale: float = 1.0
    warmup: bool = True
    seconds: float | None = None
    fewest: float | None = None

    @property
    def each(self) -> float:
        """Seconds of one occurrence: measured, else from the FLOP model."""
        return self.seconds * self.scale if self.seconds is not None else self.flops / NOMINAL_FLOPS


@dataclass(frozen=True)
class Phase:
    """``tasks`` equal tasks of one kind; ``parallel``: independent shards (else run in the caller)."""

    kind: str
    tasks: int
    probes: tuple[Probe, ...]
    memory: float  # peak bytes of one task (an estimate)
    parallel: bool = True

    @property
    def seconds(self) -> float:
        """CPU seconds of one task."""
        return sum(p.count * p.each for p in self.probes)

    @property
    def least_seconds(self) -> float:
        """CPU seconds of one task when every early stop fires at its earliest (:attr:`Probe.fewest`)."""
        return sum((p.count if p.fewest is None else p.fewest) * p.each for p in self.probes)

    def wall(self, workers: int, *, least: bool = False) -> float:
        """Wall seconds of the phase on ``workers`` workers (ceil of tasks over workers); ``least``: with
        :attr:`least_seconds` per task."""
        slots = max(1, workers) if self.parallel else 1
        return math.ceil(self.tasks / slots) * (self.least_seconds if least else self.seconds)


@dataclass(frozen=True)
class Plan:
    """What a study's run will cost; see the module docstring for the arithmetic."""

    study: str
    phases: tuple[Phase, ...]
    notes: tuple[str, ...] = ()
    calibrated: bool = False
    calibration_seconds: float = 0.0
    threads: int = 1

    @property
    def tasks(self) -> int:
        return sum(p.tasks for p in self.phases)

    @property
    def cpu_seconds(self) -> float:
        return sum(p.tasks * p.seconds for p in self.phases)

    @property
    def memory(self) -> float:
        """The largest per-task peak memory of any phase."""
        return max((p.memory for p in self.phases), default=0.0)

    @property
    def has_range(self) -> bool:
        """Whether an early stop can shorten the run (some probe has a ``fewest``): the plan is then a
        range, from every early stop at its earliest up to every budget spent."""
        return any(p.fewest is not None for ph in self.phases for p in ph.probes)

    @property
    def least_cpu_seconds(self) -> float:
        return sum(p.tasks * p.least_seconds for p in self.phases)

    def wall(self, workers: int, *, least: bool = False) -> float:
        """Wall seconds on ``workers`` workers (the phases one after another); ``least``: the range's low end."""
        return sum(p.wall(workers, least=least) for p in self.phases)


def local_slots(workers: int) -> int:
    """Workers that run at once on this machine: at most one per core."""
    return max(1, min(workers, os.cpu_count() or 1))


def _time(run: Callable[[], Any], warmup: bool = True) -> float:
    """CPU seconds of one ``run``: the fastest of up to ``PROBE_ROUNDS`` rounds' means (each round
    repeats ``run`` for ``PROBE_SECONDS / PROBE_ROUNDS``, at most ``PROBE_REPEATS`` times; no new round
    once ``PROBE_SECONDS`` are spent, so a slow probe runs once). Other processes on the machine only
    ever add time (shared caches and memory bandwidth slow a process even in its own CPU time), so the
    fastest round is the better estimate of the run's own cost (measured on nif's paper step: rounds
    of 0.011-0.018 s beside another run, 0.012 s in the idle run itself)."""
    if warmup:
        run()  # allocations, lazy initialisation (optimizer state), caches
    best, total, rounds = math.inf, 0.0, 0
    while rounds < PROBE_ROUNDS and (rounds == 0 or total < PROBE_SECONDS):
        reps, start = 0, time.process_time()
        while True:
            run()
            reps += 1
            spent = time.process_time() - start
            if spent >= PROBE_SECONDS / PROBE_ROUNDS or reps >= PROBE_REPEATS:
                break
        best, total, rounds = min(best, spent / reps), total + spent, rounds + 1
    return best


def calibrate(plan: Plan) -> Plan:
    """``plan`` with every probe that has a ``run`` timed on this machine (one torch thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        phases = tuple(replace(ph, probes=tuple(replace(p, seconds=_time(p.run, p.warmup)) if p.run is not None else p
                                                for p in ph.probes)) for ph in plan.phases)
    finally:
        torch.set_num_threads(before)
    return replace(plan, phases=phases, calibrated=True, calibration_seconds=time.perf_counter() - start, threads=1)


def finish(plan: Plan, calibrate_now: bool) -> Plan:
    """The plan, calibrated when asked (what every study's hook returns)."""
    return calibrate(plan) if calibrate_now else plan


# --- helpers shared by the studies' plan modules -------------------------------------------------

#: floating-point work a forward-pass probe is sized to (its rows are cut to fit; the rest is scaled)
PROBE_FLOPS = 5e8


def probe_rows(rows: int, flops_per_row: float) -> int:
    """Rows a forward-pass probe runs: ``rows``, or fewer (at least 64) to stay near ``PROBE_FLOPS``."""
    return max(1, min(rows, max(64, int(PROBE_FLOPS // max(flops_per_row, 1.0)))))


def mlp_flops(sizes: list[int] | tuple[int, ...], rows: int, *, backward: bool = False) -> float:
    """FLOPs of ``rows`` forward passes of a dense MLP of ``sizes`` (×3 with the backward pass)."""
    f = 2.0 * rows * sum(a * b for a, b in zip(sizes, sizes[1:]))
    return 3.0 * f if backward else f


def mlp_params(sizes: list[int] | tuple[int, ...]) -> int:
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def training_memory(params: float, activations: float, data: float = 0.0) -> float:
    """Peak bytes of training in float32: weights, gradient, two Adam moments, a saved copy and masks
    (~6 copies per parameter), the activations kept for the backward pass (×2) and the data."""
    return 4.0 * (6.0 * params + 2.0 * activations) + data


def step_probe(what: str, count: float, model: torch.nn.Module, x: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor],
               flops: float, optimizer: str = "adam", masked: bool = False) -> Probe:
    """A probe of one optimizer step (forward, backward, Adam) of ``model`` on the batch ``x``;
    ``masked``: of a copy pruned to half its weights, with the masks enforced after the step (as
    every retraining step of a cascade runs)."""
    import copy

    from sciprune.core import enforce_masks
    from sciprune.core import prune

    cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    if masked:
        model = copy.deepcopy(model)
        prune(model, 0.5, criterion="magnitude")
    opt = cls(model.parameters(), lr=1e-6)
    if masked:
        enforce_masks(model, opt)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        loss(model(x)).backward()
        opt.step()

    return Probe(what, count, flops, run)
