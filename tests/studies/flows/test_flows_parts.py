"""The flows study's parts: toy data, widths, pruning through the ODE wrappers, modes, Hessian."""

from __future__ import annotations

import copy

import pytest
import torch

from sciprune.core import (
    StageInfo, dense_kept_width, get_masks, id_prune_widths, prune, resolve_method, torch_generator, units_of,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import CNF, Autonomous, NODEClassifier, Solver
from sciprune.studies.flows.analysis import THRESHOLDS, hessian_stats, mode_statistics
from sciprune.studies.flows.data import CLASSIFIERS, DENSITIES, make_toy
from sciprune.nn.odefield import ConcatField, ConcatSquashField
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.data import Toy
from sciprune.studies.flows.methods import compact_field, field_mlp
from sciprune.studies.flows.protocol import NetSteps


def test_toy_sets_are_seeded_standardised_on_train_and_labelled() -> None:
    for name in [*CLASSIFIERS, *DENSITIES]:
        a, b = make_toy(name, 600, 300, seed=1), make_toy(name, 600, 300, seed=1)
        assert torch.equal(a.x_train, b.x_train) and a.x_test.shape == (300, 2)
        assert abs(float(a.x_train.mean())) < 1e-5 and abs(float(a.x_train.std()) - 1) < 1e-2
        assert not torch.equal(a.x_train[:300], a.x_test)
    assert make_toy("gaussians", 600, 60, 0).y_train.unique().tolist() == list(range(6))
    assert make_toy("gaussians_spiral", 600, 60, 0).y_train.unique().tolist() == list(range(10))
    with pytest.raises(InputError, match="expected one of moons, spirals, circles, gaussians"):
        make_toy("checkerboard", 10, 10, 0)


def field_weights(d: int, hidden: int, layers: int, *, time_column: bool = False) -> int:
    """The reference's weight count of an ``l{layers}_h{hidden}`` field on a ``d``-dimensional state."""
    t = 1 if time_column else 0
    return (t + d) * hidden + (layers - 2) * (t + hidden) * hidden + (t + hidden) * d


def kept_width(d: int, hidden: int, layers: int, sparsity: float, *, time_column: bool = False) -> int:
    """The largest uniform width whose weights are at most ``(1 - sparsity)`` of the dense ones (by search)."""
    budget = (1.0 - sparsity) * field_weights(d, hidden, layers, time_column=time_column)
    return max([k for k in range(1, hidden + 1) if field_weights(d, k, layers, time_column=time_column) <= budget + 1e-9],
               default=1)


def test_kept_width_is_the_largest_within_the_budget() -> None:
    assert field_weights(2, 64, 4) == 2 * 64 + 2 * 64 * 64 + 64 * 2
    for s in (0.2, 0.5, 0.9, 0.98):
        k = kept_width(2, 64, 4, s)
        assert field_weights(2, k, 4) <= (1 - s) * field_weights(2, 64, 4) < field_weights(2, k + 1, 4)
    assert kept_width(2, 8, 2, 0.999) == 1


def prune_field(method, model, sparsity, *, x_train, id_samples, id_times, generator):
    """One stage of flows' pruning of an unpruned ``model`` by ``method``, the way the cascade runs it
    (``run_net``'s ``Pruning``: the method with the ``weight_budget`` width; ID on ``NetSteps.id_samples``)."""
    cfg = FlowsConfig.model_validate({"prune": {"methods": [method], "id_samples": id_samples, "id_times": id_times}})
    data = Toy("test", x_train, x_train, x_train, x_train, 0.0, 1.0)
    m = resolve_method(method).with_width("weight_budget")
    if m.is_id:
        widths = dense_kept_width(model, sparsity, m.width)
        samples = NetSteps(cfg, None, data, 0, None, method).id_samples(model, generator, StageInfo(0, sparsity))
        return id_prune_widths(model, samples, widths)
    widths = dense_kept_width(model, sparsity, m.width) if m.units == "neurons" else None
    prune(model, sparsity, method=m, widths=widths, generator=generator)
    return model


def _cnf(hidden: int = 12) -> CNF:
    mlp = MLP([2, hidden, hidden, 2], "sigmoid", generator=torch_generator(0, "p"))
    return CNF(Autonomous(mlp), Solver("rk4", steps=4, adjoint=False), trace="exact")


def test_wt_ft_id_through_the_wrappers() -> None:
    x = torch.randn(200, 2, generator=torch_generator(0, "x"))
    g = torch_generator(0, "g")
    wt = prune_field("wt", _cnf(), 0.8, x_train=x, id_samples=50, id_times=3, generator=g)
    w = [m.weight for m in field_mlp(wt).linears]
    assert sum(int((t == 0).sum()) for t in w) == round(0.8 * sum(t.numel() for t in w))  # global: one ranking
    assert set(get_masks(wt)) == {f"field.net.layers.{i}.weight" for i in range(3)}

    ft = prune_field("ft", _cnf(), 0.8, x_train=x, id_samples=50, id_times=3, generator=g)
    k = kept_width(2, 12, 3, 0.8)
    mlp = field_mlp(ft)
    for i in (0, 1):  # whole neurons: incoming row, bias and outgoing column together
        alive = mlp.linears[i].weight.ne(0).any(1)
        assert int(alive.sum()) == k and not mlp.linears[i].bias[~alive].any()
        assert not mlp.linears[i + 1].weight[:, ~alive].any()
    assert mlp.linears[2].weight.ne(0).any(1).all()  # the output layer is never pruned
    small = compact_field(ft)
    with torch.no_grad():
        torch.testing.assert_close(small.log_prob(x, generator=None), ft.log_prob(x, generator=None))
    assert small.flops() == ft.flops()

    dense = _cnf()
    idp = prune_field("id", dense, 0.8, x_train=x, id_samples=50, id_times=3, generator=g)
    assert field_mlp(idp).sizes == [2, k, k, 2] and isinstance(idp, CNF) and idp.trace == "exact"
    with torch.no_grad():  # the ID field follows the dense one on the states it saw
        err = (idp.transform(x) - dense.transform(x)).abs().max()
    assert float(err) < 0.05


def test_classifier_wrapper_prunes_too() -> None:
    node = NODEClassifier(Autonomous(MLP([2, 16, 2], "tanh", generator=torch_generator(0, "n"))), Solver("rk4", steps=4))
    prune_field("ft", node, 0.5, x_train=torch.zeros(4, 2), id_samples=4, id_times=2,
                generator=torch_generator(0))
    assert int(field_mlp(node).linears[0].weight.ne(0).any(1).sum()) == kept_width(2, 16, 2, 0.5)


def test_mode_statistics_count_modes_and_good_samples() -> None:
    data = make_toy("gaussians", 6000, 60, 0)
    means = torch.stack([data.x_train[data.y_train == m].mean(0) for m in range(6)])
    share, captured = mode_statistics(means.repeat(10, 1), data)
    assert (share == 1.0).all() and (captured == 6).all()
    far = torch.full((100, 2), 50.0)
    share, captured = mode_statistics(torch.cat([means[:1].repeat(100, 1), far]), data)
    assert share[THRESHOLDS.index(2.0)] == 0.5 and captured[THRESHOLDS.index(2.0)] == 1


def test_hessian_stats_match_the_full_masked_hessian() -> None:
    mlp = MLP([2, 3, 2], "tanh", generator=torch_generator(0, "h"))
    cnf = CNF(Autonomous(mlp), Solver("rk4", steps=3, adjoint=False), trace="hutchinson")
    prune_field("wt", cnf, 0.3, x_train=torch.zeros(2, 2), id_samples=2, id_times=2, generator=torch_generator(0))
    x = torch.randn(64, 2, generator=torch_generator(0, "hx"))
    lam, tr = hessian_stats(cnf, x, steps=3, iters=40, probes=100, seed=0)
    # the full Hessian over the unpruned entries, one Hessian-vector product per parameter entry
    ref = CNF(cnf.field, Solver("rk4", steps=3, adjoint=False), trace="hutchinson")
    params = list(cnf.parameters())
    keep = torch.cat([p.ne(0).flatten() if n.endswith("weight") else torch.ones(p.numel(), dtype=torch.bool)
                      for n, p in cnf.named_parameters()])
    loss = ref.nll(x, generator=torch_generator(0, "hessian", "probe"))
    grads = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, create_graph=True)])
    rows = [torch.cat([h.flatten() for h in torch.autograd.grad(grads[i], params, retain_graph=True)]) for i in range(len(grads))]
    H = torch.stack(rows)[keep][:, keep].double()
    eig = torch.linalg.eigvalsh((H + H.T) / 2)
    top = eig[eig.abs().argmax()]
    # docs/flows.md: λ within 2e-7 relative (float32 products; 1.1e-7 measured), trace within 4 % of
    # sum |eig| (100 Rademacher probes; 2.4 % measured)
    assert lam == pytest.approx(float(top), rel=2e-7)
    assert tr == pytest.approx(float(eig.sum()), abs=0.04 * float(eig.abs().sum()))


