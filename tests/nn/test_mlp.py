import pytest
import torch

from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def test_construction_leaves_the_global_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    MLP([3, 50, 50, 2], generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(3), expected)


def test_same_generator_same_weights_and_arch_round_trip():
    a = MLP([3, 8, 2], "tanh", generator=torch.Generator().manual_seed(4))
    b = MLP([3, 8, 2], "tanh", generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = MLP.from_arch(a.arch)
    assert c.sizes == a.sizes and c.activations == ["tanh", "identity"]


def test_hidden_returns_post_activations():
    net = MLP([2, 4, 3, 1], "relu", generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    hs = net.hidden(x)
    assert [h.shape[1] for h in hs] == [4, 3, 1]
    assert torch.all(hs[0] >= 0) and torch.equal(hs[-1], net(x))


def test_bad_sizes_and_activations():
    with pytest.raises(InputError, match="unknown activation 'swish'; expected one of elu"):
        MLP([2, 3, 1], "swish", generator=None)
    with pytest.raises(InputError, match=r">= 2 positive widths; got \[2\]"):
        MLP([2], generator=None)
    with pytest.raises(InputError, match="need 2 activations"):
        MLP([2, 3, 1], ["relu"], generator=None)
