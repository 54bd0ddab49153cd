"""The protocol of ``sciprune prune``: trace the user's network, (train,) then one cascade per method.

* The network is wrapped in :class:`sciprune.core.Traced` (its pruning units come from its traced
  graph, with a few training samples as example inputs; the factory and its keyword arguments are
  recorded so checkpoints rebuild it without pickles; ``load_model(path).module`` is the user's
  network, narrower). A network that takes its inputs as one tuple (``inputs: tuple``, DeepXDE) is
  traced with that tuple as its one example input.
* ``train.epochs > 0`` trains it first (Adam on the mean squared error over the training split).
* Per method a cascade walks the schedule (``mode``: one-shot from the dense network or iterative),
  retraining ``retrain_epochs`` after each step: ``weight`` masks the smallest weights of every
  weight unit, ``neuron`` the neurons with the smallest L2 norm of their slices in every group,
  ``id`` keeps in every group as many neurons as ``neuron`` does (at least one) by interpolative
  decomposition of the group's activations on ``id_samples`` training samples, folding the
  interpolation matrix into every consumer; a group read by something not linear in it (the
  contraction of DeepONet's branch·trunk product) cannot be folded and is pruned by neuron L2.
* Each stage is evaluated on the held-out split (``rel_error`` = ‖ŷ − y‖ / ‖y‖ over all held-out
  outputs, ``mse``), compacted (``compact_params``, ``compact_nnz``, ``compact_flops``, ``compact_rel_diff``: the
  largest relative difference between the compacted and the masked network's held-out outputs) and
  the compacted network saved to ``checkpoints/compact/<method>-<stage>-s<sparsity>.safetensors``.

The retraining loop is the core cascade (:func:`sciprune.core._cascade.run_cascade`) with a
supervised MSE epoch over the samples' calling convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Method, Pruning, StageInfo, build_model, count_params, dense_weights, flops,
    global_stream_from, network_stats, prune, resolve_method, run_cascade, save_checkpoint, torch_generator, train_dense,
    units_of,
)
from sciprune.errors import InputError
from sciprune.studies.base import RunContext
from sciprune.studies.prune.names import stage_name
from sciprune.studies.prune.config import ALIASES, EXAMPLE, PruneStudyConfig
from sciprune.studies.prune.example import example_field
from sciprune.studies.prune.samples import Samples, Split, load_samples, split
from sciprune.studies.prune.usermodel import dtype_of, user_network

EXAMPLE_SAMPLES = 1024
TRACE_SAMPLES = 8


def samples_of(cfg: PruneStudyConfig) -> Samples:
    """The config's samples: its ``.npz``, or the example's generated field (example model only)."""
    if cfg.data is not None:
        return load_samples(cfg.data, shared=list(cfg.shared), packing=cfg.inputs)
    assert cfg.model == EXAMPLE
    x, y = example_field(EXAMPLE_SAMPLES, torch_generator(cfg.seed, "example-data"))
    return Samples(("x",), (x,), (False,), y, "args")


def prepare(cfg: PruneStudyConfig, device: torch.device = torch.device("cpu")) -> tuple[nn.Module, Split]:
    """The traced network and the split samples (each check one InputError line)."""
    samples = samples_of(cfg)
    with global_stream_from(torch_generator(cfg.seed, "factory")):  # a factory's own draws (nn.Linear's init)
        net = user_network(cfg.model, dict(cfg.model_kwargs), cfg.weights, samples)
    data = split(samples, cfg.test_fraction, torch_generator(cfg.seed, "split"))
    dtype = dtype_of(net)
    example = data.train.head(TRACE_SAMPLES).to(torch.device("cpu"), dtype)
    from sciprune.core import Traced

    try:
        traced = Traced(net, example.args, factory=cfg.model, factory_kwargs=dict(cfg.model_kwargs))
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - tracing a user's network may fail in any way
        detail = " ".join(str(err).split())[:200]
        raise InputError(f"--model {cfg.model!r}: the network could not be traced ({type(err).__name__}: {detail}); "
                         "expected a forward pass torch.fx or torch.export can follow (see sciprune.core._explain)") from None
    return traced.to(device), Split(data.train.to(device, dtype), data.test.to(device, dtype))


def mse_epoch(train: Samples, batch_size: int, model: nn.Module, optimizer: torch.optim.Optimizer,
              generator: torch.Generator) -> float:
    """One pass over ``train`` in minibatches shuffled by ``generator``: mean squared error; its mean.
    What the network draws from the global random stream (dropout) is seeded by ``generator`` too
    (``core.global_stream_from``), so a run and its resume train it the same way."""
    model.train()
    order = torch.randperm(train.n, generator=generator).to(train.y.device)
    total = 0.0
    with global_stream_from(generator, [train.y.device]):
        for start in range(0, train.n, batch_size):
            batch = train.take(order[start : start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(batch.call(model), batch.y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.n
    return total / train.n


@torch.no_grad()
def errors(model: nn.Module, test: Samples) -> dict[str, float]:
    """Held-out relative L2 error ‖ŷ − y‖ / ‖y‖ and mean squared error."""
    pred = test.call(model.eval()).double()
    y = test.y.double()
    diff = float(torch.linalg.vector_norm(pred - y))
    return {"rel_error": diff / max(float(torch.linalg.vector_norm(y)), 1e-300), "mse": diff**2 / y.numel()}


def max_rel_diff(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max |b|`` (the largest difference, relative to the output's scale)."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def compact_path(ctx: RunContext, name: str) -> Any:
    folder = ctx.checkpoints / "compact"
    folder.mkdir(exist_ok=True)
    return folder / f"{name}.safetensors"


@torch.no_grad()
def evaluate(ctx: RunContext, test: Samples, name: str, meta: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Errors of ``model``; its compacted network counted, checked against it and saved as ``name``."""
    from sciprune.core import compact

    out = errors(model, test)
    small = compact(model).eval()
    sizes = count_params(small)
    out.update({"compact_params": sizes.total, "compact_nnz": sizes.nonzero, "compact_flops": flops(small),
                "compact_rel_diff": max_rel_diff(test.call(small), test.call(model))})
    save_checkpoint(compact_path(ctx, name), small, meta=meta)
    return out


