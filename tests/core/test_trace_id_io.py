"""ID pruning of traced groups, and checkpoints of traced models (issue 16)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from sciprune.core import Traced, compact, count_params, id_prune_traced, load_model, prune, save_checkpoint, units_of
from sciprune.errors import InputError
from tests.core import zoo


def out(model: nn.Module, xs: tuple[Tensor, ...]) -> Tensor:
    with torch.no_grad():
        return model(*xs)


def rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_id_of_a_duplicated_neuron_folds_it_into_the_consumer_by_hand():
    # hidden unit 2 = 2 x unit 1 (identity activation): rank 2 is exact, and the consumer's kept
    # column absorbs the removed one: W'[:, 1] = W[:, 1] + 2 W[:, 2] (or W'[:, 2] = W[:, 2] + W[:, 1] / 2)
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.5], [1.0, 3.0]]))
        net[0].bias.copy_(torch.tensor([0.25, -1.0, -2.0]))
        net[1].weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]]))
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = Traced(net, x)
    small = id_prune_traced(t, x, ranks={"0": 2})
    assert small.module[0].out_features == 2 and small.module[1].in_features == 2
    assert torch.allclose(out(small, (x,)), out(net, (x,)), rtol=0, atol=1e-10)
    W = net[1].weight.detach()
    cols = small.module[1].weight.detach()
    kept_second = torch.allclose(small.module[0].weight[1], net[0].weight[1])
    expect = W[:, 1] + 2 * W[:, 2] if kept_second else W[:, 2] + 0.5 * W[:, 1]
    assert torch.allclose(cols[:, 1], expect, atol=1e-12) and torch.allclose(cols[:, 0], W[:, 0], atol=1e-12)
    assert torch.equal(net[1].weight.detach(), W)  # the caller's model is not touched


@pytest.mark.parametrize("name", ["mlp", "residual_mlp", "pfnn", "cnn1d", "unet1d", "concat_input_mlp", "fourier_inr"])
def test_id_at_full_rank_leaves_every_zoo_model_unchanged(name):
    model, xs = zoo.build(name)
    t = Traced(model, xs)
    full = {g.name: g.size for g in units_of(t).groups if g.prunable}
    same = id_prune_traced(t, xs, ranks=full)
    assert float((out(same, xs) - out(model, xs)).abs().max()) <= 1e-10 * (1 + float(out(model, xs).abs().max()))


def test_id_with_correction_beats_dropping_the_same_neurons():
    model, xs = zoo.build("residual_mlp")
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = Traced(model, xs)
    name = next(g.name for g in units_of(t).groups if g.prunable)
    small = id_prune_traced(t, (x,), ranks={name: 5})
    assert count_params(small).total < count_params(model).total
    err_id = rel(out(small, (x,)), out(model, (x,)))
    masked = Traced(zoo.build("residual_mlp")[0], xs)
    prune(masked, 3 / 8, criterion="neuron_l2")
    err_drop = rel(out(masked, (x,)), out(model, (x,)))
    assert err_id < err_drop


def test_id_refuses_a_group_read_by_a_product_and_names_it():
    model, xs = zoo.build("deeponet")
    t = Traced(model, xs)
    with pytest.raises(InputError, match=r"group 'branch.2\+trunk.2' is read by function torch.sum .*not linear"):
        id_prune_traced(t, xs, ranks={"branch.2+trunk.2": 2})
    small = id_prune_traced(t, xs, ranks={"branch.0": 3, "trunk.0": 4})  # the hidden layers are fine
    assert small.module.branch[0].out_features == 3 and small.module.trunk[0].out_features == 4


def test_id_refuses_bad_arguments_with_one_line():
    model, xs = zoo.build("mlp")
    t = Traced(model, xs)
    with pytest.raises(InputError, match="exactly one of ranks and eps"):
        id_prune_traced(t, xs)
    with pytest.raises(InputError, match="no prunable group '4'"):
        id_prune_traced(t, xs, ranks={"4": 1})
    with pytest.raises(InputError, match=r"rank for group '0' must be in \[1, 8\]"):
        id_prune_traced(t, xs, ranks={"0": 9})
    with pytest.raises(InputError, match="needs a Traced model"):
        id_prune_traced(model, xs, ranks={"0": 1})  # type: ignore[arg-type]


def test_id_to_a_tolerance_prunes_every_group():
    model, xs = zoo.build("mlp")
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    small = id_prune_traced(Traced(model, xs), (x,), eps=1e-1)
    assert rel(out(small, (x,)), out(model, (x,))) < 0.2
    assert count_params(small).total < count_params(model).total


@pytest.mark.parametrize("name", ["residual_mlp", "unet1d", "deeponet"])
def test_a_compacted_traced_model_saves_and_loads_without_pickle(tmp_path, name):
    model, xs = zoo.build(name, dtype=torch.float32)
    t = Traced(model, xs, factory=f"tests.core.zoo:{name}", factory_kwargs={"seed": 0})
    prune(t, 0.5, criterion="neuron_l2")
    small = compact(t)
    path = tmp_path / "small.safetensors"
    save_checkpoint(path, small)
    back = load_model(path)  # in eval mode, though a factory's model starts in train mode, as torch models do
    assert not any(m.training for m in back.modules())  # unet1d's batch norm: its first call would move it
    assert isinstance(back, Traced) and back.arch["widths"] == small.arch["widths"]
    assert torch.equal(out(back, xs), out(small, xs))


def test_a_traced_checkpoint_without_factory_or_with_a_bad_one_is_refused(tmp_path):
    model, xs = zoo.build("mlp", dtype=torch.float32)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, Traced(model, xs))
    with pytest.raises(InputError, match="names no factory"):
        load_model(path)
    save_checkpoint(path, Traced(model, xs, factory="tests.core.zoo:nothing_here"))
    with pytest.raises(InputError, match="has no 'nothing_here'"):
        load_model(path)
    save_checkpoint(path, Traced(model, xs, factory="tests.core.zoo:pfnn"))
    with pytest.raises(InputError, match=r"PFNN fails on example inputs of shapes \[\(9, 3\)\]"):
        load_model(path)


def test_a_factory_that_cannot_be_saved_is_refused_at_once():
    model, xs = zoo.build("mlp")
    with pytest.raises(InputError, match="factory must be 'package.module:function'"):
        Traced(model, xs, factory="tests.core.zoo.mlp")
    with pytest.raises(InputError, match="factory_kwargs must be JSON-able"):
        Traced(model, xs, factory="tests.core.zoo:mlp", factory_kwargs={"gen": torch.Generator()})


@pytest.mark.parametrize("name", ["bn_mlp", "unet1d"])
def test_id_sees_the_network_as_it_predicts_whatever_its_mode(name):
    """Batch norm and dropout: in train mode the ID's forward would use batch statistics and draw dropout
    masks from the global random stream (two IDs of one network differed). It runs in eval mode: the
    same network from a model in train or eval mode, the same on a second call, the modes kept."""
    model, xs = zoo.build(name)
    traced = Traced(model, xs)
    ranks = {g.name: max(1, g.size // 2) for g in traced.pruning_units().groups if g.prunable}
    ranks = {k: v for k, v in ranks.items() if not traced.trace.sinks.get(k)}
    traced.train()
    first, second = id_prune_traced(traced, xs, ranks=ranks), id_prune_traced(traced, xs, ranks=ranks)
    assert traced.training and all(m.training for m in traced.modules())
    traced.eval()
    third = id_prune_traced(traced, xs, ranks=ranks)
    for other in (second, third):
        a, b = first.state_dict(), other.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
