"""A criterion or method registered in the calling process reaches dask worker processes
(``sciprune.shards.map_shards`` ships :func:`sciprune.core.registrations` with every task)."""

from __future__ import annotations

import uuid

import pytest
import torch

from sciprune.core import (Criterion, Method, adopt_registrations, available_methods, get_criterion, register_criterion,
                           register_method, registrations, resolve_method)
from sciprune.core import _criteria, _methods, _registrations
from sciprune.shards import map_shards


@pytest.fixture()
def registered_before():
    """What this process had registered beyond the built-ins before the test's own entries (a family's
    criterion, e.g. nn.nif's, when an earlier test imported it)."""
    return registrations()


@pytest.fixture()
def user_entries(registered_before):
    """A criterion and a method registered for one test, removed afterwards (the registries are global)."""
    tag = uuid.uuid4().hex[:8]
    crit = register_criterion(Criterion(f"abs_cubed_{tag}", False, lambda w, **_: w.abs() ** 3,
                                        description="|w|^3, registered by a test"))
    meth = register_method(Method(f"cubed_{tag}", crit.name, allocation="global", description="global |w|^3"))
    yield crit, meth
    _criteria._CRITERIA.pop(crit.name)
    _methods._METHODS.pop(meth.name)


def test_registrations_hold_only_what_this_process_added(registered_before, user_entries):
    crit, meth = user_entries
    regs = registrations()
    assert regs.criteria == (*registered_before.criteria, crit) and regs.methods == (*registered_before.methods, meth)
    names = {c.name for c in regs.criteria} | {m.name for m in regs.methods}
    assert not names & (_registrations._BUILTIN_CRITERIA | _registrations._BUILTIN_METHODS)  # every worker has them
    assert "magnitude" not in names


def test_adopt_registers_what_is_missing_and_leaves_present_names_alone(user_entries):
    crit, meth = user_entries
    regs = registrations()
    _criteria._CRITERIA.pop(crit.name)
    _methods._METHODS.pop(meth.name)
    assert meth.name not in available_methods()
    adopt_registrations(regs)
    assert get_criterion(crit.name) is crit and resolve_method(meth.name) is meth
    adopt_registrations(regs)  # twice (a worker running a second task): no "already registered" error
    assert get_criterion(crit.name) is crit


@pytest.mark.slow
def test_a_criterion_registered_here_is_known_on_local_dask_workers(user_entries):
    crit, meth = user_entries
    w = torch.tensor([[1.0, -3.0], [2.0, 0.5]])

    def score(name: str) -> tuple[str, list[float]]:  # a local function: dask ships it by value
        from sciprune.core import get_criterion, resolve_method

        m = resolve_method(name)
        return m.criterion, get_criterion(m.criterion).score(w).flatten().tolist()

    out = map_shards(score, [meth.name, meth.name, meth.name], workers=2)
    assert out == [(crit.name, [1.0, 27.0, 8.0, 0.125])] * 3
