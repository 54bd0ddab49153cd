"""Counting parameters, non-zeros, FLOPs and sparsity, against hand-computed numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciprune.core import (
    CSRMLP, ParamCount, compact, count_params, layer_sparsity, mlp_flops, set_mask, torch_generator,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _hand_mlp() -> MLP:
    """3-4-2: W0 has 5 zeros of 12, b0 one zero of 4, W1 2 zeros of 8, b1 none."""
    mlp = MLP([3, 4, 2], "relu", generator=None)
    with torch.no_grad():
        mlp.layers[0].weight.copy_(torch.tensor([[1.0, 0, 2], [0, 0, 3], [4, 5, 0], [6, 0, 7]]))
        mlp.layers[0].bias.copy_(torch.tensor([1.0, 0, 2, 3]))
        mlp.layers[1].weight.copy_(torch.tensor([[1.0, 2, 0, 3], [4, 0, 5, 6]]))
        mlp.layers[1].bias.copy_(torch.tensor([1.0, -1]))
    return mlp


def test_count_params_by_hand() -> None:
    count = count_params(_hand_mlp())
    assert count == ParamCount(total=26, nonzero=18)
    total, nonzero = count
    assert (total, nonzero) == (26, 18)
    assert count.sparsity == pytest.approx(8 / 26)
    assert count_params(nn.Sequential()).sparsity == 0.0


def test_mlp_flops_by_hand() -> None:
    # layer 0: 2 * 7 non-zeros + 4 bias adds; layer 1: 2 * 6 + 2.
    assert mlp_flops(_hand_mlp()) == 18 + 14
    dense = MLP([2, 64, 64, 1], "tanh", generator=torch_generator(0, "dense"))
    assert mlp_flops(dense) == 2 * (2 * 64 + 64 * 64 + 64) + 64 + 64 + 1


def test_layer_sparsity_by_hand() -> None:
    assert layer_sparsity(_hand_mlp()) == {"layers.0.weight": 5 / 12, "layers.1.weight": 2 / 8}


def test_masked_compacted_and_csr_counts() -> None:
    mlp = MLP([2, 8, 8, 1], "relu", generator=torch_generator(1, "counts"))
    dense_flops = mlp_flops(mlp)
    rows = torch.ones(8, 2, dtype=torch.bool)
    rows[:4] = False  # structured: neurons 0-3 of hidden layer 0 lose row, bias and column
    set_mask(mlp, "layers.0.weight", rows)
    set_mask(mlp, "layers.0.bias", rows[:, 0])
    cols = torch.ones(8, 8, dtype=torch.bool)
    cols[:, :4] = False
    set_mask(mlp, "layers.1.weight", cols)
    # masked: total unchanged; 8 + 4 + 32 weights/biases gone; FLOPs count non-zeros only
    assert count_params(mlp) == ParamCount(total=24 + 72 + 9, nonzero=105 - 44)
    assert mlp_flops(mlp) == dense_flops - 2 * (8 + 32)
    small = compact(mlp)
    assert count_params(small) == ParamCount(total=12 + 40 + 9, nonzero=61)
    assert mlp_flops(small) == 2 * (8 + 32 + 8) + 4 + 8 + 1 == mlp_flops(mlp) - 4
    assert mlp_flops(CSRMLP(mlp)) == mlp_flops(mlp)


def test_mlp_flops_rejects_other_modules() -> None:
    with pytest.raises(InputError, match="mlp_flops needs a sciprune MLP or CSRMLP; got Linear"):
        mlp_flops(nn.Linear(2, 3))


def test_d6_network_stats_without_weight_units_does_not_divide_by_zero() -> None:
    from sciprune.core import network_stats
    from sciprune.core import PruningUnits

    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

        def pruning_units(self) -> PruningUnits:
            return PruningUnits(())

    stats = network_stats(Bare(), 0)
    assert stats["achieved_sparsity"] is None and stats["params_total"] == 3 and stats["neurons"] == ""


def test_network_stats_per_member_and_flops_with_nfe() -> None:
    from sciprune.core import dense_weights, flops, network_stats
    from sciprune.core import prune
    from sciprune.nn.stacked import StackedMLP

    ens = StackedMLP(2, [3, 4, 1], "relu", generator=torch_generator(0, "init"))
    assert dense_weights(ens) == 2 * (12 + 4)
    prune(ens, [0.0, 0.5], criterion="neuron_l1")
    one = network_stats(ens, 16, member=1)
    assert one["neurons"] == "2" and one["params_total"] == 12 + 4 + 4 + 1
    assert one["params_nnz"] == 6 + 2 + 2 + 1 and one["achieved_sparsity"] == 1 - 8 / 16
    assert one["flops"] == 2 * 6 + 2 + 2 * 2 + 1
    assert network_stats(ens, 16, member=0)["neurons"] == "4"
    assert flops(ens) == 37 + 19 and flops(ens, nfe=10) == 560
