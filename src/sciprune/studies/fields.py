"""Field types the study configs share: one check and one message for each kind of value.

Each name is an ``Annotated`` type: the check travels with the type, so a config states
``lr: PositiveFloat = 1e-3`` instead of repeating a validator. The runner turns a failed check into
one InputError line, ``field 'train.lr' got 0.0: <message>`` (:mod:`sciprune.runner.config`).

* :data:`Activation`: a hidden activation name of :data:`~sciprune.nn.mlp.ACTIVATIONS`;
* :data:`FiniteFloat`: a number, not ``inf`` / ``nan``;
* :data:`PositiveFloat`: a finite number ``> 0`` (learning rates, tolerances, thresholds);
* :data:`NonNegativeFloat`: a finite number ``>= 0`` (offsets, decays);
* :data:`OpenFraction`: a fraction in the open interval ``(0, 1)`` (held-out shares);
* :data:`Widths`: hidden-layer widths, 1 to 64 layers of ``1 .. MAX_WIDTH`` neurons;
* :data:`Sparsities`: sparsities each pruned *from the dense network* (one-shot): fractions in
  ``[0, 1)``, any order;
* :data:`Schedule`: the sparsities of an *iterative* cascade (each stage prunes the previous one
  further): fractions in ``[0, 1)``, strictly increasing (masks are cumulative, so a stage can only
  prune more). One rule per meaning; both are :func:`sciprune.core._cascade.check_sparsities`, the
  check :class:`~sciprune.core._cascade.CascadeSpec` applies too;
* :data:`MethodNames`: pruning methods, each a name of :mod:`sciprune.core._methods` or any
  registered criterion (checked against the registries when the config is read);
* :data:`CriterionName`: a registered pruning criterion (:mod:`sciprune.core._criteria`);
* :data:`RetrainPolicy`: a retraining policy of the cascade (``finetune``, ``reset``, ...);
* :class:`Section`: a config section, frozen, unknown fields refused.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from sciprune.core import RETRAIN_POLICIES, check_sparsities, get_criterion, resolve_method
from sciprune.nn.mlp import ACTIVATIONS

MAX_WIDTH = 1_000_000


class Section(BaseModel):
    """A section of a study config: frozen, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _activation(v: str) -> str:
    if v not in ACTIVATIONS:
        raise ValueError(f"expected one of {', '.join(sorted(ACTIVATIONS))}")
    return v


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("expected a finite number")
    return v


def _widths(v: list[int]) -> list[int]:
    if min(v) < 1 or max(v) > MAX_WIDTH:
        raise ValueError(f"hidden widths must be in [1, {MAX_WIDTH}], got {v}")
    return v


def _sparsities(v: list[float]) -> list[float]:
    check_sparsities(v, what="each sparsity")
    return v


def _schedule(v: list[float]) -> list[float]:
    check_sparsities(v, what="each sparsity", increasing=True)
    return v


def _methods(v: list[str]) -> list[str]:
    for name in v:
        resolve_method(name)
    return v


def _criterion(v: str) -> str:
    get_criterion(v)
    return v


def _policy(v: str) -> str:
    if v not in RETRAIN_POLICIES:
        raise ValueError(f"expected one of {', '.join(RETRAIN_POLICIES)}")
    return v


Activation = Annotated[str, AfterValidator(_activation)]
FiniteFloat = Annotated[float, AfterValidator(_finite)]
PositiveFloat = Annotated[float, Field(gt=0.0), AfterValidator(_finite)]
NonNegativeFloat = Annotated[float, Field(ge=0.0), AfterValidator(_finite)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Widths = Annotated[list[int], Field(min_length=1, max_length=64), AfterValidator(_widths)]
Sparsities = Annotated[list[float], Field(min_length=1, max_length=1000), AfterValidator(_sparsities)]
Schedule = Annotated[list[float], Field(min_length=1, max_length=1000), AfterValidator(_schedule)]
MethodNames = Annotated[list[str], Field(min_length=1, max_length=100), AfterValidator(_methods)]
CriterionName = Annotated[str, AfterValidator(_criterion)]
RetrainPolicy = Annotated[str, AfterValidator(_policy)]
