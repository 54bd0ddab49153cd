"""The cost plan of ``sciprune flows`` (``--plan``): one task per data set and network.

A task (a CNF on a toy density, or a neural ODE classifier on a toy set, for one of ``nets``
seeds): dense training, ``epochs`` × ⌈n_train / batch⌉ steps, then every method's cascade,
``len(sparsities)`` × ``retrain_epochs`` epochs of the same steps and one evaluation per stage
(``nll_reps`` Hutchinson passes over the test set for a CNF, one forward for a classifier). The
probes time a training step and an evaluation of the real model (the preset's field, solver,
tolerances and adjoint) at initialisation, on the first data set of each family.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from sciprune.nn.ode import CNF
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.protocol import Task, build_model, load_toy, tasks
from sciprune.studies.flows.tasks import solver_of
from sciprune.studies.planning import Phase, Plan, Probe, finish, training_memory

#: whether this branch runs the (data set, network) pairs as independent shards; they run in the caller here
SHARDED = True
#: field evaluations assumed per solve for the FLOP model (fixed-step solvers: stages x steps)
NOMINAL_NFE = 30
#: an adaptive solver's field evaluations per training step (forward + backward) grow as the field
#: trains, which the probes at initialisation cannot see. Measured on ``paper_slice`` (gaussians,
#: l4_h64, dopri5 + adjoint at 1e-5, 2 networks; docs/flows.md, 2026-12-05): 40 at initialisation,
#: 94 after the 100 dense epochs, 95-121 in the pruned stages; the run took 79.6 min on 2 workers against
#: 21.8-22.7 min planned by this calibration (three plans, 2026-12-05, one other one-thread job beside
#: them), about 3.6x; a plan made at load before the run said 41.7 min (1.9x).
#: A reference figure of one configuration, printed as such, not a model.
PAPER_SLICE_NFE = (40, 94, 121)
MEASURED_OVER_PLAN = 3.6


def _phase(cfg: FlowsConfig, task: Task, count: int, nfe: dict[str, int]) -> Phase:
    c = task.cfg
    data = load_toy(cfg, task)
    model = build_model(task, cfg.seed)
    params = sum(p.numel() for p in model.parameters())
    bs = min(c.train.batch_size, len(data.x_train))
    steps = math.ceil(len(data.x_train) / bs)
    epochs = cfg.prune.retrain_epochs if cfg.prune.retrain_epochs is not None else c.train.epochs
    stages = len(cfg.prune.sparsities)
    methods = len(cfg.prune.methods)
    g = torch.Generator().manual_seed(0)
    xb, yb = data.x_train[:bs], data.y_train[:bs]
    cls = torch.optim.AdamW if c.train.optimizer == "adamw" else torch.optim.Adam
    opt = cls(model.parameters(), lr=1e-9)
    density = isinstance(model, CNF)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model.nll(xb, generator=g) if isinstance(model, CNF) else F.cross_entropy(model(xb), yb)
        forward = model.nfe_forward
        loss.backward()
        opt.step()
        nfe[task.key] = forward + model.backward_nfe()

    x_eval = data.x_test[: getattr(c, "eval_batch", len(data.x_test))]

    def evaluate() -> None:
        with torch.no_grad():
            if isinstance(model, CNF):
                model.log_prob(x_eval, generator=g)
            else:
                model(x_eval)

    reps = getattr(c, "nll_reps", 1)
    trace = 3 if density else 1  # a CNF's Hutchinson trace: one more vector-Jacobian product per evaluation
    flops_row = 2.0 * params * NOMINAL_NFE * trace
    probes = (
        Probe(f"training step, batch {bs}, {c.field.kind} l{c.field.layers}_h{c.field.hidden}, {c.solver.method}"
              + (" + adjoint" if c.solver.adjoint else ""), c.train.epochs * steps + methods * stages * epochs * steps,
              3 * flops_row * bs, step),
        Probe(f"evaluation of {len(x_eval)} test rows" + (f" (x{reps} Hutchinson passes)" if density else ""),
              (1 + methods * stages) * reps * len(data.x_test) / len(x_eval), flops_row * len(x_eval), evaluate),
    )
    memory = training_memory(params, bs * NOMINAL_NFE * c.field.hidden * c.field.layers * (1 if c.solver.adjoint else 4),
                             4.0 * 3 * (len(data.x_train) + len(data.x_test)))
    what = "CNF" if density else "neural ODE classifier"
    return Phase(f"{what} network (dense + {methods} method cascades of {stages} stages): "
                 f"{', '.join(n for n in (cfg.densities.names if density else cfg.classifiers.names))} x {cfg.nets} nets",
                 count, probes, memory, parallel=SHARDED)


def plan(cfg: FlowsConfig, calibrate: bool) -> Plan:
    all_tasks = tasks(cfg)
    phases = []
    nfe: dict[str, int] = {}  # field evaluations of one probed training step, by task (when calibrated)
    firsts = []
    for kind in ("density", "classifier"):
        of_kind = [t for t in all_tasks if t.kind == kind]
        if of_kind:
            firsts.append(of_kind[0])
            phases.append(_phase(cfg, of_kind[0], len(of_kind) * cfg.nets, nfe))
    notes = ["FT / ID retraining is priced at the dense step (pruned fields are narrower: an upper bound there for a "
             "fixed-step solver)",
             "not priced: each task's analyses (density maps, Hessian; in its first network's shard, after the "
             "cascades) and the timing pass after all shards (in the calling process)"]
    if not SHARDED:
        notes.append("this version runs the networks one after another in the calling process: --workers does not "
                     "shorten it")
    done = finish(Plan("flows", tuple(phases), tuple(notes)), calibrate)
    adaptive = [t for t in firsts if solver_of(t).adaptive]
    if adaptive:
        probed = ", ".join(f"{nfe[t.key]} ({t.name})" for t in adaptive if t.key in nfe) or "not probed (FLOP model)"
        first, dense, stages = PAPER_SLICE_NFE
        done = dataclasses.replace(done, notes=(*done.notes, (
            f"adaptive solver: a probed training step needed {probed} field evaluations at initialisation, and a "
            f"trained field needs more; on paper_slice (measured) they went from {first} to {dense} after dense "
            f"training and up to {stages} in the pruned stages, and that run took {MEASURED_OVER_PLAN:.1f}x its "
            f"plan: expect up to about {MEASURED_OVER_PLAN:.1f}x the times above for a field trained as long")))
    return done
