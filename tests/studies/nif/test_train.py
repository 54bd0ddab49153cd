"""Training pieces: weighted MSE, piecewise learning rates, L-BFGS that respects masks."""

from __future__ import annotations

import pytest
import torch

from sciprune.core import prune, torch_generator
from sciprune.nn.nif import NIFMultiScale, theta_context
from sciprune.studies.nif.train import lbfgs, optimizer_factory, piecewise, weighted_mse, with_weights


def test_weighted_mse_is_keras_sample_weighted_mean():
    pred = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    u = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    w = torch.tensor([2.0, 0.5])
    expect = (2.0 * (1 + 4) / 2 + 0.5 * (1 + 1) / 2) / 2
    assert float(weighted_mse(pred, with_weights(u, w))) == pytest.approx(expect)
    assert float(weighted_mse(pred, with_weights(u, None))) == pytest.approx(((1 + 4) / 2 + 1) / 2)


def test_piecewise_learning_rate():
    f = piecewise(1e-3, {10: 5e-4, 20: 1e-4})
    assert [f(e) * 1e-3 for e in (0, 9, 10, 19, 20, 99)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 1e-4, 1e-4])
    opt, sched = optimizer_factory(1e-3, {2: 1e-4})([torch.nn.Parameter(torch.zeros(1))])
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4]) and opt.defaults["eps"] == 1e-7


def test_lbfgs_lowers_the_loss_and_keeps_pruned_nodes_zero():
    shape = {"input_dim": 1, "output_dim": 1, "units": 8, "nlayers": 1, "omega_0": 30.0, "weight_init_factor": 0.01}
    m = NIFMultiScale(shape, {"input_dim": 1, "latent_dim": 2, "units": 8, "nlayers": 1}, generator=torch_generator(0, "lb"))
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(0, 3, (200, 1), generator=g).float(), torch.rand(200, 1, generator=g) * 2 - 1], 1)
    y = with_weights(torch.sin(2 * x[:, 1:]) * x[:, :1], None)
    prune(m, 0.5, criterion="hyper_node_rms", context=theta_context(m, x[:, :1]))
    masked = ~m.pnet.last.weight_mask
    with torch.no_grad():
        before = float(weighted_mse(m(x), y))
    after = lbfgs(m, x, y, 30)
    assert after < before
    assert bool((m.pnet.last.weight.detach()[masked] == 0).all())


def test_best_epoch_restores_the_lowest_training_loss_weights():
    """A retraining that spikes on its last epoch ends at its best epoch instead (prune.keep_best)."""
    import torch
    from torch import nn

    from sciprune.studies.nif.protocol import BestEpoch
    from sciprune.studies.nif.train import with_weights

    x = torch.linspace(-1, 1, 32)[:, None]
    u = 2 * x
    model = nn.Linear(1, 1)
    values = iter([1.0, 2.0, 1.5, 9.0])  # the slope after each epoch: best is 2.0 (exact), the last spikes
    model.weight.data.fill_(0.0)

    def tfn(m, opt, g):
        with torch.no_grad():
            m.weight.fill_(next(values))
            m.bias.zero_()
        return 0.0

    keeper = BestEpoch(tfn, x, with_weights(u, None))
    for _ in range(4):
        keeper(model, None, torch.Generator())
    assert model.weight.item() == 9.0
    keeper.restore(model)
    assert model.weight.item() == 2.0 and keeper.state is None
    keeper.restore(model)  # nothing kept: a no-op
    assert model.weight.item() == 2.0
    model.weight.data.fill_(2.0)  # a stage that only gets worse keeps its starting weights
    values = iter([5.0, 7.0])
    for _ in range(2):
        keeper(model, None, torch.Generator())
    keeper.restore(model)
    assert model.weight.item() == 2.0
