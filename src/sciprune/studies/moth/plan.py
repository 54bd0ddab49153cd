"""The cost plan of ``sciprune moth train`` (``--plan``): simulate the data, then train the shards.

Phase 1 (only without ``data.path``): ``⌈samples / 8192⌉`` simulation chunks (dask tasks), priced
by integrating a slice of a chunk. Phase 2: ``shards`` tasks, each the stacked ensemble of its
``⌈members / shards⌉`` members: ``max_batches_dense + len(schedule) · max_batches_stage`` Adam
steps of the stacked model (the budget: the plateau rule can stop members earlier; the paper network's
runs used 22 % of it, docs/moth.md), a validation check
on ``val_rows`` every ``check_every`` batches, and per stage one test and one validation pass over
the whole splits plus a checkpoint. The low end of the plan's range (``fewest``) is every stage
stopping at the first check the plateau rule allows (:func:`~sciprune.studies.moth.ensemble.earliest_stop`:
``2·window`` batches, the dense stage at least ``min_batches_dense``): the run's real count lies between.
"""

from __future__ import annotations

import io
import math

import torch

from sciprune.core import torch_generator
from sciprune.nn.mlp import MLP
from sciprune.nn.stacked import StackedMLP
from sciprune.studies.moth.config import MothConfig
from sciprune.studies.moth.ensemble import earliest_stop, make_adam
from sciprune.studies.moth.simulate import simulate_range
from sciprune.studies.planning import Phase, Plan, Probe, finish, mlp_flops, mlp_params, probe_rows, training_memory

CHUNK = 8192  # samples per simulation task (protocol.data_file)
#: samples the simulation probe integrates: the batched integrator's time is about a + b·n (a ≈ 0.9 s, b ≈ 1.2 ms
#: a sample on a loaded core), so a quarter chunk scaled ×4 overestimates a chunk by ~25 %
SIM_SLICE = 2048
#: floating-point work of one simulated sample (adaptive Rodas4, ~20 steps of a 4-DOF model; a rough figure)
SIM_FLOPS = 2e6
ROW_BYTES = 19 * 8  # one simulated row in the HDF5 file (float64)


def plan(cfg: MothConfig, calibrate: bool) -> Plan:
    sizes = [10, *cfg.model.hidden, 7]
    members = math.ceil(cfg.members / cfg.shards)
    t = cfg.train
    rows = cfg.data.samples if cfg.data.max_rows is None else min(cfg.data.samples, cfg.data.max_rows)
    n_test, n_val = round(cfg.data.test_fraction * rows), round(cfg.data.val_fraction * rows)
    stages = 1 + len(cfg.schedule)

    def run_of(dense: int, stage: int) -> tuple[int, int]:
        """(batches, validation checks) of a shard whose dense stage runs ``dense`` batches and each pruning stage ``stage``."""
        return dense + len(cfg.schedule) * stage, dense // t.check_every + len(cfg.schedule) * (stage // t.check_every)

    batches, checks = run_of(t.max_batches_dense, t.max_batches_stage)
    dense_least, stage_least = earliest_stop(cfg, t.max_batches_dense, t.min_batches_dense), earliest_stop(cfg, t.max_batches_stage)
    batches_least, checks_least = run_of(dense_least, stage_least)
    model = StackedMLP.from_members([MLP(sizes, cfg.model.activation, generator=torch_generator(cfg.seed, "member", p))
                                     for p in range(members)])
    opt = make_adam(list(model.parameters()), t.lr, members)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(t.batch_size, 10, generator=g), torch.rand(t.batch_size, 7, generator=g)
    per_row = mlp_flops(sizes, 1) * members
    x_eval = torch.rand(probe_rows(max(n_test, 1), per_row), 10, generator=g)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        ((model(x) - y) ** 2).mean(dim=(1, 2)).sum().backward()
        opt.step()

    def evaluate() -> None:
        with torch.no_grad():
            (model(x_eval) ** 2).sum()

    def checkpoint() -> None:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save({"state": state, "moments": [state, state]}, io.BytesIO())

    def evaluations(n_checks: int) -> float:
        return (n_checks * min(t.val_rows, n_val) + stages * (n_test + n_val)) / len(x_eval)

    params = members * mlp_params(sizes)
    probes = (
        Probe(f"training step of {members} stacked members, batch {t.batch_size}, {'-'.join(map(str, sizes))}",
              batches, 3 * per_row * t.batch_size, step, fewest=batches_least),
        Probe(f"evaluation of {members} members on {len(x_eval)} rows (validation checks, test and validation splits)",
              evaluations(checks), per_row * len(x_eval), evaluate, fewest=evaluations(checks_least)),
        Probe("stage checkpoint (stacked network and Adam moments)", stages, 4.0 * params, checkpoint),
    )
    # the training split lives in each shard (float32 x and y), the file is read in float64
    data = 4.0 * rows * 17 + 8.0 * rows * 19
    memory = training_memory(params, t.batch_size * members * sum(sizes), data) + 4.0 * batches
    phases = []
    if cfg.data.path is None:
        chunks = math.ceil(cfg.data.samples / CHUNK)
        chunk = math.ceil(cfg.data.samples / chunks)  # flights per chunk, on average
        part = min(SIM_SLICE, chunk)
        sim = Probe(f"integration of {part} flights (a chunk is {chunk})", 1, SIM_FLOPS * chunk,
                    lambda: simulate_range(cfg.data.sim_seed, 0, part), chunk / part, warmup=False)
        phases.append(Phase(f"simulation of {cfg.data.samples} flights, chunks of {CHUNK}", chunks, (sim,),
                            chunk * ROW_BYTES * 64))
    phases.append(Phase(f"shard of {members} members (dense stage + {len(cfg.schedule)} pruning stages)",
                        cfg.shards, probes, memory))
    notes = (f"training is a range: from {batches_least} batches a shard (every stage stopped by the plateau rule at "
             f"its earliest: dense {dense_least}, then {stage_least} a stage) to the budget, {batches} (max_batches_dense + "
             "stages x max_batches_stage); the rule decides where in it the run falls",
             "each shard reads the whole data file; remote workers must see it and --out (a shared filesystem)")
    return finish(Plan("moth", tuple(phases), notes), calibrate)
