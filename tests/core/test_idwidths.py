"""ID pruning of a whole network to given widths (``id_prune_widths``): through the sub-network a family
declares by ``id_part()``, equal bit for bit to core's ID on that part done by hand, and the groups an
ID cannot fold refused or handed to a structured criterion."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from sciprune.core import (
    Pruning, PruningUnits, Traced, get_masks, id_part_of, id_prune_mlp, id_prune_traced, id_prune_widths, prune,
    resolve_method, torch_generator, units_of,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import prefixed
from tests.core import zoo


class Wrap(nn.Module):
    """A family around a sub-network ``inner`` (as a neural ODE wraps its field): declares its units and
    its ID part; ``rebuild`` records what it was given."""

    def __init__(self, inner: nn.Module, scale: float = 2.0) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.inner(x)

    def pruning_units(self) -> PruningUnits:
        return prefixed(units_of(self.inner), "inner.")

    def id_part(self):
        return "inner", lambda pruned: Wrap(pruned, self.scale)


def _mlp(sizes=(3, 9, 7, 2)) -> MLP:
    return MLP(list(sizes), "tanh", generator=torch_generator(0, "w")).double()


def _x(n: int = 40, d: int = 3) -> Tensor:
    return torch.randn(n, d, generator=torch_generator(1, "x"), dtype=torch.float64)


def _same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_declared_part_is_pruned_and_put_back_like_core_id_by_hand():
    mlp = _mlp()
    model = Wrap(Wrap(mlp, 3.0))
    before = copy.deepcopy(model.state_dict())
    part, prefix, _ = id_part_of(model)
    assert part is mlp and prefix == "inner.inner."
    small = id_prune_widths(model, _x(), {"inner.inner.layers.0": 4, "inner.inner.layers.1": 3})
    hand = id_prune_mlp(mlp, _x(), rank=[4, 3])
    assert isinstance(small, Wrap) and isinstance(small.inner, Wrap) and small.inner.scale == 3.0
    assert small.inner.inner.sizes == [3, 4, 3, 2]
    _same(small.inner.inner, hand)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is left as it was


def test_an_unnamed_group_keeps_its_width_and_a_width_above_the_size_keeps_the_group():
    mlp = _mlp()
    _same(id_prune_widths(mlp, _x(), {"layers.0": 5}), id_prune_mlp(mlp, _x(), rank=[5, 7]))
    _same(id_prune_widths(mlp, _x(), {"layers.0": 50, "layers.1": 2}), id_prune_mlp(mlp, _x(), rank=[9, 2]))
    x = _x()
    with torch.no_grad():  # full rank: the same function (to rounding)
        torch.testing.assert_close(id_prune_widths(mlp, x, {"layers.0": 9})(x), mlp(x), rtol=0, atol=1e-10)


def test_refusals_are_one_line():
    mlp = _mlp()
    with pytest.raises(InputError, match=r"no prunable group 'layers.2' in MLP; its prunable groups are "
                                         r"\['layers.0', 'layers.1'\]"):
        id_prune_widths(mlp, _x(), {"layers.2": 1})  # the output layer: declared, not prunable
    with pytest.raises(InputError, match=r"no prunable group 'layers.0' in Wrap; its prunable groups are "
                                         r"\['inner.layers.0', 'inner.layers.1'\]"):
        id_prune_widths(Wrap(mlp), _x(), {"layers.0": 1})
    with pytest.raises(InputError, match="an MLP chain takes one tensor of samples; got tuple"):
        id_prune_widths(mlp, (_x(),), {"layers.0": 1})
    with pytest.raises(InputError, match="ID pruning needs an MLP chain or a Traced network; got Sequential"):
        id_prune_widths(Wrap(nn.Sequential(nn.Linear(3, 4))), _x(), {})
    with pytest.raises(InputError, match="unfoldable='magnitude' is an unstructured criterion"):
        Pruning(resolve_method("id"), unfoldable="magnitude")
    with pytest.raises(InputError, match="unknown pruning criterion 'nope'"):
        Pruning(resolve_method("id"), unfoldable="nope")


def test_a_group_id_cannot_fold_is_refused_or_pruned_by_the_criterion_named():
    model, xs = zoo.build("deeponet")  # branch·trunk einsum: the shared output group is read by a product
    traced = Traced(model, xs)
    widths = {"branch.0": 3, "trunk.0": 4, "branch.2+trunk.2": 2}
    with pytest.raises(InputError, match="group 'branch.2\\+trunk.2' is read by .*not linear in its activation"):
        id_prune_widths(traced, xs, widths)
    ours = id_prune_widths(copy.deepcopy(traced), xs, widths, unfoldable="neuron_l2", sparsity=0.5)
    hand = copy.deepcopy(traced)
    prune(hand, 0.5, criterion="neuron_l2", layers=["branch.2+trunk.2"])
    hand = id_prune_traced(hand, xs, ranks={"branch.0": 3, "trunk.0": 4})
    _same(ours, hand)
    assert {g.name: g.size for g in units_of(ours).groups if g.prunable}["branch.0"] == 3
    assert int(get_masks(ours)["module.branch.2.weight"].any(1).sum()) == 2  # 4 - round(0.5 * 4), masked
    with pytest.raises(InputError, match="pass sparsity="):
        id_prune_widths(copy.deepcopy(traced), xs, widths, unfoldable="neuron_l2")


def test_a_neural_ode_is_pruned_through_its_field_and_its_checkpoint_rebuilds(tmp_path):
    """The nn families' declarations: CNF -> field, Autonomous -> net. The pruned CNF is a new wrapper
    whose ``arch`` describes the pruned field, so a checkpoint of it loads back to the same network."""
    from sciprune.core import load_model, save_checkpoint
    from sciprune.nn.ode import CNF, Autonomous, Solver
    from sciprune.nn.odefield import ConcatField

    mlp = MLP([2, 10, 10, 2], "tanh", generator=torch_generator(0, "f"))
    cnf = CNF(Autonomous(mlp), Solver("rk4", steps=4, adjoint=False), trace="exact")
    states = torch.randn(60, 2, generator=torch_generator(2, "s"))
    small = id_prune_widths(cnf, states, {"field.net.layers.0": 4, "field.net.layers.1": 3})
    assert isinstance(small, CNF) and small.trace == "exact" and small.arch["field"]["net"]["sizes"] == [2, 4, 3, 2]
    _same(small.field.net, id_prune_mlp(mlp, states, rank=[4, 3]))
    save_checkpoint(tmp_path / "small.safetensors", small)
    back = load_model(tmp_path / "small.safetensors")
    x = torch.randn(8, 2, generator=torch_generator(3, "x"))
    with torch.no_grad():
        assert torch.equal(back.log_prob(x, generator=None), small.log_prob(x, generator=None))
    concat = CNF(ConcatField([2, 6, 2], generator=torch_generator(0, "c")), Solver("rk4", steps=2, adjoint=False),
                 trace="exact")
    with pytest.raises(InputError, match="ID pruning needs an MLP chain or a Traced network; got ConcatField"):
        id_prune_widths(concat, states, {"field.layers.0": 3})
