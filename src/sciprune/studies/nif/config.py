"""The config of ``sciprune nif`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import Schedule, Section

Method = Literal["l2", "id"]
METHODS: tuple[Method, ...] = ("l2", "id")


class Columns(Section):
    """Declared column counts of a user file: ``[p | x | u | (weight)]``."""

    p: int = Field(1, ge=1, le=1_000)
    x: int = Field(1, ge=1, le=1_000)
    u: int = Field(1, ge=1, le=1_000)
    weight: bool = False


class DataConfig(Section):
    kind: Literal["wave", "wave_high", "ks", "flow2d", "file"] = "wave_high"
    path: str | None = Field(None, description="file: a .npz (array 'data') or .csv with the declared columns")
    columns: Columns = Columns()
    normalize: Literal["minmax", "standard"] = "minmax"
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="random held-out rows; 0: test on the training rows")
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


class Net(Section):
    units: int = Field(30, ge=1, le=65_536)
    nlayers: int = Field(2, ge=0, le=64)
    activation: Literal["swish", "tanh"] = "swish"
    use_resblock: bool = False


class ShapeNet(Net):
    omega_0: float = Field(30.0, gt=0.0)
    weight_init_factor: float = Field(1e-2, gt=0.0)


class ParameterNetCfg(Net):
    latent_dim: int = Field(2, ge=1, le=65_536)


class ModelConfig(Section):
    family: Literal["NIF", "NIFMultiScale", "NIFLastLayer"] = "NIFMultiScale"
    shape: ShapeNet = ShapeNet()
    parameter: ParameterNetCfg = ParameterNetCfg()


class TrainConfig(Section):
    epochs: int = Field(200, ge=0, le=10_000_000)
    batch_size: int = Field(512, ge=1, le=10_000_000)
    lr: float = Field(1e-3, gt=0.0)
    lr_steps: dict[int, float] = Field(default_factory=dict, description="piecewise-constant: epoch -> lr from that epoch on")
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
    methods: list[Method] = Field(default_factory=lambda: list(METHODS))
    sparsities: Schedule = Field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    allocation: Literal["layerwise", "global"] = "layerwise"
    retrain_epochs: int = Field(20, ge=0, le=10_000_000, description="0: one-shot curves only; >0: also the iterative retrained cascade")
    oneshot: bool = Field(True, description="also record each sparsity pruned from the dense net without retraining")
    retrain_lr: float | None = Field(None, gt=0.0, description="None: fine-tune at the dense run's final learning rate "
                                     "(Adam state kept); a value: a fresh Adam from this rate with retrain_lr_steps")
    retrain_lr_steps: dict[int, float] = Field(default_factory=dict, description="retraining epoch -> lr (piecewise)")
    id_samples: int = Field(2000, ge=1, le=10_000_000, description="(x, p) rows the ID sees")
    keep_best: bool = Field(False, description="end each retraining at its epoch of lowest full training loss, the stage's "
                            "starting weights included (costs one full forward per epoch)")
    control: bool = Field(True, description="also retrain the unpruned dense NIF with the retrained cascade's schedule "
                          "(rows nif/same_epochs): a dense model trained as long as each pruned stage")


class NifConfig(StudyConfig):
    """Train a NIF, prune its ShapeNet nodes (L2 and ID), compact, compare with POD."""

    study: Literal["nif"] = "nif"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    prune: PruneConfig = PruneConfig()
    pod: bool = Field(True, description="POD / truncated-SVD baseline (gridded data only)")
    timing: bool = Field(True, description="measure inference / training points per second into timing.csv")
    timing_points: int = Field(65536, ge=1, le=100_000_000)

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