def method_of(name: str) -> Method:
    """The registered method ``name`` (:mod:`sciprune.core._methods`); ``neuron`` is the ``neuron_l2`` criterion."""
    return resolve_method(ALIASES.get(name, name))


@dataclass(frozen=True)
class PruneSteps(CascadeProtocol):
    """The cascade's pieces for the user's traced network and one ``method`` (``""`` for dense training)."""

    cfg: PruneStudyConfig
    ctx: RunContext
    data: Split
    method: str = ""

    def build(self, arch: dict[str, Any]) -> nn.Module:
        return build_model(arch).to(self.ctx.device)

    def optimizer(self, params: Any) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(params, lr=self.cfg.train.lr), None

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        return mse_epoch(self.data.train, self.cfg.train.batch_size, model, optimizer, generator)

    def evaluate(self, model: nn.Module, stage: StageInfo) -> dict[str, Any]:
        meta = {"method": self.method, "sparsity": stage.sparsity, "stage": stage.index}
        return evaluate(self.ctx, self.data.test, stage_name(self.method, stage.index, stage.sparsity), meta, model)

    def id_samples(self, model: nn.Module, generator: torch.Generator, stage: StageInfo) -> tuple[Tensor, ...]:
        """``id_samples`` training samples (in their order) for the cascade's ID, which keeps the widths of
        the dense network's groups; a group read by something not linear in it (DeepONet's branch·trunk
        contraction) cannot be folded and is pruned by neuron L2 at the stage's sparsity (``run``'s
        ``Pruning(..., unfoldable="neuron_l2")``)."""
        train = self.data.train
        idx = torch.randperm(train.n, generator=generator)[: self.cfg.id_samples].sort().values.to(train.y.device)
        return train.take(idx).args


