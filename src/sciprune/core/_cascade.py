"""The prune -> retrain loop every study runs: train dense, then (prune, retrain, evaluate) per stage.

A study writes its pieces once, as one object that follows :class:`CascadeProtocol`:

* ``build(arch)`` rebuilds a network from its ``arch`` (checkpoints, one-shot restarts);
* ``optimizer(params)`` returns ``(optimizer, scheduler or None)``;
* ``train(model, optimizer, generator)`` runs one epoch and returns its mean loss, or a mapping:
  ``loss`` (recorded as ``retrain_loss``), further entries that go into every row of the stage, and
  ``per_member`` (one dict per member of an ensemble, each into its member's row);
* how a stage prunes, one of two ways:

  - the cascade prunes by a method itself (``run_cascade(..., pruning=Pruning(method, ...))``): a
    criterion method masks the network in place (``prune(model, s, method=...)``,
    :func:`~sciprune.core._pruning.prune`), a neuron method keeping
    :func:`~sciprune.core._methods.kept_width` of the *dense* network's groups; an ID method asks the
    protocol only for its data, ``id_samples(model, generator, stage)`` (the inputs of the part an ID
    prunes: the network's, or those of the sub-network its family names by ``id_part()``), and runs
    core's ID to those widths itself (:func:`~sciprune.core._idwidths.id_prune_widths`: a new, smaller
    network);
  - or the protocol prunes (``pruning=None``): ``prune(model, sparsity, generator, stage)`` masks
    ``model`` in place (returning it) or returns a new, smaller network (a study's own scheme, e.g.
    a hypernetwork's nodes);
* ``evaluate(model, stage)`` returns the study's metrics (a dict, or one per ensemble member); it runs
  in eval mode and decides its own grad mode (wrap it in ``torch.no_grad()`` unless it needs autograd,
  like a CNF's likelihood);
* ``on_stage(rows)`` (optional; the base class's does nothing) is told each finished stage's rows,
  after its checkpoint is written.

``stage`` is a :class:`StageInfo` (index in the schedule, sparsity). :func:`train_dense` needs only
``optimizer`` and ``train`` (a :class:`Trainer`), so the same object, or a lighter one, trains the dense
network. :func:`run_cascade` then walks a sparsity schedule from it:

* ``mode="iterative"``: each stage prunes the previous stage's network further (a cascade);
  ``mode="oneshot"``: each stage prunes the dense network directly.
* ``retrain_epochs=0`` evaluates right after pruning (the one-shot curves of Keras_pruning).
* ``retrain`` policy for the retraining epochs:
  ``finetune`` keeps the optimizer state (momenta) at the dense run's final learning rate;
  ``reset`` starts a fresh optimizer at that learning rate;
  ``lr_rewind`` starts a fresh optimizer and replays the learning-rate schedule from its start;
  ``weight_rewind`` also resets the surviving weights to their values after ``rewind_epoch``
  epochs of dense training (lottery-ticket rewinding), then replays the schedule.

Every stage writes a checkpoint; ``resume=True`` continues after the last complete stage and gives
the same numbers as an uninterrupted run (all randomness comes from generators derived from
``seed`` and the stage index, never from global state). A resume checks that the stored spec,
seed and key are the ones asked for (D7): a directory written by another run is refused.
``keep_stages="last"`` deletes a stage's checkpoint once the next one is written (a resume needs
only the last complete stage; an ensemble's 18 stages at the published scale are ~9 GB otherwise);
the default ``"all"`` keeps every stage. Only this module names the stage files: a study finds them
with :func:`stage_checkpoint`, :func:`saved_stages`, :func:`load_stage` and :func:`saved_stage_rows`.

``schedule_every="step"`` steps the learning-rate scheduler after every optimizer step instead of
every epoch (a per-iteration schedule; ``train`` needs no change). For a stacked ensemble (a model
whose units declare ``members > 1``) every stage gives one row per member (``member`` column, that
member's sizes). Study metrics pass through into the rows; a numeric ``nfe`` metric also gives
``flops_nfe = flops * nfe`` (the cost of one prediction of a neural ODE). The train metrics come from
the stage's last retraining epoch; they follow the ``evaluate`` metrics in the row, and an
``evaluate`` metric of the same name wins. ``train_dense`` keeps the last epoch's in
``Dense.train_metrics``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn

from sciprune.core._count import dense_weights as dense_weights
from sciprune.core._count import network_stats as network_stats
from sciprune.core._criteria import get_criterion
from sciprune.core._idwidths import id_prune_widths
from sciprune.core._io import load_state, save_state, shared_names
from sciprune.core._masks import apply_masks, enforce_masks, load_state_dict
from sciprune.core._methods import Method, kept_width
from sciprune.core._pruning import prune
from sciprune.core._seeding import torch_generator
from sciprune.core._units import units_of
from sciprune.errors import InputError

T = TypeVar("T")
Scheduler = Any  # torch.optim.lr_scheduler.LRScheduler (its base class name changed across versions)
Metrics = dict[str, Any] | list[dict[str, Any]]  # one dict, or one per member of an ensemble
BuildFn = Callable[[dict[str, Any]], nn.Module]
Progress = Callable[..., Iterator[Any]]

MODES = ("iterative", "oneshot")
SCHEDULE_EVERY = ("epoch", "step")
RETRAIN_POLICIES = ("finetune", "reset", "lr_rewind", "weight_rewind")
KEEP_STAGES = ("all", "last")


@dataclass(frozen=True)
class StageInfo:
    """What ``prune`` and ``evaluate`` learn about their stage: its index in the schedule and its sparsity."""

    index: int
    sparsity: float


class Trainer(Protocol):
    """What training needs (:func:`train_dense`; the retraining of :func:`run_cascade`)."""

    def optimizer(self, params: Iterable[nn.Parameter]) -> tuple[torch.optim.Optimizer, Scheduler | None]:
        """A fresh optimizer over ``params`` and its learning-rate scheduler (or ``None``)."""
        ...

    def train(self, model: nn.Module, optimizer: torch.optim.Optimizer,
              generator: torch.Generator) -> float | Mapping[str, Any]:
        """One epoch: its mean loss, or a mapping with ``loss`` and more (see the module docstring)."""
        ...


class CascadeProtocol(Trainer, Protocol):
    """A study's pieces of the cascade (see the module docstring). Subclass it to inherit ``on_stage``
    and the refusals of ``prune`` / ``id_samples`` a protocol does not need."""

    def build(self, arch: dict[str, Any]) -> nn.Module:
        """A network from its ``arch`` (weights are loaded by the cascade)."""
        ...

    def prune(self, model: nn.Module, sparsity: float, generator: torch.Generator, stage: StageInfo) -> nn.Module:
        """``model`` pruned to ``sparsity``: masked in place (and returned) or a new network (only called
        when :func:`run_cascade` has no ``pruning``)."""
        raise InputError(f"{type(self).__name__} does not prune by itself: pass pruning=Pruning(method) to run_cascade")

    def id_samples(self, model: nn.Module, generator: torch.Generator, stage: StageInfo) -> Tensor | tuple[Tensor, ...]:
        """The samples an ID of ``model`` is computed on, drawn with ``generator``: inputs of its ID part
        (:func:`~sciprune.core._idwidths.id_part_of`; only called for an ID method of ``pruning``)."""
        raise InputError(f"{type(self).__name__} supplies no data for ID pruning: it cannot run an ID method")

    def evaluate(self, model: nn.Module, stage: StageInfo) -> Metrics:
        """The stage's metrics (one dict, or one per member of an ensemble)."""
        ...

    def on_stage(self, rows: list[dict[str, Any]]) -> None:
        """Told each finished (and checkpointed) stage's rows; does nothing unless overridden."""
        return None


