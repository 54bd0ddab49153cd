import pytest
import torch

from sciprune.core import available_criteria, get_criterion, get_masks, layer_reports, prune
from sciprune.core._criteria import neuron_l2
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _net(w0, w1):
    w0, w1 = torch.tensor(w0), torch.tensor(w1)
    return MLP.from_layers([w0, w1], [torch.zeros(w0.shape[0]), torch.zeros(w1.shape[0])], ["relu", "identity"])


def test_magnitude_hand_computed():
    net = _net([[1.0, -5.0], [3.0, 0.5]], [[2.0, -0.1]])
    prune(net, 0.5, layers=["layers.0"])
    assert get_masks(net)["layers.0.weight"].tolist() == [[False, True], [True, False]]


def test_ties_are_broken_by_position():
    net = _net([[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0]])
    prune(net, 0.5, layers=["layers.0"])
    assert get_masks(net)["layers.0.weight"].tolist() == [[False, False], [True, True]]


def test_global_allocation_uses_one_threshold():
    net = _net([[0.1, 0.2], [0.3, 0.4]], [[5.0, 6.0]])
    reports = prune(net, 0.5, allocation="global")  # 6 weights: the 3 smallest all sit in layer 0
    assert [r.weights_pruned for r in reports] == [3, 0]
    layerwise = _net([[0.1, 0.2], [0.3, 0.4]], [[5.0, 6.0]])
    assert [r.weights_pruned for r in prune(layerwise, 0.5)] == [2, 1]


def test_neuron_l2_scores_and_masks_row_bias_and_outgoing_column():
    w0 = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    w1 = torch.tensor([[1.0, 1.0, 1.0]])
    assert neuron_l2(w0).tolist() == [5.0, 1.0, 2.0]
    assert neuron_l2(w0, out_weight=w1).tolist() == pytest.approx([26**0.5, 2**0.5, 5**0.5])
    net = _net(w0.tolist(), w1.tolist())
    prune(net, 0.34, criterion="neuron_l2")  # round(0.34 * 3) = 1 neuron: the second
    masks = get_masks(net)
    assert masks["layers.0.weight"].tolist() == [[True, True], [False, False], [True, True]]
    assert masks["layers.0.bias"].tolist() == [True, False, True]
    assert masks["layers.1.weight"].tolist() == [[True, False, True]]


def test_structured_excludes_output_layer_by_default(mlp):
    reports = prune(mlp, 0.5, criterion="neuron_l1")
    assert [r.layer for r in reports] == ["layers.0", "layers.1"]
    assert [r.neurons_pruned for r in reports] == [6, 5]


def test_sparsity_is_cumulative_and_monotone(mlp):
    prune(mlp, 0.5)
    first = {k: v.clone() for k, v in get_masks(mlp).items()}
    prune(mlp, 0.25)  # lower target: nothing comes back
    assert all(torch.equal(first[k], v) for k, v in get_masks(mlp).items())
    prune(mlp, 0.8)
    for k, v in get_masks(mlp).items():
        assert not torch.any(v & ~first[k])  # a subset of what was kept
    assert [r.weights_pruned for r in layer_reports(mlp)] == [48, 96, 24]


def test_random_is_seeded(mlp):
    a = MLP(mlp.sizes, mlp.activations, generator=None)
    a.load_state_dict(mlp.state_dict())
    prune(mlp, 0.5, criterion="random", generator=torch.Generator().manual_seed(3))
    prune(a, 0.5, criterion="random", generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(get_masks(a)[k], v) for k, v in get_masks(mlp).items())
    with pytest.raises(InputError, match="needs a generator"):
        prune(MLP([2, 3, 1], generator=None), 0.5, criterion="random")


def test_bad_arguments_name_value_and_expectation(mlp):
    with pytest.raises(InputError, match=r"unknown pruning criterion 'l3'; expected one of .*magnitude"):
        prune(mlp, 0.5, criterion="l3")
    with pytest.raises(InputError, match=r"sparsity must be a number in \[0, 1\); got 1.0"):
        prune(mlp, 1.0)
    with pytest.raises(InputError, match=r"sparsity .* got -0.1"):
        prune(mlp, -0.1)
    with pytest.raises(InputError, match="unknown allocation 'local'"):
        prune(mlp, 0.5, allocation="local")
    with pytest.raises(InputError, match=r"unknown layer\(s\) \['fc1'\]"):
        prune(mlp, 0.5, layers=["fc1"])


def test_registry_lists_criteria():
    assert {"magnitude", "random", "neuron_l1", "neuron_l2", "neuron_random"} <= set(available_criteria())
    assert get_criterion("neuron_l2").structured
