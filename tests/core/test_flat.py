"""FlatParameters: one buffer, the same optimisation, masks enforced on it, member rows."""

import pytest
import torch

from sciprune.core import FlatParameters, enforce_masks, fast_tanh, flat_optimizer, get_masks, prune, torch_generator
from sciprune.core._flat import flat_of
from sciprune.nn.mlp import MLP
from sciprune.nn.stacked import StackedMLP


def _steps(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


def _pair(factory, **kw):
    a = MLP([3, 16, 16, 2], "tanh", generator=torch_generator(5, "flat"))
    b = MLP([3, 16, 16, 2], "tanh", generator=torch_generator(5, "flat"))
    return (a, factory(a.parameters(), **kw)), (b, flat_optimizer(b.parameters(), factory, **kw))


@pytest.mark.parametrize("factory, kw", [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
                                         (torch.optim.Adam, {"lr": 1e-2, "foreach": False})])
def test_entrywise_optimizers_take_the_same_steps_on_the_flat_buffer(factory, kw):
    (a, opt_a), (b, opt_b) = _pair(factory, **kw)
    g = torch_generator(0, "flat-data")
    x, y = torch.randn(32, 3, generator=g), torch.randn(32, 2, generator=g)
    _steps(a, opt_a, x, y, 50)
    _steps(b, opt_b, x, y, 50)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pb, pa, rtol=0, atol=1e-6)  # same arithmetic per entry
    assert all(p.grad is None for p in b.parameters())  # consumed by the step


def test_parameters_are_views_of_the_buffer_in_member_rows():
    ens = StackedMLP(3, [4, 5, 2], "tanh", generator=torch_generator(1, "init"))
    before = {k: v.clone() for k, v in ens.state_dict().items()}
    flat = FlatParameters(ens.parameters(), members=3)
    assert flat.tensor.shape == (3, 4 * 5 + 5 + 5 * 2 + 2)
    for k, v in ens.state_dict().items():
        assert torch.equal(v, before[k])  # the model is unchanged
    for p in range(3):  # row p is member p's parameters, in order
        row = torch.cat([t[p].reshape(-1) for t in ens.parameters()])
        assert torch.equal(flat.tensor[p].detach(), row)
    with torch.no_grad():
        flat.tensor[1].zero_()
    assert all(not t[1].any() and t[0].any() for t in ens.parameters())
    assert flat_of(flat.tensor) is flat and flat_of(torch.zeros(1)) is None


def test_masks_are_enforced_on_the_flat_buffer_and_its_moments():
    ens = StackedMLP(2, [3, 8, 8, 1], "tanh", generator=torch_generator(2, "init"))
    opt = flat_optimizer(ens.parameters(), torch.optim.Adam, members=2, lr=0.05)
    enforce_masks(ens, opt)
    prune(ens, [0.5, 0.75])
    g = torch_generator(0, "flat-mask")
    x, y = torch.randn(16, 3, generator=g), torch.randn(2, 16, 1, generator=g)
    _steps(ens, opt, x, y, 30)
    flat = flat_of(opt.param_groups[0]["params"][0])
    state = opt.state[flat.tensor]
    for name, mask in get_masks(ens).items():
        i = [n for n, _ in ens.named_parameters()].index(name)
        assert torch.all(ens.get_parameter(name)[~mask] == 0), name  # none revived
        assert torch.all(flat.view_of(i, state["exp_avg"])[~mask] == 0), name
        assert torch.all(flat.view_of(i, state["exp_avg_sq"])[~mask] == 0), name
        assert torch.all(ens.get_parameter(name)[mask] != 0), name  # the kept entries trained
    prune(ens, 0.9)  # a mask edited after the optimizer was built is honoured
    _steps(ens, opt, x, y, 5)
    for name, mask in get_masks(ens).items():
        assert torch.all(ens.get_parameter(name)[~mask] == 0), name


def test_replacing_a_parameters_data_is_refused_at_the_next_step():
    model = MLP([2, 4, 1], generator=None)
    opt = flat_optimizer(model.parameters(), torch.optim.SGD, lr=0.1)
    model.layers[0].weight.data = torch.zeros(4, 2)
    model(torch.ones(3, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="no longer lives in its FlatParameters buffer"):
        opt.step()


def test_mismatched_parameters_are_refused():
    with pytest.raises(ValueError, match="member axis"):
        FlatParameters([torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(2, 2))], members=3)
    with pytest.raises(ValueError, match="one dtype"):
        FlatParameters([torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))])


def test_fast_tanh_is_tanh_to_two_ulps_of_one_with_its_exact_derivative():
    x = torch.linspace(-12, 12, 200_001)
    y = fast_tanh(x)
    exact = torch.tanh(x.double())
    assert float((y.double() - exact).abs().max()) <= 2.5e-7
    assert torch.equal(fast_tanh(torch.tensor([0.0, 40.0, -40.0])), torch.tensor([0.0, 1.0, -1.0]))
    x = x[::997].clone().requires_grad_(True)
    fast_tanh(x).sum().backward()
    torch.testing.assert_close(x.grad.double(), 1 - torch.tanh(x.detach().double()) ** 2, rtol=0, atol=1e-6)
