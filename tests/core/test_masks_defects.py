"""Regression tests for the mask defects D1 (stale cached mask), D3 (gradients) and D4 (shared parameters)."""

import torch
from torch import nn

from sciprune.core import enforce_masks, mask_gradients, prune, set_mask
from sciprune.nn.mlp import MLP


def test_d1_a_mask_replaced_twice_between_steps_is_honoured():
    # the reproduction, verbatim (global RNG inside fork_rng: this allocation pattern is
    # the one that made the old cache reuse a freed mask's id; it revived 25 weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lin = nn.Linear(50, 50)
        opt = torch.optim.SGD(lin.parameters(), 0.1)
        enforce_masks(lin, opt)
        for k in range(200):
            set_mask(lin, "weight", torch.ones(50, 50, dtype=torch.bool))
            set_mask(lin, "weight", torch.rand(50, 50) > 0.01 * (k % 100))
            opt.zero_grad()
            lin(torch.randn(8, 50)).pow(2).sum().backward()
            opt.step()
            assert int((lin.weight[~lin.weight_mask] != 0).sum()) == 0, k


def test_d1_gradual_neuron_pruning_with_one_optimizer(mlp, gen):
    opt = torch.optim.Adam(mlp.parameters(), lr=0.05)
    enforce_masks(mlp, opt)
    x = torch.randn(32, 5, generator=gen)
    for s in (0.2, 0.4, 0.6):
        prune(mlp, s, criterion="neuron_l2")  # replaces layers.1.weight's mask twice
        for _ in range(5):
            opt.zero_grad()
            mlp(x).pow(2).mean().backward()
            opt.step()
        for layer in mlp.linears:
            assert int((layer.weight[~layer.weight_mask] != 0).sum()) == 0


def test_d3_gradient_masking_zeroes_pruned_gradients_before_clipping(mlp, gen):
    prune(mlp, 0.5)
    x = torch.randn(16, 5, generator=gen)
    mlp(x).pow(2).sum().backward()
    dense = mlp.layers[0].weight.grad
    assert dense is not None and int((dense[~mlp.layers[0].weight_mask] != 0).sum()) > 0  # the defect
    mlp.zero_grad()
    handles = mask_gradients(mlp)
    mlp(x).pow(2).sum().backward()
    for layer in mlp.linears:
        assert layer.weight.grad is not None
        assert torch.all(layer.weight.grad[~layer.weight_mask] == 0)
        assert int((layer.weight.grad[layer.weight_mask] != 0).sum()) > 0
    handles.remove()
    mlp.zero_grad()
    mlp(x).pow(2).sum().backward()
    assert int((mlp.layers[0].weight.grad[~mlp.layers[0].weight_mask] != 0).sum()) > 0


def test_d3_lbfgs_with_gradient_masking_keeps_pruned_weights_zero(gen):
    net = MLP([3, 8, 1], "tanh", generator=gen)
    prune(net, 0.5)
    opt = torch.optim.LBFGS(net.parameters(), lr=0.5, max_iter=10)
    enforce_masks(net, opt, gradients=True)
    x, y = torch.randn(20, 3, generator=gen), torch.randn(20, 1, generator=gen)

    def closure():
        opt.zero_grad()
        loss = (net(x) - y).pow(2).mean()
        loss.backward()
        for layer in net.linears:  # inside L-BFGS's inner loop: the gradient it sees
            assert torch.all(layer.weight.grad[~layer.weight_mask] == 0)
        return loss

    opt.step(closure)
    assert all(torch.all(layer.weight[~layer.weight_mask] == 0) for layer in net.linears)


def test_d4_a_parameter_shared_by_two_modules_is_enforced_through_either_owner(gen):
    a = nn.Linear(4, 4)
    b = nn.Linear(4, 4)
    b.weight = a.weight  # tied
    model = nn.Sequential(a, nn.Tanh(), b)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    enforce_masks(model, opt)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[0] = False
    set_mask(model, "0.weight", mask)  # masked through the first owner only
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4, generator=gen)).pow(2).sum().backward()
        opt.step()
    assert torch.all(a.weight[0] == 0)
