"""The config of ``sciprune classify`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sciprune.core import KERAS, resolve_method
from sciprune.studies.base import StudyConfig
from sciprune.studies.idrows import chain_of, id_rows_problem
from sciprune.studies.fields import Activation, MethodNames, OpenFraction, PositiveFloat, RetrainPolicy, Section, Sparsities, Widths
from sciprune.validate import memory

METHODS = ("weight", "unit", "id")
MAX_FEATURES, MAX_CLASSES = 784, 256  # MNIST-sized inputs; IDX labels are bytes


class DataConfig(Section):
    name: Literal["digits", "mnist", "fashion-mnist"] = Field(
        "digits", description="digits (shipped), mnist or fashion-mnist (IDX files in data_dir)",
        json_schema_extra={"cli": "dataset"})
    data_dir: str | None = Field(None, description="folder with the four IDX files (mnist, fashion-mnist)",
                                 json_schema_extra={"cli": "data-dir"})
    test_fraction: OpenFraction = Field(0.25, description="digits only: held-out fraction")
    limit_train: int | None = Field(None, ge=1, le=100_000_000, description="use only the first N training images")

    @model_validator(mode="after")
    def _dir_for_idx_only(self) -> "DataConfig":
        if self.name == "digits" and self.data_dir is not None:
            raise ValueError(f"data.data_dir={self.data_dir!r} is given but data.name is 'digits', which is shipped "
                             "and reads no files; expected --dataset mnist or fashion-mnist with --data-dir, or no --data-dir")
        return self


class ModelConfig(Section):
    """The classifier MLP.

    Attributes:
        hidden: hidden widths of the MLP, e.g. [128, 128, 64, 32]
        activation: hidden activation
    """

    hidden: Widths = Field(default_factory=lambda: [128, 128, 64, 32])
    activation: Activation = "relu"


class TrainConfig(Section):
    """Dense training.

    Attributes:
        epochs: dense training epochs
        batch_size: minibatch size
        lr: Adam learning rate
    """

    epochs: int = Field(20, ge=0, le=100_000)
    batch_size: int = Field(128, ge=1, le=10_000_000)
    lr: PositiveFloat = 1e-3


class PruneConfig(Section):
    """What is pruned, to which sparsities, and how it is retrained.

    Attributes:
        retrain: retrain policy after each prune step: finetune, reset, lr_rewind or weight_rewind
        heatmap_sparsity: sparsity of the weight heat-map checkpoints
    """

    methods: MethodNames = Field(default_factory=lambda: list(METHODS),
                                 description="pruning methods: weight, unit, id (sciprune.core.available_methods()) or any registered criterion")
    sparsities: Sparsities = Field(default_factory=lambda: list(KERAS),
                                   description="sparsities, each pruned from the dense network (one-shot), in [0, 1)")
    retrain_epochs: int = Field(2, ge=0, le=100_000, description="0: only the one-shot curves; >0: also the retrained curves")
    retrain: RetrainPolicy = "finetune"
    id_samples: int = Field(500, ge=1, le=10_000_000, description="training inputs the ID sees")
    heatmap_sparsity: float = Field(0.9, ge=0.0, lt=1.0)


class ClassifyConfig(StudyConfig):
    """Weight vs unit vs ID pruning of an MLP classifier, over ``repeats`` seeds."""

    study: Literal["classify"] = "classify"
    repeats: int = Field(3, ge=1, le=10_000, description="independent seeds: seed, seed+1, ...")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    prune: PruneConfig = PruneConfig()
    timing_batch: int = Field(4096, ge=1, le=100_000_000, description="batch for the inference-time measurement of compacted nets")

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "ClassifyConfig":
        """Estimated peak memory (MNIST-sized inputs, the largest case) against this machine's RAM."""
        sizes = [MAX_FEATURES, *self.model.hidden, MAX_CLASSES]
        params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        # weights, gradient, two Adam moments, a saved copy, float masks: ~6 float32 copies per parameter
        memory(24.0 * params, f"model.hidden={list(self.model.hidden)} ({params:.3g} parameters)",
               fix="Choose smaller hidden widths.", limit=self.memory_bytes)
        widest = max(sizes)
        memory(4.0 * self.timing_batch * widest * 2, f"timing_batch={self.timing_batch} (batch x widest layer {widest})",
               fix="Choose a smaller timing_batch.", limit=self.memory_bytes)
        memory(4.0 * self.train.batch_size * widest * 2 * len(sizes), f"train.batch_size={self.train.batch_size}",
               fix="Choose a smaller train.batch_size.", limit=self.memory_bytes)
        return self

    def unused_fields(self) -> dict[str, str]:
        """``prune.id_samples`` without an ID method; ``prune.retrain`` without retraining epochs."""
        out: dict[str, str] = {}
        if not any(resolve_method(m).is_id for m in self.prune.methods):
            out["prune.id_samples"] = f"no method of prune.methods={list(self.prune.methods)} is an ID method"
        if self.prune.retrain_epochs == 0:
            out["prune.retrain"] = "prune.retrain_epochs=0 (no retraining)"
        return out

    @model_validator(mode="after")
    def _id_rows(self) -> "ClassifyConfig":
        """An ID method needs at least as many samples as neurons it keeps in a layer (:mod:`..idrows`)."""
        features = 64 if self.data.name == "digits" else 784  # 8x8 digits; 28x28 MNIST images
        units, shapes = chain_of([features, *self.model.hidden, 10], self.model.activation)
        p = self.prune
        if problem := id_rows_problem(p.id_samples, f"prune.id_samples={p.id_samples}", "prune.id_samples >= {k}",
                                      units, shapes, p.methods, p.sparsities):
            raise ValueError(problem)
        return self
