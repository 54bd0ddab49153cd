"""The cost plan of ``sciprune nif`` (``--plan``): dense training, then the cascades.

Phase 1: the dense NIF, ``epochs`` × ⌈n_train / batch⌉ Adam steps (plus ``lbfgs_iters`` full-batch
L-BFGS iterations, each priced as ~2 full-batch steps for the line search). Phase 2: one task per
cascade — every method's retrained cascade (``sparsities`` × ``retrain_epochs`` epochs, priced at the
dense network's step: an upper bound, pruned NIFs are narrower) and the same-epochs dense control;
phase 3: every method's one-shot cascade (evaluations only). Each stage evaluates the test rows and
saves the field. The data are generated (or read) as the run would; the probes time the real NIF.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciprune.nn.nif import build_nif
from sciprune.studies.nif.config import NifConfig
from sciprune.studies.nif.protocol import arch_of, load_data
from sciprune.studies.nif.train import epochs_for, weighted_mse
from sciprune.studies.planning import Phase, Plan, Probe, finish, probe_rows, step_probe, training_memory

#: whether this branch runs the cascades as independent shards (``map_shards``); they run in the caller here
SHARDED = True


def plan(cfg: NifConfig, calibrate: bool) -> Plan:
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    data = load_data(cfg)
    rows = int(data.u.shape[0])
    n_test = round(cfg.data.held_out * rows) or rows  # nothing held out: tested on the training rows
    n_train = rows - (n_test if cfg.data.held_out else 0)
    d_in = int(data.p.shape[1] + data.x.shape[1])
    model = build_nif(arch_of(cfg, data), torch.Generator().manual_seed(0)).to(dtype)
    params = sum(p.numel() for p in model.parameters())
    bs = min(cfg.train.batch_size, n_train)
    steps = math.ceil(n_train / bs)
    epochs = epochs_for(cfg.train.epochs, cfg.train.steps, 200, n_train, cfg.train.batch_size)
    retrain_epochs = epochs_for(cfg.prune.retrain_epochs, cfg.prune.retrain_steps, 20, n_train, cfg.train.batch_size)
    g = torch.Generator().manual_seed(0)
    # real rows (a NIF runs ShapeNet once per distinct p in a batch: random inputs would time the worst case)
    table = torch.from_numpy(np.concatenate([data.p, data.x], axis=1).astype(np.float64)).to(dtype)
    x = table[torch.randperm(rows, generator=g)[:bs]]
    target = torch.rand(bs, int(data.u.shape[1]) + 1, generator=g, dtype=dtype)
    # a hypernetwork's forward: ParameterNet generates every row's ShapeNet weights (~2 x params per row)
    flops_row = 2.0 * params
    x_eval = table[: probe_rows(rows, flops_row)]

    def forward() -> None:
        with torch.no_grad():
            model(x_eval)

    def step(count: float) -> Probe:
        return step_probe(f"training step, batch {bs}, {cfg.model.family} ({params} parameters)", count, model, x,
                          lambda out: weighted_mse(out, target), 3 * flops_row * bs)

    def evaluation(count: float) -> Probe:
        return Probe(f"evaluation of the test rows ({n_test}) and the saved field ({rows} rows)", count,
                     flops_row * len(x_eval), forward, (n_test + rows) / len(x_eval))

    p = cfg.prune
    stages = len(p.sparsities)
    per_epoch_best = (n_train / len(x_eval)) if p.keep_best else 0.0  # keep_best: a full forward per epoch
    dense_probes = [step(epochs * steps + 2 * cfg.train.lbfgs_iters * steps), evaluation(1)]
    memory = training_memory(params, bs * flops_row / 4, 4.0 * rows * (d_in + data.u.shape[1] + 1))
    phases = [Phase("dense training", 1, tuple(dense_probes), memory, parallel=False)]
    retrained = len(p.methods) + (1 if p.control else 0) if retrain_epochs else 0
    if retrained:
        width = cfg.model.shape.units
        id_flops = 4.0 * p.id_samples * width * width * max(cfg.model.shape.nlayers, 1)
        probes = [step(stages * retrain_epochs * steps), evaluation(stages + stages * retrain_epochs * per_epoch_best)]
        if "id" in p.methods:
            probes.append(Probe(f"ID of the ShapeNet nodes on {p.id_samples} rows (share of a task)",
                                stages / retrained, id_flops))
        phases.append(Phase("retrained cascade (a method, or the same-epochs dense control)", retrained, tuple(probes),
                            memory, parallel=SHARDED))
    if p.oneshot or not p.retrain_epochs:
        phases.append(Phase("one-shot cascade (a method)", len(p.methods), (evaluation(stages),), memory, parallel=SHARDED))
    notes = ["retraining is priced at the dense network's step time (an upper bound: pruned NIFs are narrower)",
             "the ID step is priced by its FLOP model (QR of id_samples x width per ShapeNet layer), not timed"]
    if not SHARDED:
        notes.append("this version runs the cascades one after another in the calling process: --workers does not "
                     "shorten it")
    if cfg.timing:
        notes.append("the timing pass (timing.csv, seconds) is not priced")
    return finish(Plan("nif", tuple(phases), tuple(notes)), calibrate)
