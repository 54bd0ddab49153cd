"""Factories for the bad-input cases of ``sciprune prune`` (a user's module, as the user would write it)."""

from __future__ import annotations

from torch import nn

NOT_CALLABLE = 3


def returns_dict() -> dict[str, int]:
    return {"not": 1}


def raises() -> nn.Module:
    raise RuntimeError("the user's factory failed on purpose")


def no_parameters() -> nn.Module:
    return nn.Tanh()


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 4), nn.Linear(2, 4)

    def forward(self, x0, x1):  # type: ignore[no-untyped-def]
        return (self.a(x0) * self.b(x1)).sum(-1, keepdim=True)


def two_inputs() -> nn.Module:
    return TwoInputs()


def returns_tuple() -> nn.Module:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Linear(2, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.f(x), self.f(x)

    return Pair()