def run(cfg: PruneStudyConfig, ctx: RunContext) -> None:
    """Dense (trained or as loaded), then one cascade per method; rows into metrics.csv, then timing."""
    from sciprune.studies.prune.timing import write_timing

    model, data = prepare(cfg, ctx.device)
    steps = PruneSteps(cfg, ctx, data)
    dense = train_dense(model, steps, epochs=cfg.train.epochs, seed=cfg.seed, checkpoint=ctx.checkpoints / "dense.pt",
                        resume=ctx.resume, progress=ctx.progress)
    model.eval()
    with torch.no_grad():
        rows: list[dict[str, Any]] = [{
            "method": "dense", "seed": cfg.seed, "stage": -1, "sparsity": 0.0,
            **network_stats(model, dense_weights(model)),
            **evaluate(ctx, data.test, "dense", {"method": "dense", "sparsity": 0.0}, model)}]
    ctx.write_rows(rows)
    spec = CascadeSpec(tuple(cfg.sparsities), mode=cfg.mode, retrain_epochs=cfg.retrain_epochs, retrain=cfg.retrain)
    for method in cfg.methods:
        stage_rows = run_cascade(dense, spec, replace(steps, method=method), seed=cfg.seed, key=method,
                                 checkpoint_dir=ctx.checkpoints / method, resume=ctx.resume, progress=ctx.progress,
                                 pruning=Pruning(method_of(method), unfoldable="neuron_l2"))
        rows.extend({"method": method, "seed": cfg.seed, **row} for row in stage_rows)
        ctx.write_rows(rows)
    write_timing(cfg, ctx, data.test)


def check(cfg: PruneStudyConfig) -> None:
    """The factory, weights and samples, checked (and the network traced), the run's estimated memory
    against ``memory_limit`` (:mod:`.memory`) and the ID's samples (:func:`check_id_rows`), before
    anything is written."""
    from sciprune.studies.prune.memory import check_memory

    model, data = prepare(cfg)
    check_memory(cfg, model, data)
    check_id_rows(cfg, model, data.train)


def check_id_rows(cfg: PruneStudyConfig, model: nn.Module, train: Samples) -> None:
    """Refuse an ID method that keeps more neurons of a group than the group's activation matrix has rows
    on ``id_samples`` training samples (:mod:`sciprune.studies.idrows`). A group's rows are
    ``fixed + per_sample * k`` for ``k`` samples, counted on one and two (``fixed``: positions from
    inputs every sample shares, a Cartesian DeepONet's trunk points)."""
    from sciprune.core import Traced, activation_rows, kept_width

    ids = [m for m in cfg.methods if method_of(m).is_id]
    if not ids or not isinstance(model, Traced):
        return
    one = activation_rows(model, train.head(1).args)
    two = activation_rows(model, train.head(2).args) if train.n > 1 else None
    per = {g: two[g] - r for g, r in one.items()} if two is not None else one
    k = min(cfg.id_samples, train.n)
    units, shapes = units_of(model), {n: tuple(p.shape) for n, p in model.named_parameters()}
    for name in ids:
        for sparsity in cfg.sparsities:
            for g, w in kept_width(units, sparsity, method_of(name).width, shapes=shapes).items():
                fixed = one[g] - per[g] if g in one else 0
                if g not in one or w <= (rows := fixed + per[g] * k):
                    continue
                need = math.ceil((w - fixed) / per[g]) if per[g] > 0 else None
                if need is None:
                    fix = f"a sparsity that keeps at most {rows} of its neurons (its rows come from inputs every sample shares)"
                elif need <= train.n:
                    fix = f"id_samples >= {need}"
                else:
                    fix = f"{need} training samples for the ID, of which the split has {train.n} (or a larger sparsity)"
                raise InputError(f"method {name!r} keeps {w} neurons of group {g!r} at sparsity {sparsity}, but its ID "
                                 f"sees {rows} activation rows on id_samples={k} training samples, and an ID keeps at "
                                 f"most as many neurons as it has rows; expected {fix}")
