"""prune(fold_constants=True): a removed neuron's constant output sigma(b_j) goes into the next bias,
so the pruned network equals the one with the removed neurons' incoming weights zeroed (nothing masked)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from sciprune.core import compact, prune, torch_generator, units_of
from sciprune.core._fold import unit_constants
from sciprune.core._pruning import dead_units
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.odefield import ConcatField, ConcatSquashField
from sciprune.nn.stacked import StackedMLP

D = torch.float64


def _tiny() -> MLP:
    """1-2-1 tanh: neuron 0 (|w| = 1) goes first under neuron_l1; its bias 0.5 is not 0."""
    mlp = MLP([1, 2, 1], "tanh", generator=None, dtype=D)
    with torch.no_grad():
        mlp.layers[0].weight.copy_(torch.tensor([[1.0], [3.0]], dtype=D))
        mlp.layers[0].bias.copy_(torch.tensor([0.5, -0.2], dtype=D))
        mlp.layers[1].weight.copy_(torch.tensor([[2.0, 4.0]], dtype=D))
        mlp.layers[1].bias.copy_(torch.tensor([0.1], dtype=D))
    return mlp


def test_hand_computed_fold_into_the_next_bias() -> None:
    mlp = _tiny()
    prune(mlp, 0.5, criterion="neuron_l1", fold_constants=True)
    assert mlp.layers[0].weight.detach()[:, 0].tolist() == [0.0, 3.0] and mlp.layers[0].bias.tolist() == [0.0, -0.2]
    assert mlp.layers[1].weight.tolist() == [[0.0, 4.0]]
    assert float(mlp.layers[1].bias.detach()) == pytest.approx(0.1 + 2.0 * math.tanh(0.5), abs=1e-15)
    x = torch.tensor([[-1.0], [0.0], [2.0]], dtype=D)
    expect = 4.0 * torch.tanh(3.0 * x - 0.2) + 0.1 + 2.0 * math.tanh(0.5)
    torch.testing.assert_close(mlp(x), expect, atol=1e-14, rtol=0)


def test_default_is_off_and_the_constant_is_dropped() -> None:
    mlp = _tiny()
    prune(mlp, 0.5, criterion="neuron_l1")
    assert mlp.layers[1].bias.tolist() == [0.1]


def _zeroed_rows(ref: torch.nn.Module, pruned: torch.nn.Module) -> None:
    """Zero, in ``ref``, the incoming weights (only) of every unit dead in ``pruned``."""
    for g in units_of(pruned).groups:
        if not g.prunable:
            continue
        dead = dead_units(pruned, g)
        for s in g.incoming:
            w = ref.get_parameter(s.param)
            with torch.no_grad():
                x = w.movedim(s.axis, g.member_axes).reshape(dead.shape[0], w.shape[s.axis], -1)
                for j in range(dead.shape[0]):
                    x[j, s.index[dead[j]].reshape(-1)] = 0.0
                w.copy_(x.reshape(w.movedim(s.axis, g.member_axes).shape).movedim(g.member_axes, s.axis))


def test_mlp_two_layers_at_once_then_a_second_call_equal_zeroed_incoming_rows() -> None:
    mlp = MLP([3, 7, 6, 2], "tanh", generator=torch_generator(0, "fold", "mlp"), dtype=D)
    with torch.no_grad():
        for lin in mlp.linears:
            lin.bias.uniform_(-1.0, 1.0, generator=torch_generator(0, "fold", "bias"))
    x = torch.randn(20, 3, generator=torch_generator(0, "fold", "x"), dtype=D)
    plain = copy.deepcopy(mlp)
    for sparsity, dead in ((0.3, [2, 2]), (0.6, [4, 4])):  # each call: exact w.r.t. the network it prunes
        ref = copy.deepcopy(mlp)
        prune(mlp, sparsity, criterion="neuron_l1", fold_constants=True)
        assert [int(dead_units(mlp, g).sum()) for g in units_of(mlp).groups[:2]] == dead
        _zeroed_rows(ref, mlp)
        with torch.no_grad():
            torch.testing.assert_close(mlp(x), ref(x), atol=1e-12, rtol=0)
            torch.testing.assert_close(compact(mlp)(x), mlp(x), atol=1e-12, rtol=0)
    ref = copy.deepcopy(plain)
    prune(plain, 0.6, criterion="neuron_l1")  # without folding the constants are lost
    _zeroed_rows(ref, plain)
    with torch.no_grad():
        assert not torch.allclose(plain(x), ref(x), atol=1e-3)


def test_stacked_mlp_folds_per_member() -> None:
    net = StackedMLP(3, [2, 6, 2], "tanh", generator=torch_generator(4, "init"), dtype=D)
    ref = copy.deepcopy(net)
    before = net.layers[1].bias.detach().clone()
    prune(net, [0.5, 0.0, 0.34], criterion="neuron_l1", fold_constants=True)
    dead = dead_units(net, units_of(net).groups[0])
    assert dead.sum(dim=1).tolist() == [3, 0, 2]
    for j in range(3):  # hand-computed per member: b1 += sum over its dead j of tanh(b0_j) W1[:, j]
        c = torch.tanh(ref.layers[0].bias[j, dead[j]])
        expect = before[j] + (ref.layers[1].weight[j][:, dead[j]] * c).sum(dim=1)
        torch.testing.assert_close(net.layers[1].bias[j].detach(), expect.detach(), atol=1e-14, rtol=0)
    _zeroed_rows(ref, net)
    x = torch.randn(9, 2, generator=torch_generator(0, "fold", "stacked"), dtype=D)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), atol=1e-12, rtol=0)


def test_concat_field_folds_through_the_time_column_offset() -> None:
    field = ConcatField([2, 6, 5, 2], "tanh", generator=torch_generator(2, "ConcatField"), dtype=D)
    ref = copy.deepcopy(field)
    b1 = field.layers[1].bias.detach().clone()
    prune(field, 0.5, criterion="neuron_l1", layers=["layers.0", "layers.1"], fold_constants=True)
    dead0 = dead_units(field, units_of(field).groups[0])[0]
    kept1 = ~dead_units(field, units_of(field).groups[1])[0]
    # next layer's column of neuron j is j + 1 (column 0 reads t)
    c = torch.tanh(ref.layers[0].bias[dead0])
    expect = b1 + (ref.layers[1].weight[:, 1:][:, dead0] * c).sum(dim=1)
    torch.testing.assert_close(field.layers[1].bias[kept1].detach(), expect[kept1].detach(), atol=1e-14, rtol=0)
    _zeroed_rows(ref, field)  # the row includes the time column's weight
    x = torch.randn(11, 2, generator=torch_generator(0, "fold", "concat"), dtype=D)
    with torch.no_grad():
        for t in (0.0, 0.7):
            torch.testing.assert_close(field(t, x), ref(t, x), atol=1e-12, rtol=0)


def test_concat_squash_neurons_are_not_folded() -> None:
    field = ConcatSquashField([2, 6, 2], "tanh", generator=torch_generator(1, "ConcatSquashField"), dtype=D)
    assert unit_constants(field, units_of(field).groups[0]) is None  # gate / hyper-bias rows: depends on t
    plain = copy.deepcopy(field)
    prune(field, 0.5, criterion="neuron_l1", fold_constants=True)
    prune(plain, 0.5, criterion="neuron_l1")
    for (n, p), q in zip(field.named_parameters(), plain.parameters()):
        assert torch.equal(p, q), n


def test_fold_constants_needs_a_structured_criterion() -> None:
    with pytest.raises(InputError, match="unstructured"):
        prune(_tiny(), 0.5, criterion="magnitude", fold_constants=True)
