"""The config of ``sciprune nif`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.core import Method, per_layer_width, resolve_method
from sciprune.errors import InputError
from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import Schedule, Section
from sciprune.validate.memory import memory, peak

METHODS: tuple[str, ...] = ("l2", "id")


def method_of(name: str) -> Method:
    """The pruning method ``name`` means here: ``l2`` is pNIF's node score (``hyper_node_rms``); any other
    name is core's registry (:func:`sciprune.core._methods.resolve_method`: ``id``, a registered method or
    criterion) and must prune neurons (ShapeNet nodes)."""
    import sciprune.nn.nif  # noqa: F401  (registers hyper_node_rms)

    if name == "l2":
        return Method("l2", "hyper_node_rms", description="pNIF: nodes of smallest RMS-over-p norm of their generated weights")
    if name in ("nif", "pod"):
        raise InputError(f"prune method {name!r} is a name of the study's own rows; choose another method name")
    method = resolve_method(name)
    if method.units != "neurons":
        raise InputError(f"prune method {name!r} prunes single weights; nif prunes ShapeNet nodes: use l2, id or a "
                         "structured criterion")
    return method


class Columns(Section):
    """Declared column counts of a user file: ``[p | x | u | (weight)]``.

    Attributes:
        p: parameter columns
        x: coordinate columns
        u: output columns
        weight: a last column of per-row loss weights
    """

    p: int = Field(1, ge=1, le=1_000, description="parameter columns (time, PDE parameters), first")
    x: int = Field(1, ge=1, le=1_000, description="coordinate columns, after p")
    u: int = Field(1, ge=1, le=1_000, description="field components, after x")
    weight: bool = Field(False, description="a last column of positive sample weights (cell areas)")


class DataConfig(Section):
    """The data set.

    Attributes:
        kind: wave, wave_high (1-D traveling waves of the NIF paper), ks (Kuramoto-Sivashinsky),
            flow2d (2-D decaying turbulence) or file
        normalize: minmax (p and x to [-1, 1]; u centred and divided by its largest magnitude) or standard (z-score of
            every column)
        nus: ks: the viscosities simulated (one parameter value each)
        t_end: ks: end time of each simulation
        dt: ks: solver time step
        viscosity: flow2d: kinematic viscosity
    """

    kind: Literal["wave", "wave_high", "ks", "flow2d", "file"] = "wave_high"
    path: str | None = Field(None, description="file: a .npz (array 'data') or .csv with the declared columns")
    columns: Columns = Columns()
    normalize: Literal["minmax", "standard"] = "minmax"
    test_fraction: float | None = Field(None, ge=0.0, lt=1.0, description="held-out share of the rows (or of the snapshots, "
                                        "see split); 0: evaluate on the training rows; None: 0 for the wave (as upstream), else 0.2")
    split: Literal["rows", "snapshots", "last_snapshots"] = Field(
        "rows", description="what is held out: random rows; random whole snapshots (distinct p); the last snapshots in p "
        "(a p-extrapolation check)")
    grid_tolerance: float = Field(1e-6, gt=0.0, lt=0.5, description="file: coordinates closer than this share of a column's "
                                  "range are one grid level (grid detection)")
    # ks
    nus: list[float] = Field(default_factory=lambda: [0.1, 0.125, 0.15, 0.175, 0.2], min_length=1)
    nx: int = Field(64, ge=8, le=65_536, description="ks: grid points; flow2d: points per side")
    nt: int = Field(40, ge=2, le=1_000_000, description="snapshots (ks: per ν)")
    t_end: float = Field(20.0, gt=0.0)
    dt: float = Field(0.01, gt=0.0)
    # flow2d
    viscosity: float = Field(1e-3, gt=0.0)
    k0: float = Field(4.0, gt=0.0, description="flow2d: peak wavenumber of the random initial field")

    @model_validator(mode="after")
    def _path(self) -> DataConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("data.kind=file needs data.path (a .npz or .csv file)")
        return self

    @property
    def held_out(self) -> float:
        """The test fraction in effect (``None``: 0 for the upstream wave sets, 0.2 otherwise)."""
        if self.test_fraction is not None:
            return self.test_fraction
        return 0.0 if self.kind in ("wave", "wave_high") else 0.2


class Net(Section):
    """One of NIF's two networks.

    Attributes:
        units: width of each hidden layer
        nlayers: hidden layers
        activation: hidden activation
        use_resblock: residual blocks (equal hidden widths)
    """

    units: int = Field(30, ge=1, le=65_536)
    nlayers: int = Field(2, ge=0, le=64)
    activation: Literal["swish", "tanh"] = "swish"
    use_resblock: bool = False


class ShapeNet(Net):
    """ShapeNet (the network of the coordinates, whose weights ParameterNet generates).

    Attributes:
        omega_0: SIREN frequency of the first layer (NIFMultiScale)
        weight_init_factor: scale factor of the initial weights of ParameterNet's last layer (which generate the
            ShapeNet)
    """

    omega_0: float = Field(30.0, gt=0.0)
    weight_init_factor: float = Field(1e-2, gt=0.0)


class ParameterNetCfg(Net):
    """ParameterNet (the network of the parameters).

    Attributes:
        latent_dim: width of the latent layer (the bottleneck before the generated ShapeNet weights)
    """

    latent_dim: int = Field(2, ge=1, le=65_536)


class ModelConfig(Section):
    """The NIF model.

    Attributes:
        family: NIF (MLP ShapeNet), NIFMultiScale (SIREN ShapeNet) or NIFLastLayer
    """

    family: Literal["NIF", "NIFMultiScale", "NIFLastLayer"] = "NIFMultiScale"
    shape: ShapeNet = ShapeNet()
    parameter: ParameterNetCfg = ParameterNetCfg()


class TrainConfig(Section):
    """Training.

    Attributes:
        batch_size: minibatch size
        lr: Adam learning rate
        dtype: float32 or float64 training
    """

    epochs: int | None = Field(None, ge=0, le=10_000_000, description="passes over the training rows; None: 200, or "
                               "what steps gives")
    steps: int | None = Field(None, ge=1, le=1_000_000_000, description="optimizer steps instead of epochs (epochs = steps / "
                              "batches per epoch, rounded up); lr_steps then count steps: the budget does not grow with the data")
    batch_size: int = Field(512, ge=1, le=10_000_000)
    lr: float = Field(1e-3, gt=0.0)
    lr_steps: dict[int, float] = Field(default_factory=dict, description="piecewise-constant: epoch (or step, with steps) -> "
                                       "lr from then on")
    patience: int | None = Field(None, ge=1, le=1_000_000, description="stop training (dense and every retraining) after "
                                 "this many checks without a min_delta relative improvement of the validation error; "
                                 "None: train the whole budget")
    check_every: int = Field(100, ge=1, le=100_000_000, description="optimizer steps between validation checks (patience)")
    min_delta: float = Field(0.01, ge=0.0, lt=1.0, description="relative improvement a check must show (patience)")
    validation_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="share of the training rows set aside for the "
                                       "patience check (only with patience)")
    lbfgs_iters: int = Field(0, ge=0, le=1_000_000, description="full-batch L-BFGS iterations after Adam (0: none)")
    dtype: Literal["float32", "float64"] = "float32"

    @field_validator("lr_steps")
    @classmethod
    def _positive(cls, v: dict[int, float]) -> dict[int, float]:
        bad = [k for k, lr in v.items() if k < 0 or lr <= 0]
        if bad:
            raise ValueError(f"lr_steps maps epochs >= 0 to learning rates > 0; got {bad[0]}: {v[bad[0]]}")
        return dict(sorted(v.items()))


class PruneConfig(Section):
    """ShapeNet node pruning.

    Attributes:
        sparsities: fractions of ShapeNet nodes removed
        allocation: layerwise (each layer alike) or global (one ranking)
    """

    methods: list[str] = Field(default_factory=lambda: list(METHODS), description="l2 (pNIF: the hyper_node_rms node "
                               "score), id (interpolative decomposition), or the name of any registered structured "
                               "criterion (sciprune.core._criteria.register_criterion): node pruning scored by it")
    sparsities: Schedule = Field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    allocation: Literal["layerwise", "global"] = "layerwise"
    retrain_epochs: int | None = Field(None, ge=0, le=10_000_000, description="0: one-shot curves only; >0: also the "
                                       "iterative retrained cascade; None: 20, or what retrain_steps gives")
    retrain_steps: int | None = Field(None, ge=1, le=1_000_000_000, description="optimizer steps per retraining instead of "
                                      "retrain_epochs (as train.steps; retrain_lr_steps then count steps)")
    oneshot: bool = Field(True, description="also record each sparsity pruned from the dense net without retraining")
    retrain_lr: float | None = Field(None, gt=0.0, description="None: fine-tune at the dense run's final learning rate "
                                     "(Adam state kept); a value: a fresh Adam from this rate with retrain_lr_steps")
    retrain_lr_steps: dict[int, float] = Field(default_factory=dict, description="retraining epoch -> lr (piecewise)")
    id_samples: int = Field(2000, ge=1, le=10_000_000, description="(x, p) rows the ID sees")
    keep_best: bool = Field(False, description="end each retraining at its epoch of lowest full training loss, the stage's "
                            "starting weights included (costs one full forward per epoch)")
    control: bool = Field(True, description="also retrain the unpruned dense NIF with the retrained cascade's schedule "
                          "(rows nif/same_epochs): a dense model trained as long as each pruned stage")

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        for name in v:
            method_of(name)
        if len(set(v)) != len(v):
            raise ValueError(f"prune.methods names a method twice: {v}")
        return v


class NifConfig(StudyConfig):
    """Train a NIF, prune its ShapeNet nodes (L2 and ID), compact, compare with POD.

    Attributes:
        timing_points: points per timing measurement
    """

    study: Literal["nif"] = "nif"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    prune: PruneConfig = PruneConfig()
    pod: bool = Field(True, description="POD / truncated-SVD baseline (gridded data only)")
    timing: bool = Field(True, description="measure inference / training points per second into timing.csv")
    timing_points: int = Field(65536, ge=1, le=100_000_000)
    threads: int = Field(1, ge=1, le=1024, description="torch threads of this run (results depend slightly on it; "
                         "dask shards always use 1)")

    @model_validator(mode="after")
    def _budget(self) -> NifConfig:
        if self.train.steps is not None and self.train.epochs is not None:
            raise ValueError(f"train.steps={self.train.steps} and train.epochs={self.train.epochs} are both set; set one "
                             "(steps: a budget of optimizer steps whatever the data size)")
        if self.prune.retrain_steps is not None and self.prune.retrain_epochs is not None:
            raise ValueError(f"prune.retrain_steps={self.prune.retrain_steps} and prune.retrain_epochs="
                             f"{self.prune.retrain_epochs} are both set; set one")
        return self

    @model_validator(mode="after")
    def _prunable(self) -> NifConfig:
        n = self.model.shape.units
        worst = max(self.prune.sparsities)
        if self.model.family != "NIFLastLayer" and n - round(worst * n) < 1:
            raise ValueError(f"prune.sparsities reach {worst:g}, which would prune every one of the {n} nodes of a ShapeNet "
                             "layer; use a smaller sparsity or more model.shape.units")
        if self.model.family == "NIFLastLayer" and self.prune.methods:
            raise ValueError("node pruning needs a hypernetwork ShapeNet (NIF or NIFMultiScale); "
                             "NIFLastLayer has a trainable ShapeNet: set prune.methods=[] or another family")
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> NifConfig:
        """A generated data set's estimated peak memory against ``memory_limit`` (a user file's is checked
        when the file is read: :mod:`sciprune.studies.nif.inputs`)."""
        known = _rows(self)
        if known is not None:
            check_memory(self, *known)
        return self

    def unused_fields(self) -> dict[str, str]:
        """``prune.id_samples`` without an ID method; ``prune.retrain_lr_steps`` without ``prune.retrain_lr``
        (retraining then goes on at the dense run's final rate)."""
        out: dict[str, str] = {}
        if not any(method_of(m).is_id for m in self.prune.methods):
            out["prune.id_samples"] = f"no method of prune.methods={list(self.prune.methods)} is an ID method"
        if self.prune.retrain_lr is None:
            out["prune.retrain_lr_steps"] = "prune.retrain_lr is not set (retraining fine-tunes at the dense run's final rate)"
        return out

    @model_validator(mode="after")
    def _id_rows(self) -> NifConfig:
        """An ID keeps at most as many nodes of a group as its activation matrix has rows
        (:mod:`sciprune.studies.idrows`): ``id_samples`` per position the group is read at (plain NIF's
        residual stream at its ``nlayers + 1`` positions, every other group at one), so a layerwise
        schedule keeping more nodes than that is refused (``nn.nif.pruning.id_fold`` would keep fewer
        than asked, silently, and the rows would compare ID with L2 at different sizes)."""
        p, shape = self.prune, self.model.shape
        ids = [m for m in p.methods if method_of(m).is_id]
        if not ids or self.model.family == "NIFLastLayer" or p.allocation != "layerwise":
            return self
        uses = shape.nlayers + 1 if self.model.family == "NIF" else 1
        s = min(p.sparsities)
        k = per_layer_width(shape.units, s)
        if k > p.id_samples * uses:
            raise ValueError(f"method {ids[0]!r} keeps {k} nodes of a ShapeNet layer at sparsity {s}, but its ID sees "
                             f"{p.id_samples * uses} activation rows (prune.id_samples={p.id_samples} x {uses} "
                             f"position{'s' if uses > 1 else ''}), and an ID keeps at most as many nodes as it has rows; "
                             f"expected prune.id_samples >= {math.ceil(k / uses)}")
        return self


def _rows(cfg: NifConfig) -> tuple[int, int, tuple[int, int, int]] | None:
    """``(rows, distinct p, (d_p, d_x, d_u))`` of a generated data set (``None`` for a user file)."""
    d = cfg.data
    if d.kind in ("wave", "wave_high"):
        return 2000, 10, (1, 1, 1)
    if d.kind == "ks":
        return len(d.nus) * d.nt * d.nx, len(d.nus) * d.nt, (2, 1, 1)
    if d.kind == "flow2d":
        return d.nt * d.nx * d.nx, d.nt, (1, 2, 1)
    return None


def memory_terms(cfg: NifConfig, rows: int, distinct_p: int, dims: tuple[int, int, int]) -> tuple[dict[str, float], dict[str, float]]:
    """``(resident, transient)`` byte estimates of a NIF run on ``rows`` rows with ``distinct_p`` values of p.

    ShapeNet: ``d_x → units → (nlayers ×) units → d_u``, ``P`` parameters, generated for every row of a
    batch (``B × P`` numbers, for the distinct p of a batch when they are few) by ParameterNet, whose
    last layer is ``latent × P`` (NIFLastLayer: a trainable SIREN, ParameterNet generates ``latent``).
    Resident: parameters × (weight, gradient, two Adam moments, two copies) and the data (rows × columns,
    six float64 copies: raw, normalised, splits, tensors; a generator's solution). Transient: a training
    batch (generated weights and ShapeNet activations five times: gathered, reshaped, their gradients),
    a prediction chunk of at most 65,536 rows (of all rows or of the held-out ones), the full-batch L-BFGS pass, ID's float64 activation matrix and QR, the POD's SVD.
    """
    m, t = cfg.model, cfg.train
    d_p, d_x, d_u = dims
    u, L, res = m.shape.units, m.shape.nlayers, 2 if m.shape.use_resblock else 1
    pu, pl, r = m.parameter.units, m.parameter.nlayers, m.parameter.latent_dim
    pres = 2 if m.parameter.use_resblock else 1
    last = m.family == "NIFLastLayer"
    shape = (d_x + 1) * u + L * res * (u + 1) * u + (u + 1) * (r * d_u if last else d_u)
    generated = r if last else shape
    pnet = (d_p + 1) * pu + pl * pres * (pu + 1) * pu + (pu + 1) * r + (r + 1) * generated
    params = pnet + (shape if last else 0)
    nb = 8 if t.dtype == "float64" else 4

    def batch(b: int, copies: int) -> float:
        sets = b if distinct_p * 16 > b else min(b, distinct_p)
        return float(copies * nb * (sets * generated + b * u * (L * res + 2)))

    resident = {f"the NIF ({params:.3g} parameters: ShapeNet {u} units x {L + 2} layers, P={shape:.3g}) with its optimizer state":
                float(params * (6 * nb + 1)),
                f"the data ({rows:.3g} rows)": 6.0 * 8 * rows * (d_p + d_x + d_u + 1)}
    held = int(round(cfg.data.held_out * rows)) or rows
    transient = {f"train.batch_size={t.batch_size} ({t.batch_size} x {generated:.3g} generated weights)": batch(min(t.batch_size, rows), 5),
                 "a prediction chunk (at most 65536 rows)": max(batch(min(65536, rows), 2), batch(min(65536, held), 2)),
                 f"prune.id_samples={cfg.prune.id_samples} float64 activations": 3.0 * 8 * cfg.prune.id_samples * u * (L + 1)}
    if t.lbfgs_iters:
        transient[f"full-batch L-BFGS over {rows} rows"] = batch(rows, 5) + 2.0 * 100 * nb * params
    if cfg.pod:
        transient["the POD's SVD of the snapshots"] = 3.0 * 8 * rows * d_u
    return resident, transient


def check_memory(cfg: NifConfig, rows: int, distinct_p: int, dims: tuple[int, int, int]) -> None:
    """Refuse ``cfg`` when its estimated peak (:func:`memory_terms`) exceeds ``memory_limit``."""
    total, worst = peak(*memory_terms(cfg, rows, distinct_p, dims))
    memory(total, worst, limit=cfg.memory_bytes,
           fix="Choose smaller model.shape / model.parameter units, a smaller batch or grid, or raise memory_limit.")
