"""The methods registry and the kept-width rules, against hand-computed counts and the closed forms
the studies documented (classify's per-layer rule, Sparse flows' weight budget)."""

import pytest
import torch

from sciprune.core import (
    Criterion, Method, available_methods, dense_kept_width, get_masks, kept_weights, kept_width, layer_reports, prune,
    register_criterion, resolve_method, torch_generator, units_of,
)
from sciprune.core._criteria import _CRITERIA
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import Autonomous
from sciprune.nn.odefield import ConcatField, ConcatSquashField
from sciprune.nn.stacked import StackedMLP


def _mlp(sizes):
    return MLP(sizes, "tanh", generator=torch_generator(0, "m"))


def test_per_layer_rule_by_hand():
    # 10 - round(3.5) = 6 (half to even: round(3.5) = 4), 7 - round(2.45) = 5, 3 - round(1.05) = 2
    assert list(dense_kept_width(_mlp([4, 10, 7, 3, 2]), 0.35).values()) == [6, 5, 2]
    assert list(dense_kept_width(_mlp([4, 10, 2]), 0.99).values()) == [1]  # at least one neuron
    assert list(dense_kept_width(_mlp([4, 10, 2]), 0.0).values()) == [10]


def _budget_width(d, hidden, layers, s, t):
    """Sparse flows' closed form: the largest k with w(k) <= (1 - s) w(H)."""
    def w(k):
        return (t + d) * k + (layers - 2) * (t + k) * k + (t + k) * d
    return max([k for k in range(1, hidden + 1) if w(k) <= (1 - s) * w(hidden) + 1e-9], default=1)


@pytest.mark.parametrize("kind", ["mlp", "concat", "concatsquash"])
@pytest.mark.parametrize("layers", [2, 3, 4])
def test_weight_budget_rule_is_the_closed_form(kind, layers):
    d, hidden = 2, 12
    sizes = [d] + [hidden] * (layers - 1) + [d]
    field = {"mlp": lambda: Autonomous(_mlp(sizes)), "concat": lambda: ConcatField(sizes, "tanh", generator=torch.Generator().manual_seed(0)),
             "concatsquash": lambda: ConcatSquashField(sizes, "tanh", generator=torch.Generator().manual_seed(0))}[kind]()
    t = 1 if kind == "concat" else 0
    for s in [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 0.95, 0.99]:
        widths = dense_kept_width(field, s, "weight_budget")
        assert set(widths.values()) == {_budget_width(d, hidden, layers, s, t)}, s


def test_kept_weights_counts_every_member_and_the_cut_rows_and_columns():
    ens = StackedMLP(3, [4, 8, 5, 2], "tanh", generator=torch.Generator().manual_seed(0))
    shapes = {n: tuple(p.shape) for n, p in ens.named_parameters()}
    u = units_of(ens)
    assert kept_weights(u, shapes, {}) == 3 * (4 * 8 + 8 * 5 + 5 * 2)
    names = [g.name for g in u.groups if g.prunable]
    assert kept_weights(u, shapes, {names[0]: 6, names[1]: 1}) == 3 * (4 * 6 + 6 * 1 + 1 * 2)
    with pytest.raises(InputError, match="cannot keep 9"):
        kept_weights(u, shapes, {names[0]: 9})


def test_rules_refuse_bad_input():
    u = units_of(_mlp([4, 8, 2]))
    with pytest.raises(InputError, match=r"sparsity must lie in \[0, 1\); got 1.0"):
        kept_width(u, 1.0)
    with pytest.raises(InputError, match="unknown kept-width rule 'half'"):
        kept_width(u, 0.5, "half")
    with pytest.raises(InputError, match="shapes="):
        kept_width(u, 0.5, "weight_budget")


