import pytest
import torch

from sciprune.core import count_params, get_masks, load_model, prune, save_checkpoint, torch_generator
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.stacked import StackedMLP


@pytest.fixture
def ens() -> StackedMLP:
    return StackedMLP(3, [4, 10, 8, 2], "tanh", generator=torch_generator(5, "init"))


def test_members_are_the_mlps_drawn_in_turn_from_the_generator(ens, gen):
    x = torch.randn(6, 4, generator=gen)
    y = ens(x)
    assert y.shape == (3, 6, 2)
    g = torch_generator(5, "init")
    for p in range(3):
        ref = MLP([4, 10, 8, 2], "tanh", generator=g)
        torch.testing.assert_close(y[p], ref(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(ens.member(p)(x), ref(x), rtol=0, atol=0)
    assert not torch.equal(y[0], y[1])
    per_member_x = torch.randn(3, 6, 4, generator=gen)
    torch.testing.assert_close(ens(per_member_x)[2], ens.member(2)(per_member_x[2]), rtol=0, atol=1e-6)


def test_from_members_round_trip(ens, gen):
    again = StackedMLP.from_members([ens.member(p) for p in range(3)])
    x = torch.randn(5, 4, generator=gen)
    assert torch.equal(again(x), ens(x))


def test_unstructured_sparsity_is_exact_per_member(ens):
    reports = prune(ens, [0.2, 0.5, 0.8])
    masks = get_masks(ens)
    for l, (o, i) in enumerate([(10, 4), (8, 10), (2, 8)]):
        m = masks[f"layers.{l}.weight"]
        assert [int((~m[p]).sum()) for p in range(3)] == [round(s * o * i) for s in (0.2, 0.5, 0.8)]
    assert [(r.layer, r.member) for r in reports][:3] == [("layers.0", 0), ("layers.0", 1), ("layers.0", 2)]
    # each member is pruned by its own magnitudes: the same as pruning it alone
    for p, s in enumerate((0.2, 0.5, 0.8)):
        alone = StackedMLP(3, [4, 10, 8, 2], "tanh", generator=torch_generator(5, "init")).member(p)
        prune(alone, s)
        for l in range(3):
            assert torch.equal(get_masks(alone)[f"layers.{l}.weight"], masks[f"layers.{l}.weight"][p])


def test_global_allocation_is_per_member(ens):
    prune(ens, 0.6, allocation="global")
    masks = get_masks(ens)
    total = 4 * 10 + 10 * 8 + 8 * 2
    for p in range(3):
        assert sum(int((~masks[f"layers.{l}.weight"][p]).sum()) for l in range(3)) == round(0.6 * total)


def test_structured_masks_whole_neurons_per_member(ens, gen):
    prune(ens, [0.0, 0.5, 0.3], criterion="neuron_l2")
    masks = get_masks(ens)
    w0, b0, w1 = masks["layers.0.weight"], masks["layers.0.bias"], masks["layers.1.weight"]
    assert [int((~b0[p]).sum()) for p in range(3)] == [0, 5, 3]
    for p in range(3):
        dead = ~b0[p]
        assert torch.all(~w0[p][dead]) and torch.all(w0[p][~dead])
        assert torch.all(~w1[p][:, dead])
    # the same neurons as pruning each member alone
    fresh = StackedMLP(3, [4, 10, 8, 2], "tanh", generator=torch_generator(5, "init"))
    for p, s in enumerate((0.0, 0.5, 0.3)):
        alone = fresh.member(p)
        prune(alone, s, criterion="neuron_l2")
        assert torch.equal(get_masks(alone)["layers.0.bias"], b0[p])
        assert torch.equal(get_masks(alone)["layers.1.bias"], masks["layers.1.bias"][p])


def test_sparsity_list_must_match_members(ens):
    with pytest.raises(InputError, match=r"sparsity has 2 values; expected one number or one per member \(3\)"):
        prune(ens, [0.1, 0.2])


def test_checkpoint_round_trip(ens, tmp_path, gen):
    prune(ens, [0.1, 0.4, 0.7])
    save_checkpoint(tmp_path / "e.safetensors", ens)
    back = load_model(tmp_path / "e.safetensors")
    assert isinstance(back, StackedMLP) and back.members == 3
    x = torch.randn(4, 4, generator=gen)
    assert torch.equal(back(x), ens(x))
    assert all(torch.equal(get_masks(back)[k], v) for k, v in get_masks(ens).items())


def test_counts_and_flops_by_hand():
    ens = StackedMLP(2, [3, 4, 1], "relu", generator=torch_generator(0, "init"))
    assert count_params(ens).total == 2 * (3 * 4 + 4 + 4 * 1 + 1)
    assert ens.flops_per_member() == [2 * 12 + 4 + 2 * 4 + 1] * 2
    prune(ens, [0.0, 0.5], criterion="neuron_l1")  # member 1 loses 2 hidden neurons
    assert ens.flops_per_member() == [37, 2 * 6 + 2 + 2 * 2 + 1]
    assert ens.flops() == 37 + 19


def test_one_batched_matmul_per_layer(ens, gen):
    calls = []
    orig = torch.baddbmm

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    torch.baddbmm = spy
    try:
        ens(torch.randn(2, 4, generator=gen))
    finally:
        torch.baddbmm = orig
    assert len(calls) == 3


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_prune_then_compact_per_member_is_exact(act, gen):
    from sciprune.core import compact_with_indices

    ens = StackedMLP(3, [4, 20, 15, 3], act, generator=torch_generator(1, "init")).double()
    prune(ens, [0.2, 0.6, 0.4], criterion="neuron_l2")
    small, keep = compact_with_indices(ens)
    # each member keeps its own neurons; the width is the widest member's (16 of 20, 12 of 15)
    assert small.sizes == [4, 16, 12, 3] and keep["layers.0"].shape == (3, 16)
    for p in range(3):
        live = ens.layers[0].bias_mask[p].nonzero().flatten()
        assert set(live.tolist()) <= set(keep["layers.0"][p].tolist())
    x = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    assert float((small(x) - ens(x)).detach().abs().max()) < 1e-6
    assert count_params(small).total < count_params(ens).total
    # masks travel with the kept entries: pruned ones stay pruned in the smaller ensemble
    assert int((~small.layers[0].bias_mask).sum()) == 3 * 16 - (16 + 8 + 12)
