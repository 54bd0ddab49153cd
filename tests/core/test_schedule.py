import pytest

from sciprune.core import KERAS, explicit, geometric_linear, named_schedule, polynomial
from sciprune.errors import InputError


def test_sparseflows_schedule_matches_published_keep_ratios():
    keep = [round(1 - s, 4) for s in geometric_linear()]
    assert len(keep) == 29
    assert keep[:4] == [0.8, 0.7437, 0.6914, 0.6427]
    assert keep[19:] == [0.2, 0.18, 0.16, 0.14, 0.12, 0.1, 0.08, 0.06, 0.04, 0.02]


def test_polynomial_is_cubic_and_ends_at_target():
    s = polynomial(0.9, 4)
    assert s[-1] == pytest.approx(0.9)
    assert s[0] == pytest.approx(0.9 * (1 - 0.75**3))
    assert list(s) == sorted(s)


def test_named_and_explicit():
    assert named_schedule("keras") == KERAS
    with pytest.raises(InputError, match="unknown schedule 'x'; expected one of keras"):
        named_schedule("x")
    with pytest.raises(InputError, match=r"\[0, 1\); got 1.5"):
        explicit([0.5, 1.5])
