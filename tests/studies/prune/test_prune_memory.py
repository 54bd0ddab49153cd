"""The prune study's measured memory terms: intermediate values counted by hand, per sample and fixed."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciprune.core import Traced
from sciprune.studies.prune.memory import activations
from sciprune.studies.prune.samples import Samples


def _samples(*inputs: Tensor, shared: tuple[bool, ...] = (False,)) -> Samples:
    n = next(x.shape[0] for x, s in zip(inputs, shared) if not s)
    return Samples(tuple(f"x{i}" for i in range(len(inputs))), inputs, shared, torch.zeros(n, 1), "args")


def test_an_mlp_holds_33_values_a_sample_the_largest_8():
    # 2 -> 8 -> tanh -> 8 -> tanh -> 1: 8 + 8 + 8 + 8 + 1 values per sample, nothing fixed
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)).train()
    samples = _samples(torch.randn(10, 2))
    for model in (Traced(net, samples.head(4).args), net):  # the traced graph, and hooks on the leaf modules
        a = activations(model, samples)
        assert (a.total_fixed, a.total_per_sample, a.largest_fixed, a.largest_per_sample) == (0, 33, 0, 8)
        assert a.total(64) == 33 * 64 and all(m.training for m in model.modules())  # modes restored


class Cartesian(nn.Module):
    """G[b, n] = branch(u_b) · trunk(y_n): the trunk sees the 5 shared points whatever the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.branch, self.trunk = nn.Linear(3, 4), nn.Linear(2, 4)

    def forward(self, u: Tensor, y: Tensor) -> Tensor:
        return torch.einsum("bi,ni->bn", self.branch(u), self.trunk(y))


def test_values_from_shared_inputs_are_fixed():
    # branch 4 and output 5 per sample; trunk 4 x 5 points = 20 whatever the batch (also the largest, to 4 samples)
    samples = _samples(torch.randn(10, 3), torch.randn(5, 2), shared=(False, True))
    a = activations(Traced(Cartesian(), samples.head(4).args), samples)
    assert (a.total_fixed, a.total_per_sample, a.largest_fixed, a.largest_per_sample) == (20, 9, 20, 0)
