"""The config of ``sciprune flows`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.core.methods import resolve_method
from sciprune.core.schedule import geometric_linear
from sciprune.nn.ode import SOLVERS
from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import Activation, MethodNames, Schedule, Section
from sciprune.studies.flows.data import CLASSIFIERS, DENSITIES

METHODS = ("wt", "ft", "id")


class FieldConfig(Section):
    """The vector field: ``layers`` layers of width ``hidden`` (the reference's ``l{L}_h{H}``).

    ``kind``: ``autonomous`` (an MLP of the state, the reference's toy models), ``concat`` (the time
    concatenated to every layer's input) or ``concatsquash`` (FFJORD's gated layers).
    """

    layers: int = Field(4, ge=2, le=64)
    hidden: int = Field(64, ge=1, le=65_536)
    activation: Activation = "sigmoid"
    kind: Literal["autonomous", "concat", "concatsquash"] = "autonomous"


class SolverConfig(Section):
    method: str = "dopri5"
    atol: float = 1e-5
    rtol: float = 1e-5
    steps: int = Field(20, ge=1, le=1_000_000, description="fixed-step methods: steps over [0, 1]")
    adjoint: bool = True
    max_nfe: int = Field(5000, ge=1, le=10_000_000, description="function evaluations allowed per solve (else: a failed stage)")

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in SOLVERS:
            raise ValueError(f"unknown ODE solver; expected one of {', '.join(SOLVERS)}")
        return v

    @field_validator("atol", "rtol")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("solver tolerances must be > 0")
        return v


class TrainConfig(Section):
    epochs: int = Field(100, ge=0, le=1_000_000)
    batch_size: int = Field(1024, ge=1, le=10_000_000)
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)


class DensityConfig(Section):
    """Continuous normalizing flows on the toy densities."""

    names: list[str] = Field(default_factory=lambda: list(DENSITIES))
    n_train: int = Field(16380, ge=2, le=100_000_000)
    n_test: int = Field(8190, ge=2, le=100_000_000)
    trace: Literal["hutchinson", "exact"] = "hutchinson"
    field: FieldConfig = FieldConfig()
    solver: SolverConfig = SolverConfig()
    train: TrainConfig = TrainConfig()
    nll_reps: int = Field(4, ge=1, le=10_000, description="Hutchinson evaluations of the test NLL averaged per stage")
    eval_batch: int = Field(4096, ge=1, le=10_000_000)

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if n not in DENSITIES]
        if bad:
            raise ValueError(f"unknown density {bad[0]!r}; expected one of {', '.join(DENSITIES)}")
        return v


class ClassifierConfig(Section):
    """Neural ODE classifiers on the toy classification sets."""

    names: list[str] = Field(default_factory=lambda: list(CLASSIFIERS))
    n_train: int = Field(1024, ge=2, le=100_000_000)
    n_test: int = Field(512, ge=2, le=100_000_000)
    field: FieldConfig = FieldConfig(layers=2, hidden=64, activation="tanh")
    solver: SolverConfig = SolverConfig(atol=1e-4, rtol=1e-4)
    train: TrainConfig = TrainConfig(epochs=50, batch_size=128, optimizer="adam", lr=0.01, weight_decay=1e-4)

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if n not in CLASSIFIERS]
        if bad:
            raise ValueError(f"unknown classification set {bad[0]!r}; expected one of {', '.join(CLASSIFIERS)}")
        return v


class PruneConfig(Section):
    methods: MethodNames = Field(default_factory=lambda: list(METHODS),
                                 description="pruning methods: wt, ft, id (sciprune.core.methods) or any registered criterion")
    sparsities: Schedule = Field(default_factory=lambda: list(geometric_linear()),
                                 description="prune ratios of the iterative cascade (fractions of the fields' weights removed), increasing")
    retrain_epochs: int | None = Field(None, ge=0, le=1_000_000, description="default: the training epochs (LR rewinding)")
    id_samples: int = Field(1024, ge=1, le=10_000_000, description="ID: states visited along training trajectories")
    id_times: int = Field(5, ge=2, le=10_000, description="ID: times in [0, 1] at which states are collected")


class AnalysisConfig(Section):
    ratios: list[float] = Field(default_factory=lambda: [0.5, 0.9, 0.98],
                                description="prune ratios (nearest stage) for density maps, samples, boundaries, timing")
    grid: int = Field(80, ge=8, le=4_096, description="grid points per axis of density maps and decision boundaries")
    samples: int = Field(2000, ge=10, le=10_000_000, description="samples drawn for the sample scatter plots")
    mode_samples: int = Field(20000, ge=10, le=100_000_000, description="samples for the Gaussian-ring mode statistics")
    hessian: bool = True
    hessian_points: int = Field(512, ge=1, le=10_000_000, description="training points of the Hessian loss")
    hessian_iters: int = Field(20, ge=1, le=100_000, description="power iterations for the largest eigenvalue")
    hessian_probes: int = Field(8, ge=1, le=100_000, description="Hutchinson probes for the Hessian trace")
    hessian_steps: int = Field(10, ge=1, le=100_000, description="rk4 steps of the (backprop) solve used for the Hessian")
    timing_repeats: int = Field(5, ge=1, le=10_000)


class FlowsConfig(StudyConfig):
    """Sparse flows: WT / FT / ID pruning of neural ODE classifiers and CNFs over a cascade."""

    study: Literal["flows"] = "flows"
    nets: int = Field(3, ge=1, le=10_000, description="independently trained networks per data set: seed, seed+1, ...")
    densities: DensityConfig = DensityConfig()
    classifiers: ClassifierConfig = ClassifierConfig()
    prune: PruneConfig = PruneConfig()
    analysis: AnalysisConfig = AnalysisConfig()

    @model_validator(mode="after")
    def _id_needs_autonomous(self) -> "FlowsConfig":
        if any(resolve_method(m).is_id for m in self.prune.methods):
            for name, sec in (("densities", self.densities), ("classifiers", self.classifiers)):
                if sec.names and sec.field.kind != "autonomous":
                    raise ValueError(f"prune method 'id' needs autonomous fields; {name}.field.kind is "
                                     f"{sec.field.kind!r} (drop 'id' from prune.methods or use kind: autonomous)")
        return self
