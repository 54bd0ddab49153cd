"""Allocation over declared units: min_keep (D5), overrides, LAMP, per-layer normalisation, fallback."""

import pytest
import torch
from torch import nn

from sciprune.core._criteria import lamp
from sciprune.core import get_masks, layer_reports, prune, torch_generator
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _scaled(gen):
    net = MLP([6, 16, 16, 2], "relu", generator=gen)
    with torch.no_grad():
        net.layers[1].weight.mul_(1e-3)  # a layer a global ranking would empty
    return net


def test_d5_global_magnitude_never_empties_a_layer(gen):
    net = _scaled(gen)
    reports = prune(net, 0.9, allocation="global")
    assert all(r.weights_pruned < r.weights for r in reports)
    assert reports[1].weights_pruned == reports[1].weights - 1  # only its min_keep survivor
    total = sum(r.weights for r in reports)
    assert sum(r.weights_pruned for r in reports) == round(0.9 * total)


def test_d5_global_neuron_pruning_keeps_the_best_neuron_and_counts_right(gen):
    net = _scaled(gen)
    scores = net.layers[1].weight.detach().norm(dim=1)
    reports = prune(net, 0.9, criterion="neuron_l1", allocation="global")
    assert [r.neurons_pruned for r in reports] == [round(0.9 * 32) - 15, 15]
    kept = get_masks(net)["layers.1.bias"]
    assert int(kept.sum()) == 1 and int(kept.nonzero()) == int(scores.argmax())  # by score, not position
    assert [r.neurons_pruned for r in layer_reports(net)][:2] == [round(0.9 * 32) - 15, 15]


def test_min_keep_per_layer_and_zero(gen):
    net = MLP([4, 5, 3], "tanh", generator=gen)
    reports = prune(net, 0.99, min_keep={"layers.0": 3, "layers.1": 0})
    assert [r.weights - r.weights_pruned for r in reports] == [3, 0]
    with pytest.raises(InputError, match="min_keep must be >= 0"):
        prune(MLP([4, 5, 3], "tanh", generator=gen), 0.5, min_keep=-1)


def test_overrides_prune_a_layer_to_its_own_fraction(gen):
    net = MLP([10, 20, 20, 4], "tanh", generator=gen)
    reports = prune(net, 0.5, allocation="global", overrides={"layers.2": 0.0})
    assert reports[2].weights_pruned == 0
    assert reports[0].weights_pruned + reports[1].weights_pruned == round(0.5 * 600)
    with pytest.raises(InputError, match=r"overrides name unknown layer\(s\) \['fc'\]"):
        prune(net, 0.5, overrides={"fc": 0.1})


def test_lamp_scores_by_hand_and_global_lamp_keeps_every_layer(gen):
    w = torch.tensor([[1.0, -3.0], [2.0, 0.0]])
    # sorted w^2: 0, 1, 4, 9 -> 0/14, 1/14, 4/13, 9/9
    assert lamp(w).flatten().tolist() == pytest.approx([1 / 14, 1.0, 4 / 13, 0.0])
    net = _scaled(gen)
    reports = prune(net, 0.9, criterion="lamp", allocation="global", min_keep=0)
    assert all(r.weights_pruned < r.weights for r in reports)


def test_layer_normalisation_for_global_structured_pruning(gen):
    net = _scaled(gen)
    plain = prune(MLP.from_layers([l.weight for l in net.linears], [l.bias for l in net.linears], net.activations),
                  0.5, criterion="neuron_l2", allocation="global")
    normed = prune(net, 0.5, criterion="neuron_l2", allocation="global", normalize="layer")
    assert [r.neurons_pruned for r in plain] == [1, 15]  # the small layer loses all but one
    assert 3 <= normed[1].neurons_pruned <= 13  # scales no longer decide
    assert sum(r.neurons_pruned for r in normed) == 16


def test_plain_linear_chain_is_pruned_through_its_traced_units(gen):
    from sciprune.core import Traced

    with torch.random.fork_rng(devices=[]):
        seq = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))
    net = Traced(seq, torch.zeros(1, 3))
    prune(net, 0.5, criterion="neuron_l2")
    masks = get_masks(net)
    assert int((~masks["module.0.bias"]).sum()) == 3
    assert torch.equal(masks["module.2.weight"].all(0), masks["module.0.bias"])


def test_a_model_without_units_is_refused_with_the_way_to_trace_it():
    with pytest.raises(InputError, match=r"declares no pruning units; wrap it as Traced\(model, example_inputs\)"):
        prune(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)), 0.5, criterion="neuron_l2")


def test_a_data_aware_criterion_is_one_function_and_one_registry_entry(gen):
    from sciprune.core import Criterion, register_criterion
    from sciprune.core._criteria import _CRITERIA

    def activation_rms(weight, *, out_weight=None, generator=None, context=None, group=None):
        # mean square activation of each neuron of the scored layer over the context's inputs
        net, x = context
        h = x
        for layer in net.linears:
            h = torch.tanh(layer(h))
            if layer.out_features == weight.shape[0] and group.name == f"layers.{net.linears.index(layer)}":
                return h.detach().pow(2).mean(dim=0)
        raise AssertionError("layer not found")

    register_criterion(Criterion("test_act_rms", True, activation_rms, "test", wants_context=True))
    try:
        net = MLP([3, 8, 2], "tanh", generator=gen)
        x = torch.randn(64, 3, generator=gen)
        expected = torch.tanh(net.layers[0](x)).detach().pow(2).mean(0)
        prune(net, 0.25, criterion="test_act_rms", context=(net, x))
        dead = ~get_masks(net)["layers.0.bias"]
        assert torch.equal(dead.nonzero().flatten(), torch.sort(expected).indices[:2].sort().values)
    finally:
        del _CRITERIA["test_act_rms"]


def test_max_ratio_caps_a_layer_under_global_allocation(gen):
    net = _scaled(gen)
    reports = prune(net, 0.4, allocation="global", max_ratio={"layers.1": 0.25})
    assert reports[1].weights_pruned == 64  # a quarter of 256, the cap
    assert sum(r.weights_pruned for r in reports) == round(0.4 * sum(r.weights for r in reports))
    with pytest.raises(InputError, match=r"max_ratio must be in \[0, 1\]; got 1.5"):
        prune(net, 0.5, max_ratio=1.5)


def test_an_empty_layer_list_is_one_clear_error(gen):
    with pytest.raises(InputError, match=r"nothing to prune: layers=\[\] names no layer"):
        prune(MLP([3, 4, 2], "tanh", generator=gen), 0.5, layers=[])
