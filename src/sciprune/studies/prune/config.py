"""The config of ``sciprune prune``: a user's own network (a factory), its samples, methods, schedule.

Validated at the boundary like every study config (unknown fields are errors); the files it names
(the factory's module, the weights, the samples) are checked by ``study.check`` before anything is
written.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import OpenFraction, PositiveFloat, RetrainPolicy, Section, Sparsities

METHODS = ("weight", "neuron", "id")  # the names; any registered method or criterion works too
ALIASES = {"neuron": "neuron_l2"}  # whole neurons by the L2 norm of their slices (the criterion as a method)
EXAMPLE = "sciprune.studies.prune.example:residual_mlp"


def _listed(v: Any) -> Any:
    """A single value or a comma-separated text as a list (``--method neuron,id``, ``--sparsities 0.5,0.75``)."""
    if isinstance(v, str):
        return [p.strip() for p in v.split(",")] if v.strip() else []
    if isinstance(v, int | float) and not isinstance(v, bool):
        return [v]
    return v


class TrainConfig(Section):
    """Training on the samples' training split, minibatch Adam on the mean squared error.

    Attributes:
        epochs: dense training before pruning (0: prune the network as built / loaded).
        batch_size: samples per minibatch.
        lr: Adam's learning rate.
    """

    epochs: int = Field(0, ge=0, le=100_000)
    batch_size: int = Field(64, ge=1, le=10_000_000)
    lr: PositiveFloat = 1e-3


class PruneStudyConfig(StudyConfig):
    """Prune your own PyTorch network (a factory pkg.module:function, imported and run: your code executes) on your own samples (.npz).

    Attributes:
        model: the factory pkg.module:function that builds the network (imported and called:
            this runs your code; the current folder is on the import path).
        model_kwargs: keyword arguments of the factory (a YAML mapping).
        weights: a state dict for the built network (safetensors, or torch.save read with
            weights_only); omitted: the network as the factory builds it.
        data: the samples, an .npz with y and x (one input) or x0, x1, ... (several inputs);
            omitted only with the shipped example model.
        inputs: how the x arrays reach the network: args (net(x0, x1, ...)) or tuple
            (net((x0, x1, ...)), DeepXDE's convention).
        shared: x arrays passed whole to every call instead of split by sample (the trunk points
            of a Cartesian-product DeepONet).
        test_fraction: held-out share of the samples (split with the seed); errors are measured on it.
        methods: weight (magnitude, unstructured), neuron (L2 of each neuron's slices), id
            (interpolative decomposition, consumers corrected), or any registered method or
            criterion (unit, wt, ft, lamp, neuron_l1, ...); a list or comma-separated.
        sparsities: the schedule: fractions of weights (weight) or of neurons in every group
            (neuron, id), each in [0, 1).
        mode: oneshot (each sparsity from the dense network) or iterative (each stage prunes the
            previous one further).
        retrain_epochs: retraining epochs after each pruning step (0: none).
        retrain: retraining policy: finetune, reset, lr_rewind or weight_rewind.
        id_samples: training samples the ID sees.
        timing_batch: samples per forward in the inference-speed measurement (timing.csv).
    """

    study: Literal["prune"] = "prune"
    model: str = Field(EXAMPLE, min_length=3, json_schema_extra={"cli": "model"})
    model_kwargs: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"cli": "model-kwargs"})
    weights: str | None = Field(None, json_schema_extra={"cli": "weights"})
    data: str | None = Field(None, json_schema_extra={"cli": "data"})
    inputs: Literal["args", "tuple"] = Field("args", json_schema_extra={"cli": "inputs"})
    shared: list[str] = Field(default_factory=list, max_length=64, json_schema_extra={"cli": "shared"})
    test_fraction: OpenFraction = 0.2
    methods: list[str] = Field(default_factory=lambda: list(METHODS[1:]), min_length=1, max_length=16,
                               json_schema_extra={"cli": "method"})
    sparsities: Sparsities = Field(default_factory=lambda: [0.25, 0.5, 0.75], json_schema_extra={"cli": "sparsities"})
    mode: Literal["oneshot", "iterative"] = "oneshot"
    train: TrainConfig = TrainConfig()
    retrain_epochs: int = Field(0, ge=0, le=100_000)
    retrain: RetrainPolicy = "finetune"
    id_samples: int = Field(512, ge=1, le=10_000_000)
    timing_batch: int = Field(1024, ge=1, le=10_000_000)

    _methods_listed = field_validator("methods", "sparsities", "shared", mode="before")(_listed)

    @field_validator("model")
    @classmethod
    def _factory(cls, v: str) -> str:
        module, sep, name = v.partition(":")
        if not sep or not module or not name or not all(p.isidentifier() for p in (*module.split("."), name)):
            raise ValueError("expected a factory as pkg.module:function (a Python module path, a colon, a callable's name)")
        return v

    @field_validator("methods")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        from sciprune.core import available_methods

        known = sorted({*available_methods(), *ALIASES})
        bad = [m for m in v if m not in known]
        if bad:
            raise ValueError(f"unknown pruning method {bad[0]!r}; expected one of {', '.join(known)}")
        if len(set(v)) != len(v):
            raise ValueError(f"a method is named twice in {v}; expected each at most once")
        return v

    @field_validator("shared")
    @classmethod
    def _shared(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s != "x" and not (s.startswith("x") and s[1:].isdigit())]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an input array's name; expected x or x0, x1, ...")
        return v

    def unused_fields(self) -> dict[str, str]:
        """``id_samples`` without an ID method."""
        from sciprune.core import resolve_method

        if any(resolve_method(ALIASES.get(m, m)).is_id for m in self.methods):
            return {}
        return {"id_samples": f"no method of methods={list(self.methods)} is an ID method"}

    @model_validator(mode="after")
    def _consistent(self) -> "PruneStudyConfig":
        if self.data is None and self.model != EXAMPLE:
            raise ValueError(f"--model {self.model!r} needs --data (an .npz with x or x0, x1, ... and y); "
                             "only the shipped example model brings its own samples")
        if self.mode == "iterative" and any(b <= a for a, b in zip(self.sparsities, self.sparsities[1:])):
            raise ValueError(f"mode=iterative prunes each stage further: sparsities must increase; got {list(self.sparsities)} "
                             "(sort them, or --mode oneshot)")
        if self.retrain_epochs == 0 and self.retrain != "finetune":
            raise ValueError(f"retrain={self.retrain!r} is given but retrain_epochs=0 (no retraining); "
                             "set --retrain-epochs or leave --retrain out")
        return self
