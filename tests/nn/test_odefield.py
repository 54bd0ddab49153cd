import pytest
import torch

from sciprune.core import compact_units, count_params, get_masks, load_model, prune, save_checkpoint, torch_generator
from sciprune.errors import InputError
from sciprune.nn.odefield import ConcatField, ConcatSquashField

FIELDS = [ConcatField, ConcatSquashField]


@pytest.mark.parametrize("cls", FIELDS)
def test_forward_matches_the_layer_formula(cls, gen):
    f = cls([2, 5, 2], "tanh", generator=torch_generator(0, cls.__name__))
    x, t = torch.randn(7, 2, generator=gen), 0.3
    if cls is ConcatField:
        l0, l1 = f.linears
        tc = torch.full((7, 1), t)
        ref = l1(torch.cat([tc, torch.tanh(l0(torch.cat([tc, x], 1)))], 1))
    else:
        l0, l1 = f.squash
        tc = torch.full((7, 1), t)

        def sq(m, h):
            return m.linear(h) * torch.sigmoid(m.gate.weight.T * tc + m.gate.bias) + m.hyper_bias.weight.T * tc

        ref = sq(l1, torch.tanh(sq(l0, x)))
    torch.testing.assert_close(f(t, x), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(f(torch.tensor(t), x), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", FIELDS)
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softplus"])
def test_structured_prune_then_compact_is_exact(cls, act, gen):
    f = cls([3, 16, 12, 3], act, generator=torch_generator(1, cls.__name__)).double()
    reports = prune(f, 0.5, criterion="neuron_l2", with_outgoing=True)
    assert [r.layer for r in reports] == ["layers.0", "layers.1"]  # never the output layer
    assert [r.neurons_pruned for r in reports] == [8, 6]
    masks = get_masks(f)
    if cls is ConcatSquashField:  # gate and hyper-bias rows die with the neuron
        dead = ~masks["layers.0.linear.bias"]
        assert torch.all(~masks["layers.0.gate.weight"][dead]) and torch.all(~masks["layers.0.hyper_bias.weight"][dead])
        assert torch.all(~masks["layers.1.linear.weight"][:, dead])
    else:  # the next layer's column sits after the time column
        dead = ~masks["layers.0.bias"]
        assert torch.equal(masks["layers.1.weight"][:, 0], masks["layers.1.bias"])  # time column: only dead rows
        assert torch.all(~masks["layers.1.weight"][:, 1:][:, dead])
    small, keep = compact_units(f)
    assert small.sizes == [3, 8, 6, 3]
    assert keep["layers.0"].shape == (1, 8) and torch.equal(keep["layers.0"][0], (~dead).nonzero().flatten())
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    for t in (0.0, 0.7):
        assert float((small(t, x) - f(t, x)).detach().abs().max()) < 1e-6
    assert count_params(small).total < count_params(f).total


def test_counts_and_flops_by_hand():
    f = ConcatField([2, 3, 2], "tanh", generator=torch_generator(0, "ConcatField"))
    # weights (3, 1+2) and (2, 1+3), biases 3 and 2
    assert count_params(f).total == 9 + 3 + 8 + 2
    assert f.flops() == 2 * 9 + 3 + 2 * 8 + 2
    prune(f, 0.34, criterion="neuron_l2")  # one hidden neuron: its row (3), bias, outgoing column (2)
    assert f.flops() == 2 * 6 + 2 + 2 * 6 + 2
    g = ConcatSquashField([2, 3, 2], "tanh", generator=torch_generator(0, "ConcatSquashField"))
    assert count_params(g).total == (6 + 3 + 3 + 3 + 3) + (6 + 2 + 2 + 2 + 2)
    assert g.flops() == (2 * 6 + 3 + 4 * 3 + 2 * 3) + (2 * 6 + 2 + 4 * 2 + 2 * 2)
    prune(g, 0.34, criterion="neuron_l2")
    assert g.flops() == (2 * 4 + 2 + 4 * 2 + 2 * 2) + (2 * 4 + 2 + 4 * 2 + 2 * 2)


@pytest.mark.parametrize("cls", FIELDS)
def test_checkpoint_round_trip(cls, tmp_path, gen):
    f = cls([2, 6, 2], "softplus", generator=torch_generator(3, cls.__name__))
    prune(f, 0.5)
    save_checkpoint(tmp_path / "f.safetensors", f)
    back = load_model(tmp_path / "f.safetensors")
    assert type(back) is cls and back.arch == f.arch
    x = torch.randn(5, 2, generator=gen)
    assert torch.equal(back(0.2, x), f(0.2, x))
    assert all(torch.equal(get_masks(back)[k], v) for k, v in get_masks(f).items())


def test_bad_sizes():
    with pytest.raises(InputError, match="vector-field sizes must be >= 2 positive widths; got \\[3\\]"):
        ConcatField([3], generator=None)
