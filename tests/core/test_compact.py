"""Compaction keeps the outputs and shrinks the layers; CSR export keeps the outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sciprune.core import CSRMLP, compact, compact_mlp, get_masks, set_mask, to_csr, torch_generator
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _prune_neuron(mlp: MLP, l: int, j: int) -> None:
    """Structured pruning of hidden neuron j of layer l: incoming row, bias, outgoing column."""
    w = torch.ones_like(mlp.layers[l].weight, dtype=torch.bool)
    w[j] = False
    b = torch.ones_like(mlp.layers[l].bias, dtype=torch.bool)
    b[j] = False
    c = torch.ones_like(mlp.layers[l + 1].weight, dtype=torch.bool)
    c[:, j] = False
    set_mask(mlp, f"layers.{l}.weight", w)
    set_mask(mlp, f"layers.{l}.bias", b)
    set_mask(mlp, f"layers.{l + 1}.weight", c)


def _pruned(act: str) -> MLP:
    """4-10-9-8-3 with: layer 0 neurons 1, 3 pruned; layer 1 neuron 0 with a zero outgoing column
    only; layer 2 neuron 5 with a zero incoming row and bias 0.7 (a constant to fold)."""
    mlp = MLP([4, 10, 9, 8, 3], act, generator=torch_generator(0, "compact", act))
    _prune_neuron(mlp, 0, 1)
    _prune_neuron(mlp, 0, 3)
    with torch.no_grad():
        mlp.layers[2].weight[:, 0] = 0.0
        mlp.layers[2].weight[5] = 0.0
        mlp.layers[2].bias[5] = 0.7
    return mlp


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_compaction_keeps_outputs(act: str) -> None:
    mlp = _pruned(act)
    small = compact(mlp)
    assert small.sizes == [4, 8, 8, 7, 3]
    x = torch.randn(64, 4, generator=torch_generator(0, "x"))
    assert torch.allclose(small(x), mlp(x), rtol=0, atol=1e-6)
    assert small.layers[0].weight.dtype == torch.float32


def test_folding_is_needed() -> None:
    # Dropping the zero-row neuron without folding its constant sigmoid(0.7) would change outputs.
    mlp = _pruned("sigmoid")
    small = compact(mlp)
    with torch.no_grad():
        mlp.layers[2].bias[5] = -100.0  # now the neuron outputs ~0
    x = torch.randn(8, 4, generator=torch_generator(1, "x"))
    assert (small(x) - mlp(x)).abs().max() > 1e-2


def test_removals_cascade() -> None:
    mlp = MLP([3, 6, 5, 2], "tanh", generator=torch_generator(2, "cascade"))
    with torch.no_grad():
        mlp.layers[2].weight[:, 1:3] = 0.0  # layer-1 neurons 1, 2 feed nothing ...
        mlp.layers[1].weight[:, 4] = 0.0
        mlp.layers[1].weight[1:3, 4] = 1.0  # ... and layer-0 neuron 4 feeds only them
    small = compact(mlp)
    assert small.sizes == [3, 5, 3, 2]
    x = torch.randn(16, 3, generator=torch_generator(2, "x"))
    assert torch.allclose(small(x), mlp(x), rtol=0, atol=1e-6)


def test_a_layer_is_never_emptied() -> None:
    mlp = MLP([2, 4, 3, 1], "sigmoid", generator=torch_generator(3, "empty"))
    with torch.no_grad():
        mlp.layers[1].weight.zero_()  # every neuron of hidden layer 1 is a constant sigmoid(b)
    small = compact(mlp)
    assert small.sizes == [2, 1, 1, 1]
    x = torch.randn(8, 2, generator=torch_generator(3, "x"))
    assert torch.allclose(small(x), mlp(x), rtol=0, atol=1e-6)
    assert not get_masks(small)["layers.1.bias"].any()


def test_masks_are_carried_over() -> None:
    mlp = _pruned("relu")
    w1 = torch.ones(9, 10, dtype=torch.bool)
    w1[4, 0] = w1[7, 9] = False  # unstructured holes in surviving entries
    set_mask(mlp, "layers.1.weight", w1)
    small = compact(mlp)
    masks = get_masks(small)
    kept0 = [0, 2, 4, 5, 6, 7, 8, 9]
    kept1 = [1, 2, 3, 4, 5, 6, 7, 8]
    expected = get_masks(mlp)["layers.1.weight"][kept1][:, kept0]
    assert torch.equal(masks["layers.1.weight"], expected)
    assert int((~masks["layers.1.weight"]).sum()) == 2
    assert masks["layers.0.bias"].all() and masks["layers.0.weight"].shape == (8, 4)


def test_csr_matches_masked_dense() -> None:
    mlp = MLP([5, 32, 32, 2], "tanh", generator=torch_generator(4, "csr"))
    gen = torch_generator(4, "mask")
    for l in range(3):
        w = mlp.layers[l].weight
        set_mask(mlp, f"layers.{l}.weight", torch.rand(w.shape, generator=gen) > 0.9)
    weights = to_csr(mlp)
    assert [int(w.values().numel()) for w in weights] == [int((l.weight != 0).sum()) for l in mlp.layers]
    sparse = CSRMLP(mlp)
    x = torch.randn(3, 7, 5, generator=torch_generator(4, "x"))
    assert torch.allclose(sparse(x), mlp(x), rtol=0, atol=1e-6)
    clone = copy.deepcopy(sparse)
    assert torch.allclose(clone(x[0]), mlp(x[0]), rtol=0, atol=1e-6)


def test_bad_input() -> None:
    with pytest.raises(InputError, match=r"Linear cannot be compacted: it has no compact_units\(keep\) method"):
        compact(nn.Linear(2, 2))
    with pytest.raises(InputError, match="compact needs a sciprune MLP; got Linear"):
        compact_mlp(nn.Linear(2, 2))  # type: ignore[arg-type]


def test_kept_indices_and_the_generic_path_agree_with_the_mlp_path(mlp, gen) -> None:
    from sciprune.core import compact_with_indices
    from sciprune.core import prune
    from sciprune.core import compact_units

    prune(mlp, 0.5, criterion="neuron_l2")
    small, keep = compact_with_indices(mlp)
    generic, keep2 = compact_units(mlp)
    assert small.sizes == generic.sizes == [5, 6, 5, 3]
    assert all(torch.equal(keep[k], keep2[k]) for k in keep)
    assert torch.equal(keep["layers.0"][0], mlp.layers[0].bias_mask.nonzero().flatten())
    x = torch.randn(20, 5, generator=gen)
    torch.testing.assert_close(generic(x), small(x), rtol=0, atol=1e-6)
    # weight rewinding through compaction: the kept rows of the dense weights
    rows = keep["layers.0"][0]
    assert torch.equal(small.layers[0].weight, mlp.layers[0].weight[rows])
