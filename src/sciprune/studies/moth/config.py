"""The config of ``sciprune moth train`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.studies.base import StudyConfig
from sciprune.validate.memory import memory, peak
from sciprune.studies.fields import CriterionName, NonNegativeFloat, OpenFraction, PositiveFloat, Schedule, Section

#: the published schedule: fraction of each layer's weights removed after each stage
SCHEDULE = (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)


class DataConfig(Section):
    """The flight data.

    Attributes:
        val_fraction: validation share of the rows
        test_fraction: test share of the rows
    """

    path: str | None = Field(None, description="an HDF5 file from `sciprune moth simulate`; default: simulate into <out>/data.h5",
                             json_schema_extra={"cli": "data"})
    samples: int = Field(20000, ge=1, le=100_000_000, description="samples to simulate when no path is given")
    sim_seed: int = Field(12345, ge=0, le=2**63 - 1, description="seed of the simulated samples (stored as an HDF5 int64)")
    max_rows: int | None = Field(None, ge=10, le=1_000_000_000, description="use only the first N rows of the file")
    val_fraction: OpenFraction = 0.16
    test_fraction: OpenFraction = 0.2


class ModelConfig(Section):
    """Each controller MLP.

    Attributes:
        hidden: hidden widths of each controller
    """

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
    """Training with a plateau stop, dense and per stage.

    Attributes:
        lr: Adam learning rate
        batch_size: minibatch size
        max_batches_dense: at most this many batches of dense training
        max_batches_stage: at most this many batches of retraining per pruning stage
    """

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
    criterion: CriterionName = Field("magnitude", description="pruning criterion (sciprune.core._criteria, or a registered "
                                     "one): unstructured ones prune weights, structured ones neurons; the rows' method")
    allocation: Literal["layerwise", "global"] = Field(
        "layerwise", description="layerwise: every layer pruned to the stage's fraction; global: one ranking per member")
    retrain: Literal["finetune", "reset", "lr_rewind", "weight_rewind"] = Field(
        "finetune", description="retraining policy of the cascade (finetune: the Adam state carried across stages)")


class MothConfig(StudyConfig):
    """MothPruning: a Monte Carlo ensemble of controllers pruned by magnitude stage by stage.

    Attributes:
        schedule: increasing sparsities in (0, 1): each pruning stage prunes every member to the
            next, then retrains
    """

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

    def unused_fields(self) -> dict[str, str]:
        """``data.samples`` and ``data.sim_seed`` when ``data.path`` names a file (nothing is simulated)."""
        if self.data.path is None:
            return {}
        why = f"data.path={self.data.path!r} names a file (nothing is simulated)"
        return {"data.samples": why, "data.sim_seed": why}

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "MothConfig":
        """Estimated peak of one shard (the whole ensemble in-process) against ``memory_limit``.

        Resident: the members' parameters × 64 bytes (sixteen float32 copies: weight, gradient, two Adam
        moments, masks, the frozen members' copies of weights and optimizer state, the optimum's and the
        dense checkpoint as saved and read back; measured ≈ 60-75 bytes, ``benchmarks/bench_memory.py``) and the data, ``rows × 17`` float64 raw plus float32
        scaled (``rows``: ``data.max_rows``, else ``data.samples``; a given file is bounded when read).
        Transient: a batch through every member (three float32 values a unit), an evaluation chunk
        (``ensemble.member_mse``, two a unit), and the raw file (``rows × 19`` float64) while it is read.
        """
        sizes = [10, *self.model.hidden, 7]
        members = -(-self.members // self.shards)  # one shard's
        params = members * sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        rows = self.data.max_rows or self.data.samples
        units = sum(sizes)
        chunk = max(256, 2**22 // (members * max(sizes)))  # ensemble.member_mse's row chunk
        resident = {f"{members} members of {'-'.join(map(str, sizes))} ({params:.3g} parameters) with their "
                    "optimizer state": 64.0 * params, f"the data ({rows} rows)": rows * 17 * (8.0 + 4.0)}
        transient = {f"train.batch_size={self.train.batch_size} through {members} members":
                     12.0 * members * self.train.batch_size * units,
                     "an evaluation chunk through every member": 8.0 * members * chunk * units,
                     "the raw data file": 8.0 * 19 * rows}
        total, worst = peak(resident, transient)
        memory(total, worst, limit=self.memory_bytes,
               fix="Choose fewer members (or more shards), smaller model.hidden or batch, or raise memory_limit.")
        return self

    @model_validator(mode="after")
    def _shards(self) -> "MothConfig":
        if self.shards > self.members:
            raise ValueError(f"shards ({self.shards}) must not exceed members ({self.members})")
        return self