def split_train_result(result: float | Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
    """``(loss, extra metrics)`` of what a train function returned (a float, or a mapping with ``loss``)."""
    if not isinstance(result, Mapping):
        return float(result), {}
    extra = dict(result)
    if "loss" not in extra:
        raise InputError(f"a train function's mapping needs a 'loss' entry; got keys {sorted(extra)}")
    return float(extra.pop("loss")), extra


def _no_progress(iterable: Iterable[T], **_: Any) -> Iterator[T]:
    return iter(iterable)


def _clone(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A detached copy of ``state``; a tensor it holds under several names (a CNF's field, also its
    dynamics' field) is copied once and stays shared, so a checkpoint holds it once."""
    shared = shared_names(state)
    out: dict[str, Tensor] = {}
    for k, v in state.items():
        out[k] = out[shared[k]] if k in shared else v.detach().clone()
    return out


@dataclass(frozen=True)
class Dense:
    """A trained dense network, the starting point of cascades."""

    arch: dict[str, Any]
    state: dict[str, Tensor]
    rewind: dict[str, Tensor]            # weights after ``rewind_epoch`` epochs (for weight rewinding)
    lrs: list[float]                     # learning rate of each param group at the end of training
    optimizer: dict[str, Any]            # optimizer state at the end of training
    losses: list[float] = field(default_factory=list)
    train_metrics: dict[str, Any] = field(default_factory=dict)  # the last epoch's extra train metrics


def train_dense(
    model: nn.Module,
    trainer: Trainer,
    *,
    epochs: int,
    seed: int,
    rewind_epoch: int = 0,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: Progress = _no_progress,
    schedule_every: str = "epoch",
) -> Dense:
    """Train ``model`` (which must have an ``arch``) for ``epochs`` with ``trainer``'s pieces, in place.

    With ``resume`` and an existing ``checkpoint`` the trained state is loaded into ``model``
    instead, so either way ``model`` is the trained network when this returns.
    """
    if resume and checkpoint is not None and checkpoint.exists():
        s = load_state(checkpoint)
        _check_resume(checkpoint, s, {"seed": seed, "epochs": epochs, "rewind_epoch": rewind_epoch})
        load_state_dict(model, s["state"])
        return Dense(s["arch"], s["state"], s["rewind"], s["lrs"], s["optimizer"], s["losses"], s.get("train_metrics", {}))
    if not 0 <= rewind_epoch <= epochs:
        raise InputError(f"rewind_epoch must be in [0, epochs={epochs}]; got {rewind_epoch}")
    optimizer, scheduler = trainer.optimizer(model.parameters())
    hooks = enforce_masks(model, optimizer, gradients=isinstance(optimizer, torch.optim.LBFGS))  # L-BFGS reads gradients (D3)
    scheduler = _per_step(optimizer, scheduler, schedule_every)
    rewind = _clone(model.state_dict())
    losses = []
    metrics: dict[str, Any] = {}
    for epoch in progress(range(epochs), desc="dense training", total=epochs):
        loss, metrics = split_train_result(trainer.train(model, optimizer, torch_generator(seed, "dense", epoch)))
        losses.append(loss)
        if scheduler is not None:
            scheduler.step()
        if epoch + 1 == rewind_epoch:
            rewind = _clone(model.state_dict())
    hooks.remove()
    dense = Dense(
        arch=dict(getattr(model, "arch")),
        state=_clone(model.state_dict()),
        rewind=rewind,
        lrs=[float(g["lr"]) for g in optimizer.param_groups],
        optimizer=optimizer.state_dict(),
        losses=losses,
        train_metrics=metrics,
    )
    if checkpoint is not None:
        save_state(checkpoint, {**dense.__dict__, "seed": seed, "epochs": epochs, "rewind_epoch": rewind_epoch})
    return dense


def _per_step(optimizer: torch.optim.Optimizer, scheduler: Scheduler | None, every: str) -> Scheduler | None:
    """With ``every="step"``, step ``scheduler`` after each optimizer step (and return ``None`` so the
    epoch loop does not step it again)."""
    if every not in SCHEDULE_EVERY:
        raise InputError(f"schedule_every must be one of {', '.join(SCHEDULE_EVERY)}; got {every!r}")
    if every == "epoch" or scheduler is None:
        return scheduler
    optimizer.register_step_post_hook(lambda opt, args, kwargs: scheduler.step())
    return None


def _check_resume(path: Path, saved: dict[str, Any], expected: dict[str, Any]) -> None:
    """Refuse to resume from ``path`` when what it recorded differs from what is asked (D7)."""
    for key, want in expected.items():
        if key in saved and saved[key] != want:
            raise InputError(
                f"cannot resume from {str(path)!r}: it was written with {key}={saved[key]!r}, this run has {key}={want!r}; "
                "use another output directory, or run without resume to start over"
            )


def check_sparsities(values: Iterable[float], *, what: str = "sparsities", increasing: bool = False) -> tuple[float, ...]:
    """``values`` as a tuple, each in [0, 1) (and strictly increasing when ``increasing``); else one
    :class:`InputError` line naming ``what``, the first bad value and the rule."""
    out = tuple(float(v) for v in values)
    bad = [s for s in out if not 0.0 <= s < 1.0]
    if bad:
        raise InputError(f"{what} must lie in [0, 1); got {bad[0]}")
    if increasing and any(b <= a for a, b in zip(out, out[1:])):
        raise InputError(f"sparsities must increase strictly (an iterative cascade prunes further at every stage); got {list(out)}")
    return out


@dataclass(frozen=True)
class CascadeSpec:
    """How a cascade walks its schedule (see the module docstring)."""

    sparsities: tuple[float, ...]
    mode: str = "iterative"
    retrain_epochs: int = 0
    retrain: str = "finetune"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown cascade mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.retrain not in RETRAIN_POLICIES:
            raise InputError(f"unknown retrain policy {self.retrain!r}; expected one of {', '.join(RETRAIN_POLICIES)}")
        if self.retrain_epochs < 0:
            raise InputError(f"retrain_epochs must be >= 0; got {self.retrain_epochs}")
        check_sparsities(self.sparsities)


@dataclass(frozen=True)
class Pruning:
    """How :func:`run_cascade` prunes each stage itself: by ``method`` (a resolved
    :class:`~sciprune.core._methods.Method`), on ``layers`` (weight units' layers or group names;
    ``None``: the method's default, every weight unit or every prunable group), never leaving fewer than
    ``min_keep`` items per layer (criterion methods). ``unfoldable`` (ID methods): a structured criterion
    that prunes, at the stage's sparsity, the groups an ID cannot fold (read by something not linear in
    them); ``None`` refuses such a group."""

    method: Method
    layers: tuple[str, ...] | None = None
    min_keep: int = 1
    unfoldable: str | None = None

    def __post_init__(self) -> None:
        if self.unfoldable is not None and not get_criterion(self.unfoldable).structured:
            raise InputError(f"unfoldable={self.unfoldable!r} is an unstructured criterion; "
                             "expected a structured one (it prunes whole neurons)")


_STAGE = re.compile(r"stage_(\d+)\.pt")


def stage_checkpoint(directory: Path, stage: int) -> Path:
    """The file :func:`run_cascade` writes for ``stage`` (0-based index in the schedule) in ``directory``."""
    return directory / f"stage_{stage:03d}.pt"


def saved_stages(directory: Path) -> list[int]:
    """Indices of the stages whose checkpoints are in ``directory``, increasing (none: empty)."""
    return sorted(int(m.group(1)) for p in directory.glob("stage_*.pt") if (m := _STAGE.fullmatch(p.name)))


def load_network(path: Path, build: BuildFn) -> nn.Module:
    """The network of a checkpoint :func:`train_dense` or :func:`run_cascade` wrote (``build(arch)``, then
    its weights and masks loaded), in eval mode."""
    saved = load_state(path)
    model = build(saved["arch"])
    load_state_dict(model, saved["state"])
    return model.eval()


def load_stage(directory: Path, stage: int, build: BuildFn) -> nn.Module:
    """The network of ``stage`` of the cascade checkpointed in ``directory`` (see :func:`load_network`)."""
    return load_network(stage_checkpoint(directory, stage), build)


def saved_stage_rows(directory: Path) -> list[dict[str, Any]]:
    """The rows recorded up to the last stage checkpointed in ``directory`` (what survives a failure later
    in that cascade); none when no stage was saved."""
    stages = saved_stages(directory)
    return list(load_state(stage_checkpoint(directory, stages[-1]))["rows"]) if stages else []


def run_cascade(
    dense: Dense,
    spec: CascadeSpec,
    protocol: CascadeProtocol,
    *,
    seed: int,
    key: str = "cascade",
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: Progress = _no_progress,
    keep_stages: str = "all",
    schedule_every: str = "epoch",
    pruning: Pruning | None = None,
) -> list[dict[str, Any]]:
    """Walk ``spec.sparsities`` from ``dense`` with the study's ``protocol``; returns the rows of every stage.

    ``key`` names this cascade in the derived seeds, so two cascades of one run draw independent
    numbers. ``keep_stages="last"`` keeps only the last complete stage's checkpoint in ``checkpoint_dir``.
    With ``pruning`` the cascade prunes each stage by its method (see the module docstring); without,
    the protocol's ``prune`` does. A neuron method's widths are always fractions of the dense network's
    groups (:func:`~sciprune.core._methods.kept_width` of its units and parameter shapes), in either mode.
    """
    if keep_stages not in KEEP_STAGES:
        raise InputError(f"keep_stages must be one of {', '.join(KEEP_STAGES)}; got {keep_stages!r}")

    def fresh_dense() -> nn.Module:
        m = protocol.build(dense.arch)
        load_state_dict(m, dense.state)
        return m

    model = fresh_dense()
    n_dense = dense_weights(model)
    dense_units = units_of(model)
    members = dense_units.members
    dense_shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    optimizer_state: dict[str, Any] | None = dense.optimizer
    rows: list[dict[str, Any]] = []
    start = 0
    spec_record = dataclasses.asdict(spec)
    spec_record["sparsities"] = list(spec.sparsities)
    record: dict[str, Any] = {"spec": spec_record, "seed": seed, "key": key}
    if resume and checkpoint_dir is not None and (done := saved_stages(checkpoint_dir)):
        last = stage_checkpoint(checkpoint_dir, done[-1])
        saved = load_state(last)
        _check_resume(last, saved, record)
        model = protocol.build(saved["arch"])
        load_state_dict(model, saved["state"])
        optimizer_state, rows, start = saved["optimizer"], list(saved["rows"]), done[-1] + 1

    stages = range(start, len(spec.sparsities))
    for stage in progress(stages, desc=key, total=len(stages)):
        info = StageInfo(stage, spec.sparsities[stage])
        if spec.mode == "oneshot":
            model, optimizer_state = fresh_dense(), dense.optimizer
        before, generator = model, torch_generator(seed, key, "prune", stage)
        if pruning is None:
            model = protocol.prune(model, info.sparsity, generator, info)
        else:
            m = pruning.method
            widths = kept_width(dense_units, info.sparsity, m.width, shapes=dense_shapes) if m.by_widths else None
            if m.is_id:
                assert widths is not None
                model = id_prune_widths(model, protocol.id_samples(model, generator, info), widths,
                                        unfoldable=pruning.unfoldable, sparsity=info.sparsity)
            else:
                prune(model, info.sparsity, method=m, widths=widths, generator=generator, min_keep=pruning.min_keep,
                      layers=list(pruning.layers) if pruning.layers is not None else None)
        if model is not before:
            optimizer_state = None  # a new network: old optimizer state does not fit it
        losses: list[float] = []
        train_metrics: dict[str, Any] = {}
        if spec.retrain_epochs > 0:
            optimizer_state, losses, train_metrics = _retrain(model, dense, spec, optimizer_state, protocol,
                                                              seed, key, stage, schedule_every)
        model.eval()
        metrics = protocol.evaluate(model, info)
        stage_rows = _stage_rows(model, stage, info.sparsity, n_dense, members, losses, metrics, train_metrics)
        rows.extend(stage_rows)
        if checkpoint_dir is not None:
            save_state(stage_checkpoint(checkpoint_dir, stage), {
                "arch": dict(getattr(model, "arch")), "state": _clone(model.state_dict()),
                "optimizer": optimizer_state, "rows": rows, **record,
            })
            if keep_stages == "last":  # the new stage is complete on disk: older ones are not needed to resume
                for old in range(stage):
                    stage_checkpoint(checkpoint_dir, old).unlink(missing_ok=True)
        protocol.on_stage(stage_rows)
    return rows


def _stage_rows(model: nn.Module, stage: int, sparsity: float, n_dense: int, members: int, losses: list[float],
                metrics: Metrics, train_metrics: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row (or one per member of an ensemble) for a finished stage."""
    if isinstance(metrics, list) and len(metrics) != members:
        raise InputError(f"evaluate returned {len(metrics)} metric dicts; expected one, or one per member ({members})")
    train_metrics = dict(train_metrics or {})
    per_member = train_metrics.pop("per_member", None)
    if per_member is not None and len(per_member) != members:
        raise InputError(f"train returned {len(per_member)} per_member dicts; expected one per member ({members})")
    out = []
    for j in range(members):
        row: dict[str, Any] = {"stage": stage, "sparsity": sparsity}
        if members > 1:
            row["member"] = j
            row.update(network_stats(model, n_dense // members, member=j))
        else:
            row.update(network_stats(model, n_dense))
        if losses:
            row["retrain_loss"] = losses[-1]
        m = metrics[j] if isinstance(metrics, list) else metrics
        row.update(m)
        extra = {**train_metrics, **(per_member[j] if per_member is not None else {})}
        row.update({k: v for k, v in extra.items() if k not in m})
        nfe = m.get("nfe")
        if isinstance(nfe, int | float) and isinstance(row.get("flops"), int | float):
            row["flops_nfe"] = row["flops"] * nfe
        out.append(row)
    return out


def _retrain(
    model: nn.Module, dense: Dense, spec: CascadeSpec, optimizer_state: dict[str, Any] | None,
    trainer: Trainer, seed: int, key: str, stage: int, schedule_every: str = "epoch",
) -> tuple[dict[str, Any] | None, list[float], dict[str, Any]]:
    """Retrain a pruned ``model`` by ``spec.retrain``; returns the optimizer state, the losses and the
    last epoch's extra train metrics."""
    if spec.retrain == "weight_rewind":
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                old = dense.rewind.get(name)
                if old is not None and old.shape == tensor.shape and not name.endswith("_mask"):
                    tensor.copy_(old)
        apply_masks(model)
    optimizer, scheduler = trainer.optimizer(model.parameters())
    if spec.retrain in ("finetune", "reset"):
        scheduler = None
        if spec.retrain == "finetune" and optimizer_state is not None:
            # load_state_dict keeps references to same-device tensors: copy, or retraining would
            # mutate the dense run's (or an earlier stage's) saved moments in place.
            optimizer.load_state_dict(copy.deepcopy(optimizer_state))
        for group, lr in zip(optimizer.param_groups, dense.lrs):
            group["lr"] = lr
    hooks = enforce_masks(model, optimizer, gradients=isinstance(optimizer, torch.optim.LBFGS))  # L-BFGS reads gradients (D3)
    scheduler = _per_step(optimizer, scheduler, schedule_every)
    losses = []
    metrics: dict[str, Any] = {}
    for epoch in range(spec.retrain_epochs):
        loss, metrics = split_train_result(trainer.train(model, optimizer, torch_generator(seed, key, "retrain", stage, epoch)))
        losses.append(loss)
        if scheduler is not None:
            scheduler.step()
    hooks.remove()  # the model may be retrained again with another optimizer: no hooks pile up
    return optimizer.state_dict(), losses, metrics