@pytest.mark.parametrize("cls", [ConcatField, ConcatSquashField])
def test_ft_on_time_conditioned_fields_removes_whole_groups_and_compacts_exactly(cls) -> None:
    x = torch.randn(100, 2, generator=torch_generator(0, "x"))
    cnf = CNF(cls([2, 10, 10, 2], "softplus", generator=torch_generator(3, cls.__name__)), Solver("rk4", steps=4, adjoint=False), trace="exact")
    prune_field("ft", cnf, 0.7, x_train=x, id_samples=1, id_times=2, generator=torch_generator(0))
    k = kept_width(2, 10, 3, 0.7, time_column=cls is ConcatField)
    assert [g.name for g in units_of(cnf).groups if g.prunable] == ["field.layers.0", "field.layers.1"]
    masks = get_masks(cnf)
    if cls is ConcatSquashField:  # gate and hyper-bias rows go with the neuron
        for i in (0, 1):
            alive = masks[f"field.layers.{i}.linear.weight"].any(1)
            assert int(alive.sum()) == k
            assert torch.equal(masks[f"field.layers.{i}.gate.weight"][:, 0], alive)
            assert torch.equal(masks[f"field.layers.{i}.hyper_bias.weight"][:, 0], alive)
    small = compact_field(cnf)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in cnf.parameters())
    with torch.no_grad():
        torch.testing.assert_close(small.log_prob(x, generator=None), cnf.log_prob(x, generator=None), atol=1e-5, rtol=1e-5)


