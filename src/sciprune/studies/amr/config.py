"""The configuration of one PruningAMR run (every parameter of the seed, with its defaults).

Validation happens once, here, at the boundary: a bad value names the field, the value received and
what is expected (the runner turns pydantic's errors into one :class:`~sciprune.errors.InputError`
line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sciprune.studies.base import StudyConfig
from sciprune.studies.fields import FiniteFloat, NonNegativeFloat, PositiveFloat
from sciprune.validate.memory import memory, peak

Mode = Literal["bulk", "pruning", "basic", "uniform"]
Indicator = Literal["interpolation", "residual", "excess", "kept", "excess-volume"]


#: bytes an element or a DOF costs at least (MFEM's element, vertex and grid-function records)
ELEMENT_BYTES = 200


class AMRConfig(StudyConfig):
    """One ``sciprune amr`` run.

    Attributes:
        inr: the INR: a built-in name (``corner``, ``front``, ``spacetime``), ``hos`` (the
            PruningAMR reference checkpoint under ``../shared/anchors``) or a checkpoint path
            (sciprune safetensors, or a PruningAMR-format torch file).
        mesh: ``square[:N]`` / ``cube[:N]`` (unit square / cube split into N per axis) or an MFEM
            mesh file; ``None`` takes the INR's default mesh.
        mode: ``bulk`` (the default: Dörfler marking of an element indicator; the default
            indicator is the interpolation error, which uses no pruning), ``pruning`` (PruningAMR as
            the seed defines it), ``basic`` (BasicAMR: interpolation error) or ``uniform``. A field
            the mode does not read must keep its default (docs/amr.md has the table).
        fraction: ``bulk``: refine the elements with the largest indicators that make up this
            fraction of the total (Dörfler's theta).
        indicator: ``bulk``: the element indicator eta_E^2:
            ``interpolation`` (the default: |E| x the mean squared difference between the INR
            and the multilinear interpolant of its corner values), ``residual``
            (|E| x the error of the INR ID-pruned to d+1 neurons a layer), ``excess`` / ``kept`` /
            ``excess-volume`` (ID ranks x element size).
        surrogate_epsilon: ``bulk`` with ``indicator = interpolation``: ``None`` (the default)
            evaluates the INR itself on the error samples; a tolerance (e.g. 1e-6, small enough
            that the pruned network reproduces the INR on the element) evaluates them through the
            INR ID-pruned there instead: the same marks, measured 2.4x dearer per element at width
            256 (docs/amr.md).
        tolerance: ``bulk``: also stop before refining a mesh whose estimated RMSE (the
            indicator's ``sqrt(sum eta_E^2 / |domain|)``) is at most this fraction of the standard
            deviation of the INR's vertex values where the adaptive phase starts (``None``: stop
            on ``max_dofs`` / ``max_it`` only).
        id_samples: samples per element for the ID (``n_ID``), read by ``pruning`` and by the ``bulk``
            indicators that run an ID (``residual``, ``excess``, ``kept``, ``excess-volume``, or
            ``interpolation`` with a ``surrogate_epsilon``); the default ``bulk`` runs no ID. ``None``:
            the seed's 256 for ``pruning``, 32 for ``bulk``.
        error_samples: samples per element for the error check (``n_err``; ``pruning``, ``basic``
            and the ``bulk`` indicators ``interpolation`` and ``residual``).
        threshold: ``pruning`` / ``basic``: error threshold ``T``: refine when the element error exceeds it.
        prop_threshold: ``P``: PruningAMR refines when the ID keeps more than this proportion of
            the hidden neurons.
        epsilon: ``pruning`` and the ``bulk`` rank indicators (``excess``, ``kept``,
            ``excess-volume``): the ID tolerance, keep pivots with ``|R_kk| >= epsilon |R_11|`` (the
            default ``bulk`` indicator takes ``surrogate_epsilon`` instead).
        max_it: iterations in all, the leading uniform ones included (``None``: the mode's
            default, :meth:`iterations`: the seed's 4, or 24 for ``bulk``, which stops on DOFs).
        max_dofs: no further adaptive iteration starts once the mesh has this many DOFs
            (``None``: the mode's default, :meth:`dof_limit`: the seed's 5000, or for ``bulk``
            20 000 in 2-D and 50 000 in 3-D).
        num_uniform_ref: leading uniform refinements (count towards ``max_it``).
        time_slice: the time ``t`` appended to the mesh coordinates when the INR has one more
            input than the mesh has dimensions (space-time INR shown at one time); refused for a space-only
            INR unless left at 1.0.
        paraview: also write a ParaView collection (one cycle per iteration).
        error_offset: ``pruning`` / ``basic``: the shift ``c`` of the relative error ``mean|f - g| * mean 1/|f + c|``
            (the reference's +5 keeps the denominator away from zero).
        component: the output component shown on the mesh (errors of the pruned network use all).
        rmse_points: size of the fixed, seeded point set of the true RMSE (default 2^18;
            scrambled Sobol' sets, :mod:`.evaluate`).
        uniform_baseline: also measure uniform refinement (for the error-vs-DOF comparison).
        baseline_max_dofs: the uniform baseline's MFEM meshes stop before exceeding this many DOFs;
            on ``square[:N]`` / ``cube[:N]`` meshes the finer levels are then computed as regular
            grids (no mesh) up to 2^24 DOFs in 2-D, 2^21 in 3-D, until one reaches the run's RMSE.
    """

    study: Literal["amr"] = "amr"
    inr: str = "corner"
    mesh: str | None = None
    mode: Mode = "bulk"
    fraction: float = Field(0.5, gt=0.0, le=1.0)
    indicator: Indicator = "interpolation"
    surrogate_epsilon: float | None = Field(None, gt=0.0, lt=1.0)
    tolerance: float | None = Field(None, gt=0.0, lt=1.0)
    id_samples: int | None = Field(None, ge=2, le=1_000_000)
    error_samples: int = Field(128, ge=1, le=1_000_000)
    threshold: PositiveFloat = 1e-3
    prop_threshold: float = Field(0.2, ge=0.0, le=1.0)
    epsilon: float = Field(1e-3, gt=0.0, lt=1.0)
    max_it: int | None = Field(None, ge=1, le=64)
    max_dofs: int | None = Field(None, ge=1)
    num_uniform_ref: int = Field(2, ge=0, le=64)
    time_slice: FiniteFloat = 1.0
    paraview: bool = False
    error_offset: NonNegativeFloat = 5.0
    component: int = Field(0, ge=0)
    rmse_points: int | None = Field(None, ge=16, le=50_000_000)
    uniform_baseline: bool = True
    baseline_max_dofs: int = Field(300_000, ge=1)

    @field_validator("inr")
    @classmethod
    def _inr_given(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("expected a built-in INR name (corner, front, spacetime, hos) or a checkpoint path")
        return v

    def id_sample_count(self) -> int:
        """``id_samples``, or the mode's default when it is not given."""
        if self.id_samples is not None:
            return self.id_samples
        return 32 if self.mode == "bulk" else 256

    def iterations(self) -> int:
        """``max_it``, or the mode's default when it is not given."""
        if self.max_it is not None:
            return self.max_it
        return max(24 if self.mode == "bulk" else 4, self.num_uniform_ref)

    def dof_limit(self, dim: int) -> int:
        """``max_dofs``, or the mode's default for a ``dim``-D mesh when it is not given."""
        if self.max_dofs is not None:
            return self.max_dofs
        if self.mode == "bulk":
            return 20_000 if dim <= 2 else 50_000
        return 5000

    def uses(self, name: str) -> bool:
        """Whether this config's mode (and bulk indicator) reads field ``name`` (:data:`USED_BY`)."""
        rule = USED_BY.get(name)
        return rule is None or rule[1](self)

    @model_validator(mode="after")
    def _no_unused_field(self) -> "AMRConfig":
        """A field the mode does not read must keep its default: a value given there would do nothing."""
        for name, (where, _) in USED_BY.items():
            value = getattr(self, name)
            default = type(self).model_fields[name].default
            if value != default and not self.uses(name):
                now = f"mode={self.mode}" + (f", indicator={self.indicator}" if self.mode == "bulk" else "")
                raise ValueError(
                    f"{name}={value} needs {where}; got {now}, which does not use it. "
                    f"Drop {name} (docs/amr.md lists which mode reads which field)"
                )
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "AMRConfig":
        """A floor of the peak memory against ``memory_limit``: the mesh and its fields at the largest size
        the run can reach, :data:`ELEMENT_BYTES` per element or DOF (the initial mesh is unknown here:
        one element, 2-D, is assumed, so only sizes every mesh reaches are refused). ``num_uniform_ref``
        leading uniform refinements make ``4^n`` elements of each initial one before any DOF limit is
        looked at; ``max_dofs`` and ``baseline_max_dofs`` bound the adaptive and uniform meshes; the
        true RMSE evaluates ``rmse_points`` points (float64 coordinates and values, a few copies)."""
        terms = {f"num_uniform_ref={self.num_uniform_ref} ({4 ** self.num_uniform_ref:.3g} elements per initial element)":
                 float(ELEMENT_BYTES * 4 ** self.num_uniform_ref),
                 f"a mesh of {self.dof_limit(2)} DOFs (max_dofs)": float(ELEMENT_BYTES * self.dof_limit(2)),
                 f"the uniform baseline up to baseline_max_dofs={self.baseline_max_dofs}":
                 float(ELEMENT_BYTES * self.baseline_max_dofs * self.uniform_baseline),
                 f"rmse_points={self.rmse_points or 2 ** 18}": 8.0 * 4 * 4 * (self.rmse_points or 2 ** 18)}
        total, worst = peak({}, terms)
        memory(total, worst, limit=self.memory_bytes, fix="Choose fewer refinements or DOFs, or raise memory_limit.")
        return self

    @model_validator(mode="after")
    def _iterations(self) -> "AMRConfig":
        if self.max_it is not None and self.max_it < self.num_uniform_ref:
            raise ValueError(
                f"max_it={self.max_it} is smaller than num_uniform_ref={self.num_uniform_ref}; "
                "expected max_it >= num_uniform_ref (the uniform refinements count towards max_it)"
            )
        return self


def _bulk(*indicators: str) -> Callable[[AMRConfig], bool]:
    return lambda c: c.mode == "bulk" and (not indicators or c.indicator in indicators)


RANK_INDICATORS = ("excess", "kept", "excess-volume")

#: The fields only some modes read: ``name -> (where it is read, predicate)``. Every other field is
#: read by every mode. A non-default value in a mode that does not read it is refused.
USED_BY: dict[str, tuple[str, Callable[[AMRConfig], bool]]] = {
    "fraction": ("mode=bulk", _bulk()),
    "indicator": ("mode=bulk", _bulk()),
    "tolerance": ("mode=bulk", _bulk()),
    "surrogate_epsilon": ("mode=bulk with indicator=interpolation", _bulk("interpolation")),
    "id_samples": ("mode=pruning, or mode=bulk with indicator=residual/excess/kept/excess-volume or a surrogate_epsilon",
                   lambda c: c.mode == "pruning" or _bulk("residual", *RANK_INDICATORS)(c)
                   or (_bulk("interpolation")(c) and c.surrogate_epsilon is not None)),
    "error_samples": ("mode=pruning, basic, or bulk with indicator=interpolation/residual",
                      lambda c: c.mode in ("pruning", "basic") or _bulk("interpolation", "residual")(c)),
    "threshold": ("mode=pruning or basic", lambda c: c.mode in ("pruning", "basic")),
    "prop_threshold": ("mode=pruning", lambda c: c.mode == "pruning"),
    "epsilon": ("mode=pruning, or mode=bulk with indicator=excess/kept/excess-volume (the default bulk indicator "
                "takes surrogate_epsilon)", lambda c: c.mode == "pruning" or _bulk(*RANK_INDICATORS)(c)),
    "error_offset": ("mode=pruning or basic", lambda c: c.mode in ("pruning", "basic")),
}