def test_registered_methods_and_criteria_resolve():
    assert resolve_method("unit") == Method("unit", "neuron_l2", description=resolve_method("unit").description)
    assert resolve_method("id").is_id and resolve_method("id").units == "neurons"
    assert resolve_method("wt").allocation == "global" and resolve_method("wt").units == "weights"
    ft = resolve_method("ft")
    assert (ft.criterion, ft.width, ft.fold_constants) == ("neuron_l1", "weight_budget", True)
    lamp = resolve_method("lamp")  # a criterion is a method: layerwise, per_layer
    assert (lamp.criterion, lamp.allocation, lamp.units) == ("lamp", "layerwise", "weights")
    assert resolve_method("neuron_random").units == "neurons"
    assert {"weight", "unit", "id", "wt", "ft", "lamp", "magnitude"} <= set(available_methods())
    with pytest.raises(InputError, match=r"unknown pruning method 'nope'; expected a method or criterion: .*lamp"):
        resolve_method("nope")
    with pytest.raises(InputError, match="unknown allocation 'everywhere'"):
        Method("x", "magnitude", allocation="everywhere")


def test_a_criterion_registered_with_one_line_is_a_method():
    name = "test_methods_abs_cubed"
    register_criterion(Criterion(name, False, lambda w, **_: w.detach().abs() ** 3, "|w|^3"))
    try:
        assert name in available_methods() and resolve_method(name).units == "weights"
    finally:
        del _CRITERIA[name]


def _masks_of(model):
    return {k: v.clone() for k, v in get_masks(model).items()}


@pytest.mark.parametrize("name, parts", [
    ("wt", {"criterion": "magnitude", "allocation": "global"}),
    ("weight", {"criterion": "magnitude"}),
    ("unit", {"criterion": "neuron_l2"}),
])
def test_prune_by_a_method_is_prune_by_its_parts(name, parts):
    a, b = _mlp([3, 9, 8, 2]), _mlp([3, 9, 8, 2])
    prune(a, 0.6, method=name)
    prune(b, 0.6, **parts)
    ma, mb = _masks_of(a), _masks_of(b)
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


def test_a_width_method_keeps_exactly_the_widths_and_folds_constants():
    model = _mlp([3, 9, 8, 2])
    x = torch.randn(5, 3, generator=torch_generator(1, "x"))
    before = model(x)
    prune(model, 0.0, method="ft", widths={"layers.0": 4, "layers.1": 3})
    alive = {r.layer: r.neurons - r.neurons_pruned for r in layer_reports(model) if r.layer != "layers.2"}
    assert alive == {"layers.0": 4, "layers.1": 3}
    # by hand: the removed neurons' constants tanh(b) went into the next biases, so the network equals
    # the dense one with their incoming weights zeroed
    dead = {g: ~get_masks(model)[f"{g}.weight"].any(dim=1) for g in ("layers.0", "layers.1")}
    ref = _mlp([3, 9, 8, 2])
    with torch.no_grad():
        for g, d in dead.items():
            ref.get_parameter(f"{g}.weight")[d] = 0.0
    assert not torch.allclose(model(x), before)
    torch.testing.assert_close(model(x), ref(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"method": "wt", "criterion": "magnitude"}, r"method 'wt' sets the criterion.*got criterion too"),
    ({"method": "ft", "allocation": "global"}, r"got allocation too"),
    ({"method": "ft"}, r"method 'ft' keeps weight_budget widths: pass widths="),
    ({"method": "unit", "widths": {"layers.0": 2}}, r"method 'unit' removes round\(sparsity \* n\) neurons per layer: drop widths="),
    ({"method": "wt", "widths": {"layers.0": 2}}, r"method 'wt' removes weights: drop widths="),
    ({"widths": {"layers.0": 2}}, r"widths= are a method's kept widths: pass method="),
    ({"method": "id"}, r"method 'id' is ID pruning: it needs samples"),
    ({"method": "ft", "widths": {"layers.9": 2}}, r"widths name unknown group\(s\) \['layers.9'\]"),
    ({"method": "no_such"}, r"unknown pruning method 'no_such'"),
])
def test_prune_by_a_method_refuses_what_it_cannot_honour(kwargs, pattern):
    model = _mlp([3, 9, 8, 2])
    with pytest.raises(InputError, match=pattern):
        prune(model, 0.5, **kwargs)
    assert not get_masks(model)  # nothing was masked
