"""The hypernetwork layout: positions by hand, and prune -> compact on a reference hypernetwork."""

import pytest
import torch
from torch import nn

from sciprune.core import (
    PruningUnits, compact_state, compact_units, get_masks, load_state_dict, prune, torch_generator,
)
from sciprune.errors import InputError
from sciprune.nn.hypernet import ShapeNetLayout


class RefHyperNet(nn.Module):
    """p -> z = tanh(A p + a) -> theta = last(z) -> ShapeNet(x; theta) (tanh hidden, linear output)."""

    def __init__(self, layout: ShapeNetLayout, d_p: int, r: int, seed: int | None = 0) -> None:
        super().__init__()
        self.layout, self.d_p, self.r = layout, d_p, r
        with torch.random.fork_rng(devices=[]):
            self.first = nn.Linear(d_p, r, dtype=torch.float64)
            self.last = nn.Linear(r, layout.size, dtype=torch.float64)
        if seed is not None:
            gen = torch_generator(seed, "ref")
            with torch.no_grad():
                for p in self.parameters():
                    p.normal_(0.0, 0.5, generator=gen)

    def forward(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ws, bs = self.layout.unpack(self.last(torch.tanh(self.first(p))))
        h = x
        for l, (w, b) in enumerate(zip(ws, bs)):
            new = torch.einsum("bi,bio->bo", h, w) + b
            if l + 1 < len(ws):
                new = torch.tanh(new)
                if self.layout.residual and 0 < l:
                    new = new + h
            h = new
        return h

    def pruning_units(self) -> PruningUnits:
        return PruningUnits((), self.layout.groups("last.weight", "last.bias"))

    def compact_units(self, keep):
        sd = compact_state(self, keep)
        small = RefHyperNet(self.layout.narrowed(keep), self.d_p, self.r, seed=None)
        load_state_dict(small, sd)
        return small


def test_layout_sizes_and_positions_by_hand():
    lay = ShapeNetLayout((1, 30, 30, 30, 1), residual=True)
    assert lay.size == 2 * 900 + (1 + 1 + 1 + 2) * 30 + 1 == 1951  # spec's tutorial 1 (L = 2)
    lay = ShapeNetLayout((2, 3, 1))
    assert lay.size == 6 + 3 + 3 + 1
    inc, b, out = lay.node_positions(1)
    # W_0 (2, 3) at 0..5 row-major; W_1 (3, 1) at 6..8; b_0 at 9..11; b_1 at 12
    assert inc.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert b.tolist() == [[9], [10], [11]]
    assert out.tolist() == [[6], [7], [8]]
    theta = torch.arange(13.0)[None]
    ws, bs = lay.unpack(theta)
    assert ws[0][0].tolist() == [[0, 1, 2], [3, 4, 5]] and bs[0][0].tolist() == [9, 10, 11]
    with pytest.raises(InputError, match="expected 13"):
        lay.unpack(torch.zeros(1, 12))


@pytest.mark.parametrize("residual", [False, True])
def test_prune_nodes_then_compact_is_exact(residual, gen):
    lay = ShapeNetLayout((2, 12, 12, 1), residual=residual)
    net = RefHyperNet(lay, d_p=3, r=4)
    reports = prune(net, 0.5, criterion="neuron_l2", with_outgoing=True)
    names = ["shape"] if residual else ["shape.1", "shape.2"]
    assert [r.layer for r in reports] == names and all(r.neurons_pruned == 6 for r in reports)
    masks = get_masks(net)
    # whole generated slices: a pruned node's rows of W_last and entries of b_last, nothing else
    dead_rows = ~masks["last.weight"].any(dim=1)
    assert torch.equal(dead_rows, ~masks["last.bias"])
    p, x = torch.randn(9, 3, generator=gen, dtype=torch.float64), torch.randn(9, 2, generator=gen, dtype=torch.float64)
    before = net(p, x)
    small, keep = compact_units(net)
    expect = (2, 6, 6, 1)
    assert small.layout.widths == expect and small.last.out_features == ShapeNetLayout(expect).size
    assert float((small(p, x) - before).detach().abs().max()) < 1e-6
    assert sorted(keep) == names and all(k.shape == (1, 6) for k in keep.values())


def test_narrowed_rejects_unknown_groups():
    with pytest.raises(InputError, match="unknown ShapeNet group 'shape'"):
        ShapeNetLayout((2, 4, 1)).narrowed({"shape": torch.arange(2)})


def test_shapenet_flops_by_hand_dense_and_after_node_pruning():
    lay = ShapeNetLayout((2, 3, 1))
    assert lay.flops() == 2 * 6 + 3 + 2 * 3 + 1
    net = RefHyperNet(lay, d_p=1, r=2)
    prune(net, 0.34, criterion="neuron_l2")  # one of the 3 nodes: 2 in, 1 bias, 1 out
    live = lay.live_positions(net.last.weight, net.last.bias)
    assert int(live.sum()) == 13 - 4
    assert lay.flops(live) == 2 * 4 + 2 + 2 * 2 + 1
