"""The cost plan of ``sciprune classify`` (``--plan``): one task per seed, then the timing pass.

A seed's task: dense training (``epochs`` × ⌈n_train / batch⌉ Adam steps), for each method and
variant one evaluation, compaction and checkpoint per sparsity, the retrained variant's
``retrain_epochs`` epochs per sparsity (priced as dense steps: an upper bound for ``unit`` / ``id``,
whose retrained networks are narrower), and for ``id`` one interpolative decomposition per
sparsity and variant. The probes run on random data of the data set's shape (digits: 1 797 × 64;
MNIST / Fashion-MNIST: 60 000 + 10 000 × 784), so no data file is read.
"""

from __future__ import annotations

import io
import math

import torch
import torch.nn.functional as F

from sciprune.core import compact, id_prune_mlp
from sciprune.nn.mlp import MLP
from sciprune.studies.classify.config import ClassifyConfig
from sciprune.studies.classify.timing import TIMED_SPARSITIES
from sciprune.studies.planning import Phase, Plan, Probe, finish, mlp_flops, mlp_params, probe_rows, step_probe, training_memory

#: (rows, features) of each data set: digits (split by test_fraction), MNIST-format IDX files
SHAPES = {"digits": (1797, 64), "mnist": (70000, 784), "fashion-mnist": (70000, 784)}
TIMING_REPEATS = 9  # paired_times: best of 9 of the dense and of the compacted network, alternately


def sizes_of(cfg: ClassifyConfig) -> tuple[list[int], int, int]:
    """``(layer sizes, training rows, test rows)`` of ``cfg``'s data set (without reading it)."""
    rows, features = SHAPES[cfg.data.name]
    if cfg.data.name == "digits":
        n_test = int(round(cfg.data.test_fraction * rows))
        n_train = rows - n_test
    else:
        n_train, n_test = 60000, 10000
    if cfg.data.limit_train is not None:
        n_train = min(n_train, cfg.data.limit_train)
    return [features, *cfg.model.hidden, 10], n_train, n_test


def plan(cfg: ClassifyConfig, calibrate: bool) -> Plan:
    sizes, n_train, n_test = sizes_of(cfg)
    bs = min(cfg.train.batch_size, n_train)
    steps = math.ceil(n_train / bs)
    p = cfg.prune
    variants = 2 if p.retrain_epochs else 1
    stages = len(p.methods) * variants * len(p.sparsities)
    g = torch.Generator().manual_seed(0)
    net = MLP(sizes, cfg.model.activation, generator=g)
    x = torch.rand(bs, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (bs,), generator=g)
    x_test = torch.rand(probe_rows(n_test, mlp_flops(sizes, 1)), sizes[0], generator=g)
    x_id = torch.rand(min(p.id_samples, n_train), sizes[0], generator=g)

    def evaluate() -> None:
        with torch.no_grad():
            net(x_test).argmax(1)

    def checkpoint() -> None:
        state = {k: v.clone() for k, v in net.state_dict().items()}
        torch.save({"state": state, "moments": [state, state]}, io.BytesIO())

    def id_step() -> None:
        id_prune_mlp(net, x_id, rank=[max(1, w - round(0.5 * w)) for w in sizes[1:-1]])  # half of each layer

    arch = f"batch {bs}, MLP {'-'.join(map(str, sizes))}"
    probes = [
        step_probe(f"training step, {arch}", cfg.train.epochs * steps, net, x, lambda out: F.cross_entropy(out, y),
                   mlp_flops(sizes, bs, backward=True)),
        step_probe(f"retraining step (masks enforced), {arch}", len(p.methods) * len(p.sparsities) * p.retrain_epochs * steps,
                   net, x, lambda out: F.cross_entropy(out, y), mlp_flops(sizes, bs, backward=True), masked=True),
        Probe(f"evaluation on {n_test} test rows", 1 + stages, mlp_flops(sizes, n_test), evaluate, n_test / len(x_test)),
        Probe("compaction", 1 + stages, 4.0 * mlp_params(sizes), lambda: compact(net)),
        Probe("stage checkpoint (network and Adam moments)", 1 + stages, 4.0 * mlp_params(sizes), checkpoint),
    ]
    if "id" in p.methods:
        width = max(sizes[1:-1])
        probes.append(Probe(f"ID pruning on {len(x_id)} samples", variants * len(p.sparsities),
                            mlp_flops(sizes, len(x_id)) + 4.0 * len(x_id) * width * width * (len(sizes) - 2), id_step,
                            warmup=False))  # seconds at the paper's widths: one run is the measurement
    # timing.TIMED_SPARSITIES: the stages nearest 50 / 75 / 90 %; a compacted net costs ~(1 - s)^2 of the dense one
    stages_timed = sorted({min(p.sparsities, key=lambda s: abs(s - t)) for t in TIMED_SPARSITIES})
    timed = len([m for m in p.methods if m in ("unit", "id")]) * sum(1.0 + (1.0 - s) ** 2 for s in stages_timed)
    x_time = torch.rand(probe_rows(cfg.timing_batch, mlp_flops(sizes, 1)), sizes[0], generator=g)

    def forward() -> None:
        with torch.no_grad():
            net(x_time)

    params = mlp_params(sizes)
    memory = training_memory(params, bs * sum(sizes), 4.0 * (n_train + n_test) * sizes[0])
    phases = [Phase("seed (dense training, every method x variant cascade)", cfg.repeats, tuple(probes), memory)]
    if timed:
        phases.append(Phase("inference timing of compacted networks (timing.csv)", 1,
                            (Probe(f"forward pass, batch {cfg.timing_batch}", timed * TIMING_REPEATS,
                                   mlp_flops(sizes, cfg.timing_batch), forward, cfg.timing_batch / len(x_time)),),
                            training_memory(params, cfg.timing_batch * max(sizes)), parallel=False))
    notes = ("retraining is priced at the dense network's step time for every method (an upper bound for "
             "unit and id, whose retrained networks are narrower)",
             "the probes run on random data of the data set's shape; no data file is read")
    return finish(Plan("classify", tuple(phases), notes), calibrate)
