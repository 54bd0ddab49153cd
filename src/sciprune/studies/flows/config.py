"""The config of ``sciprune flows`` (validated at the boundary; unknown fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.core import geometric_linear, resolve_method
from sciprune.nn.ode import ADAPTIVE, SOLVERS
from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import Activation, MethodNames, Schedule, Section
from sciprune.studies.idrows import chain_of, id_rows_problem
from sciprune.studies.flows.data import CLASSIFIERS, DENSITIES
from sciprune.validate.memory import memory, mlp_params, peak

METHODS = ("wt", "ft", "id")


class FieldConfig(Section):
    """The vector field: ``layers`` layers of width ``hidden`` (the reference's ``l{L}_h{H}``).

    ``kind``: ``autonomous`` (an MLP of the state, the reference's toy models), ``concat`` (the time
    concatenated to every layer's input) or ``concatsquash`` (FFJORD's gated layers).

    Attributes:
        layers: linear layers of the field (>= 2)
        hidden: width of each hidden layer
        activation: hidden activation
        kind: autonomous, concat or concatsquash (see above)
    """

    layers: int = Field(4, ge=2, le=64)
    hidden: int = Field(64, ge=1, le=65_536)
    activation: Activation = "sigmoid"
    kind: Literal["autonomous", "concat", "concatsquash"] = "autonomous"


class SolverConfig(Section):
    """How the ODEs are solved (:class:`sciprune.nn.ode.Solver`).

    Attributes:
        method: torchdiffeq method: adaptive dopri5, bosh3, adaptive_heun, dopri8 or fixed-step rk4,
            euler, midpoint
        atol: absolute tolerance of adaptive methods
        rtol: relative tolerance of adaptive methods
        adjoint: backpropagate through the adjoint ODE (constant memory) instead of through the
            steps
    """

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
    """Training of the dense network and of every retrained stage.

    Attributes:
        epochs: training epochs of the dense network
        batch_size: minibatch size
        optimizer: adam or adamw
        lr: learning rate
        weight_decay: weight decay of the optimizer
    """

    epochs: int = Field(100, ge=0, le=1_000_000)
    batch_size: int = Field(1024, ge=1, le=10_000_000)
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)


class DensityConfig(Section):
    """Continuous normalizing flows on the toy densities.

    Attributes:
        names: toy densities to learn
        n_train: training samples per density
        n_test: test samples per density
        trace: hutchinson (one Gaussian probe per sample and solve) or exact (d autograd calls)
        eval_batch: samples per batch when evaluating the test NLL
    """

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
    """Neural ODE classifiers on the toy classification sets.

    Attributes:
        names: toy classification sets
        n_train: training samples per set
        n_test: test samples per set
    """

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


def _in_unit_interval(v: list[float], what: str) -> list[float]:
    bad = [s for s in v if not 0.0 <= s < 1.0]
    if bad:
        raise ValueError(f"each {what} must be in [0, 1), got {bad[0]}")
    return v


class PruneConfig(Section):
    """The pruning cascade."""

    methods: MethodNames = Field(default_factory=lambda: list(METHODS),
                                 description="pruning methods: wt, ft, id (sciprune.core._methods) or any registered criterion")
    sparsities: Schedule = Field(default_factory=lambda: list(geometric_linear()),
                                 description="prune ratios of the iterative cascade (fractions of the fields' weights removed), increasing")
    retrain_epochs: int | None = Field(None, ge=0, le=1_000_000, description="default: the training epochs (LR rewinding)")
    id_samples: int = Field(1024, ge=1, le=10_000_000, description="ID: states visited along training trajectories")
    id_times: int = Field(5, ge=2, le=10_000, description="ID: times in [0, 1] at which states are collected")


class AnalysisConfig(Section):
    """Density maps, samples, decision boundaries, Hessian and timing of selected stages.

    Attributes:
        hessian: measure the loss Hessian (largest eigenvalue, trace) per analysed ratio
        timing_repeats: repeats of each timing measurement (the best is kept)
    """

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

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        return _in_unit_interval(v, "analysis ratio (a prune ratio: the nearest stage is analysed)")


#: field evaluations per solver step, and (adaptive methods) the steps assumed for a typical solve
_STAGES = {"euler": 1, "midpoint": 2, "rk4": 4, "bosh3": 4, "adaptive_heun": 2, "dopri5": 7, "dopri8": 13}
_ADAPTIVE_STEPS = 30
PARAM_BYTES = 28  # float32 weight, gradient, two Adam moments, a rewinding copy, a best copy; a bool mask


def field_params(f: FieldConfig) -> int:
    """Parameters of a field: ``2 → hidden × (layers − 1) → 2`` with the time inputs of its kind."""
    sizes = [2] + [f.hidden] * (f.layers - 1) + [2]
    extra = {"autonomous": 0, "concat": sum(sizes[1:]), "concatsquash": 2 * sum(sizes[1:])}[f.kind]
    return mlp_params(sizes) + extra


def memory_terms(sec: DensityConfig | ClassifierConfig, analysis: AnalysisConfig, prune: PruneConfig,
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """``(resident, transient)`` byte estimates of one section's networks (one network at a time).

    Resident: the parameters with their optimizer state and copies (:data:`PARAM_BYTES` each).
    Transient, the largest counts: a training batch's activations, ``batch × hidden × (layers − 1)``
    float32 values, three per unit (pre-activation, activation, gradient), doubled by a CNF's trace
    (one vector-Jacobian product), held for every field evaluation of a solve when backpropagating
    through the solver (``steps × stages``; adaptive methods: :data:`_ADAPTIVE_STEPS` steps assumed)
    and for one with the adjoint; evaluation batches; a classifier's decision grid (``grid²`` points
    in one pass); the Hessian's double backward through ``hessian_steps`` rk4 steps; ID's float64
    activation matrix (``id_samples × id_times`` rows) and its QR.
    """
    f, sol = sec.field, sec.solver
    cnf = isinstance(sec, DensityConfig)
    units = f.hidden * (f.layers - 1)
    trace = 1.0 + ((2.0 if sec.trace == "exact" else 1.0) if isinstance(sec, DensityConfig) else 0.0)
    stages = _STAGES.get(sol.method, 4)
    evals = 1 if sol.adjoint else stages * (_ADAPTIVE_STEPS if sol.method in ADAPTIVE else sol.steps)
    act = 4.0 * 3 * units * trace
    transient = {
        f"train.batch_size={sec.train.batch_size} over {evals} field evaluations": sec.train.batch_size * act * evals,
        "the evaluation batches": (sec.eval_batch if isinstance(sec, DensityConfig) else sec.n_test) * act,
        f"ID's {prune.id_samples * prune.id_times} x {f.hidden} float64 activations": 8.0 * 3 * prune.id_samples * prune.id_times * f.hidden,
    }
    if cnf and analysis.hessian:
        transient[f"the Hessian's double backward (analysis.hessian_points={analysis.hessian_points})"] = \
            analysis.hessian_points * act * 2 * 4 * analysis.hessian_steps
    if cnf:
        transient[f"the density map (analysis.grid={analysis.grid})"] = min(4096, analysis.grid ** 2) * act * 2 * 4
    else:
        transient[f"the decision grid (analysis.grid={analysis.grid}: {analysis.grid ** 2} points at once)"] = \
            analysis.grid ** 2 * 4.0 * 2 * (f.hidden + 2)
    resident = {f"the field ({f.layers} layers x {f.hidden} units: {field_params(f):.3g} parameters) with its optimizer state":
                float(PARAM_BYTES * field_params(f))}
    return resident, transient


class FlowsConfig(StudyConfig):
    """Sparse flows: WT / FT / ID pruning of neural ODE classifiers and CNFs over a cascade."""

    study: Literal["flows"] = "flows"
    nets: int = Field(3, ge=1, le=10_000, description="independently trained networks per data set: seed, seed+1, ...")
    densities: DensityConfig = DensityConfig()
    classifiers: ClassifierConfig = ClassifierConfig()
    prune: PruneConfig = PruneConfig()
    analysis: AnalysisConfig = AnalysisConfig()

    @model_validator(mode="after")
    def _something_to_run(self) -> "FlowsConfig":
        if not self.densities.names and not self.classifiers.names:
            raise ValueError(f"densities.names and classifiers.names are both empty: the run would train nothing; "
                             f"name at least one data set (densities: {', '.join(DENSITIES)}; classifiers: {', '.join(CLASSIFIERS)})")
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "FlowsConfig":
        """The estimated peak of each section (:func:`memory_terms`) against ``memory_limit``."""
        sections: tuple[tuple[str, DensityConfig | ClassifierConfig], ...] = (
            ("densities", self.densities), ("classifiers", self.classifiers))
        for name, sec in sections:
            if not sec.names:
                continue
            total, worst = peak(*memory_terms(sec, self.analysis, self.prune))
            memory(total, f"{name}: {worst}", limit=self.memory_bytes,
                   fix=f"Choose a smaller {name}.field (layers, hidden) or batch, or raise memory_limit.")
        return self

    @model_validator(mode="after")
    def _id_needs_autonomous(self) -> "FlowsConfig":
        if any(resolve_method(m).is_id for m in self.prune.methods):
            for name, sec in (("densities", self.densities), ("classifiers", self.classifiers)):
                if sec.names and sec.field.kind != "autonomous":
                    raise ValueError(f"prune method 'id' needs autonomous fields; {name}.field.kind is "
                                     f"{sec.field.kind!r} (drop 'id' from prune.methods or use kind: autonomous)")
        return self

    def unused_fields(self) -> dict[str, str]:
        """``prune.id_samples`` and ``prune.id_times`` without an ID method; the Hessian's settings
        with ``analysis.hessian=false``."""
        out: dict[str, str] = {}
        if not any(resolve_method(m).is_id for m in self.prune.methods):
            why = f"no method of prune.methods={list(self.prune.methods)} is an ID method"
            out |= {"prune.id_samples": why, "prune.id_times": why}
        if not self.analysis.hessian:
            out |= {f"analysis.{name}": "analysis.hessian=false (no Hessian is measured)"
                    for name in ("hessian_points", "hessian_iters", "hessian_probes", "hessian_steps")}
        return out

    @model_validator(mode="after")
    def _id_rows(self) -> "FlowsConfig":
        """An ID method needs at least as many states as neurons it keeps in a layer (:mod:`...idrows`):
        ``id_samples`` training points (at most ``n_train``) at ``id_times`` times, on FT's width rule."""
        p = self.prune
        for name, sec in (("densities", self.densities), ("classifiers", self.classifiers)):
            if not sec.names:
                continue
            units, shapes = chain_of([2] + [sec.field.hidden] * (sec.field.layers - 1) + [2], sec.field.activation)
            starts = min(p.id_samples, sec.n_train)
            rows_are = f"{name}: {starts} trajectories (prune.id_samples, at most n_train) x prune.id_times={p.id_times}"
            expected = "prune.id_samples x prune.id_times >= {k}"
            if problem := id_rows_problem(starts * p.id_times, rows_are, expected, units, shapes, p.methods,
                                          p.sparsities, width="weight_budget"):
                raise ValueError(problem)
        return self
