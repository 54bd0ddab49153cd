"""``chain_units``: the one declaration of chain-shaped networks, checked against hand-written units
and against every family that uses it (same slices, same fold targets, output group declared)."""

from __future__ import annotations

import torch

from sciprune.core import NeuronGroup, PruningUnits, Slice, WeightUnit, chain_units, torch_generator
from sciprune.nn import MLP, ConcatField, ConcatSquashField, StackedMLP


def _same(a: PruningUnits, b: PruningUnits) -> None:
    """Equal units (``Slice.index`` compared by value)."""
    assert a.weights == b.weights and a.members == b.members
    assert [g.name for g in a.groups] == [g.name for g in b.groups]
    for g, h in zip(a.groups, b.groups):
        assert (g.size, g.member_axes, g.activation, g.prunable) == (h.size, h.member_axes, h.activation, h.prunable)
        for part in ("incoming", "outgoing", "attached"):
            xs, ys = getattr(g, part), getattr(h, part)
            assert [(s.param, s.axis, s.fold_into) for s in xs] == [(s.param, s.axis, s.fold_into) for s in ys], (g.name, part)
            for s, t in zip(xs, ys):
                assert torch.equal(s.index, t.index), (g.name, part, s.param)


def test_chain_units_by_hand() -> None:
    """Widths [3, 2, 1], time column: written out slice by slice."""
    r2, r1 = torch.arange(2)[:, None], torch.arange(1)[:, None]
    expected = PruningUnits(
        (WeightUnit("layers.0.weight", layer="layers.0"), WeightUnit("layers.1.weight", layer="layers.1")),
        (
            NeuronGroup("layers.0", 2, (Slice("layers.0.weight", 0, r2),),
                        (Slice("layers.1.weight", 1, r2 + 1, fold_into="layers.1.bias"),),
                        (Slice("layers.0.bias", 0, r2), Slice("layers.0.g", 0, r2)), activation="tanh"),
            NeuronGroup("layers.1", 1, (Slice("layers.1.weight", 0, r1),), (),
                        (Slice("layers.1.bias", 0, r1), Slice("layers.1.g", 0, r1)), activation="identity",
                        prunable=False),
        ),
    )
    _same(chain_units([3, 2, 1], ["tanh", "identity"], in_offset=1, rows=("g",)), expected)


def test_chain_units_member_axes_shift_every_axis() -> None:
    u = chain_units([4, 3, 2], ["relu", "identity"], member_axes=1, members=5)
    g = u.groups[0]
    assert u.members == 5 and u.weights[0].member_axes == 1
    assert (g.incoming[0].axis, g.attached[0].axis, g.outgoing[0].axis) == (1, 1, 2)


def test_every_chain_family_declares_fold_targets_and_its_output_group() -> None:
    """Every hidden group's outgoing slice folds into the next bias; the output group is declared and
    not prunable — in MLP, StackedMLP, ConcatField and ConcatSquashField alike."""
    g = torch_generator(0, "units")
    for net in (MLP([3, 4, 5, 2], "tanh", generator=g), StackedMLP(2, [3, 4, 5, 2], "tanh", generator=g),
                ConcatField([3, 4, 5, 3], "tanh", generator=g), ConcatSquashField([3, 4, 5, 3], "tanh", generator=g)):
        u = net.pruning_units()
        assert [h.prunable for h in u.groups] == [True, True, False], type(net).__name__
        for h in u.groups[:-1]:
            (s,) = h.outgoing
            assert s.fold_into is not None and s.fold_into.endswith("bias"), (type(net).__name__, h.name)
            net.get_parameter(s.fold_into)  # names a real parameter
        assert u.groups[-1].outgoing == ()