def test_ft_folds_the_pruned_neurons_constant_into_the_next_bias() -> None:
    # the reference's FT: a pruned neuron keeps its bias, emits sigmoid(b_j); here that constant is
    # folded into the next layer's bias, so the masked net equals "incoming rows zeroed, rest kept"
    x = torch.randn(100, 2, generator=torch_generator(0, "x"))
    cnf = _cnf()
    ref = copy.deepcopy(cnf)
    prune_field("ft", cnf, 0.6, x_train=x, id_samples=1, id_times=2, generator=torch_generator(0))
    for i in (0, 1):
        dead = ~field_mlp(cnf).linears[i].weight.ne(0).any(1)
        assert 0 < int(dead.sum()) < 12
        with torch.no_grad():
            field_mlp(ref).linears[i].weight[dead] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(cnf.transform(x), ref.transform(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(compact_field(cnf).log_prob(x, generator=None), cnf.log_prob(x, generator=None), atol=1e-5, rtol=1e-5)


def test_any_registered_criterion_is_a_method_with_the_weight_budget_width() -> None:
    """A structured criterion keeps FT's width (prune ratios are fractions of weights); an unstructured
    one removes exactly that fraction of each layer's weights (layerwise)."""
    x = torch.randn(50, 2, generator=torch_generator(0, "x"))
    rnd = prune_field("neuron_random", _cnf(), 0.8, x_train=x, id_samples=1, id_times=2, generator=torch_generator(0))
    k = kept_width(2, 12, 3, 0.8)
    assert [int(m.weight.ne(0).any(1).sum()) for m in field_mlp(rnd).linears[:2]] == [k, k]
    lamp = prune_field("lamp", _cnf(), 0.5, x_train=x, id_samples=1, id_times=2, generator=torch_generator(0))
    assert [int((m.weight == 0).sum()) for m in field_mlp(lamp).linears] == [round(0.5 * n) for n in (24, 144, 24)]
