"""The pruning registries as a value another process can adopt.

A criterion or method registered in the calling process (:func:`register_criterion`,
:func:`register_method`) exists only there: a dask worker is a fresh process that imports sciprune and
knows the built-in entries only. :func:`registrations` captures what this process added beyond the
entries registered when sciprune was imported; :func:`adopt` registers, in the process it runs in,
every captured entry it lacks (an entry of the same name already present is left alone: an earlier
adopt in the same worker, or the worker's own registration). The captured objects travel by pickle
(dask falls back to cloudpickle for functions defined in ``__main__`` or inside a function).
"""

from __future__ import annotations

from dataclasses import dataclass

from sciprune.core._criteria import _CRITERIA, Criterion, register_criterion
from sciprune.core._methods import _METHODS, Method, register_method

_BUILTIN_CRITERIA = frozenset(_CRITERIA)
_BUILTIN_METHODS = frozenset(_METHODS)


@dataclass(frozen=True)
class Registrations:
    """Criteria and methods registered in one process after sciprune's import."""

    criteria: tuple[Criterion, ...] = ()
    methods: tuple[Method, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.criteria or self.methods)


def registrations() -> Registrations:
    """What this process registered beyond sciprune's built-in criteria and methods, in order."""
    return Registrations(tuple(c for n, c in _CRITERIA.items() if n not in _BUILTIN_CRITERIA),
                         tuple(m for n, m in _METHODS.items() if n not in _BUILTIN_METHODS))


def adopt(regs: Registrations) -> None:
    """Register in this process every entry of ``regs`` it does not have yet (criteria first: a method
    may name one)."""
    for c in regs.criteria:
        if c.name not in _CRITERIA:
            register_criterion(c)
    for m in regs.methods:
        if m.name not in _METHODS:
            register_method(m)
