"""The config of ``sciprune moth train`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import CriterionName, NonNegativeFloat, OpenFraction, PositiveFloat, Schedule, Section

#: the published schedule: fraction of each layer's weights removed after each stage
SCHEDULE = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)


class DataConfig(Section):
    path: str | None = Field(None, description="an HDF5 file from `sciprune moth simulate`; default: simulate into <out>/data.h5",
                             json_schema_extra={"cli": "data"})
    samples: int = Field(20000, ge=1, le=100_000_000, description="samples to simulate when no path is given")
    sim_seed: int = Field(12345, description="seed of the simulated samples")
    max_rows: int | None = Field(None, ge=10, le=1_000_000_000, description="use only the first N rows of the file")
    val_fraction: OpenFraction = 0.16
    test_fraction: OpenFraction = 0.2


class ModelConfig(Section):
    hidden: list[int] = Field(default_factory=lambda: [400, 400, 400, 16], min_length=1)
    activation: Literal["fast_tanh", "tanh", "relu", "sigmoid", "gelu", "silu"] = Field(
        "fast_tanh", description="hidden activation; fast_tanh is tanh as 2σ(2x)−1 (abs. error ≤ 2e-7, 4.6x faster on CPU)")

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if min(v) < 1:
            raise ValueError(f"hidden widths must be >= 1, got {v}")
        return v


class TrainConfig(Section):
    lr: PositiveFloat = 5e-4
    batch_size: int = Field(128, ge=1, le=10_000_000)
    check_every: int = Field(100, ge=1, le=10_000_000, description="batches between two validation checks of the plateau rule")
    window: int = Field(500, ge=1, le=10_000_000, description="batches per window of the plateau rule")
    improvement: NonNegativeFloat = Field(0.01, description="a member stops when its mean val loss improved less than this between two windows")
    min_batches_dense: int = Field(0, ge=0, le=1_000_000_000, description="no member stops dense training before this many batches")
    max_batches_dense: int = Field(50000, ge=1, le=1_000_000_000)
    max_batches_stage: int = Field(20000, ge=1, le=1_000_000_000)
    val_rows: int = Field(8192, ge=1, le=100_000_000, description="validation rows the plateau checks use (the first N of the split)")

    @model_validator(mode="after")
    def _multiple(self) -> "TrainConfig":
        if self.window % self.check_every:
            raise ValueError(f"train.window ({self.window}) must be a multiple of train.check_every ({self.check_every})")
        return self


class PruneConfig(Section):
    criterion: CriterionName = Field("magnitude", description="pruning criterion (sciprune.core.criteria, or a registered "
                                     "one): unstructured ones prune weights, structured ones neurons; the rows' method")
    allocation: Literal["layerwise", "global"] = Field(
        "layerwise", description="layerwise: every layer pruned to the stage's fraction; global: one ranking per member")
    retrain: Literal["finetune", "reset", "lr_rewind", "weight_rewind"] = Field(
        "finetune", description="retraining policy of the cascade (finetune: the Adam state carried across stages)")


class MothConfig(StudyConfig):
    study: Literal["moth"] = "moth"
    members: int = Field(10, ge=1, le=100_000, description="networks in the Monte Carlo ensemble")
    shards: int = Field(1, ge=1, le=100_000, description="the members are split into this many independent shards (dask tasks)")
    threshold: PositiveFloat = Field(1e-3, description="a network is capable when its test MSE (scaled units) is at most this")
    schedule: Schedule = Field(default_factory=lambda: list(SCHEDULE),
                               description="fraction of each member's weights removed after each stage, increasing")
    prune: PruneConfig = Field(default_factory=PruneConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _shards(self) -> "MothConfig":
        if self.shards > self.members:
            raise ValueError(f"shards ({self.shards}) must not exceed members ({self.members})")
        return self
