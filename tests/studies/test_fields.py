"""The shared field types of the study configs: each refuses with its one message and passes good values."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from sciprune.studies.fields import (MAX_WIDTH, Activation, FiniteFloat, NonNegativeFloat, OpenFraction,
                                     PositiveFloat, Section, Widths)


class Sample(Section):
    act: Activation = "relu"
    finite: FiniteFloat = 0.0
    positive: PositiveFloat = 1.0
    nonneg: NonNegativeFloat = 0.0
    frac: OpenFraction = 0.5
    widths: Widths = [4]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("act", "swishy", "expected one of"),
    ("finite", math.inf, "expected a finite number"),
    ("finite", math.nan, "expected a finite number"),
    ("positive", 0.0, "greater than 0"),
    ("positive", math.nan, "greater than 0"),
    ("positive", math.inf, "expected a finite number"),
    ("nonneg", -1e-9, "greater than or equal to 0"),
    ("nonneg", math.inf, "expected a finite number"),
    ("frac", 0.0, "greater than 0"),
    ("frac", 1.0, "less than 1"),
    ("widths", [], "at least 1 item"),
    ("widths", [4] * 65, "at most 64 items"),
    ("widths", [8, 0], f"hidden widths must be in [1, {MAX_WIDTH}], got [8, 0]"),
    ("widths", [MAX_WIDTH + 1], "hidden widths must be in"),
])
def test_each_type_refuses_with_its_message(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Sample(**{field: value})
    (e,) = err.value.errors()
    assert e["loc"] == (field,) and message in e["msg"], e


def test_good_values_pass_and_sections_are_strict() -> None:
    s = Sample(act="tanh", finite=-3.0, positive=1e-300, nonneg=0.0, frac=1e-9, widths=[1, MAX_WIDTH])
    assert (s.act, s.positive, s.widths) == ("tanh", 1e-300, [1, MAX_WIDTH])
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Sample(unknown=1)
    with pytest.raises(ValidationError, match="frozen"):
        s.frac = 0.25  # type: ignore[misc]
