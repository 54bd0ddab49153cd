"""DeepXDE's PyTorch networks traced as a user brings them (optional: skipped without deepxde).

FNN and PFNN trace with plain ``torch.fx``; the operator networks check ``x_func.shape[-1] !=
x_loc.shape[-1]`` in Python, so they go through the meta tracer (shape-dependent control flow). In
all of them the branch/trunk product is one coupled group read by DeepXDE's ``einsum``.
"""

from __future__ import annotations

import os

import pytest
import torch

from sciprune.core import Traced, compact, prune, units_of
from sciprune.core._traced import relative_difference

os.environ.setdefault("DDE_BACKEND", "pytorch")
dde = pytest.importorskip("deepxde")


def _nets():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {
        "FNN": (lambda: dde.nn.FNN([2, 12, 12, 1], "tanh", "Glorot normal"), (r(9, 2),), 2),
        "PFNN": (lambda: dde.nn.PFNN([2, [8, 8], [8, 8], 2], "tanh", "Glorot normal"), (r(9, 2),), 4),
        "DeepONet": (lambda: dde.nn.DeepONet([5, 12, 6], [2, 12, 6], "tanh", "Glorot normal"), ((r(9, 5), r(9, 2)),), 3),
        "DeepONetCartesianProd": (lambda: dde.nn.DeepONetCartesianProd([5, 12, 6], [2, 12, 6], "tanh", "Glorot normal"),
                                  ((r(4, 5), r(11, 2)),), 3),
        "MIONetCartesianProd": (lambda: dde.nn.MIONetCartesianProd([5, 12, 6], [3, 12, 6], [2, 12, 6], "tanh", "Glorot normal"),
                                ((r(4, 5), r(4, 3), r(11, 2)),), 4),
    }


@pytest.mark.parametrize("name", sorted(_nets()))
def test_deepxde_network_is_traced_pruned_and_compacted_exactly(name):
    make, xs, n_groups = _nets()[name]
    with torch.random.fork_rng(devices=[]):  # DeepXDE initialises from the global generator
        torch.manual_seed(0)
        model = make()
    net = Traced(model, xs)
    assert len([g for g in units_of(net).groups if g.prunable]) == n_groups
    prune(net, 0.5, criterion="neuron_l2")
    assert relative_difference(compact(net), net, xs) < 1e-6
