"""Random graphs (Hypothesis): every traced group is removable exactly, or refused (issue 16).

A network is drawn as an optional convolutional stem (conv layers, then a flatten or a sum over the
length) followed by blocks: a plain layer, a residual block ``h + σ(W h)``, a concatenation of two
branches, a gate ``σ(A h) * sigmoid(B h)``, a GLU ``chunk``, a BatchNorm layer, the input concatenated
again. For every prunable group one drawn unit is masked: the outputs must equal the network with that
channel forced to zero, and compaction must give the masked outputs with one unit fewer. A random
structured prune of the whole network must compact to its masked outputs too.
"""

from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from sciprune.core import Traced, compact, compact_units, prune, units_of
from tests.core.test_trace import close, forced_zero, mask_unit, outputs

ACTS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "sin": torch.sin,
        "identity": lambda h: h, "silu": nn.functional.silu}
KINDS = ["linear", "residual", "concat", "gate", "glu", "bn", "input_concat"]


class RandomNet(nn.Module):
    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        d = spec["d_in"]
        if spec["convs"]:
            c, length = spec["c_in"], spec["length"]
            self.convs = nn.ModuleList()
            for co, k in spec["convs"]:
                self.convs.append(nn.Conv1d(c, co, k, padding=k // 2))
                c = co
            d = c * length if spec["pool"] == "flatten" else c
        self.mods = nn.ModuleList()
        for kind, w, _ in spec["blocks"]:
            if kind == "linear":
                m = nn.ModuleList([nn.Linear(d, w)])
            elif kind == "residual":
                m, w = nn.ModuleList([nn.Linear(d, d)]), d
            elif kind == "concat":
                m, w = nn.ModuleList([nn.Linear(d, w), nn.Linear(d, w + 1)]), 2 * w + 1
            elif kind == "gate":
                m = nn.ModuleList([nn.Linear(d, w), nn.Linear(d, w)])
            elif kind == "glu":
                m = nn.ModuleList([nn.Linear(d, 2 * w)])
            elif kind == "bn":
                m = nn.ModuleList([nn.Linear(d, w), nn.BatchNorm1d(w)])
            else:  # input_concat
                m, w = nn.ModuleList([nn.Linear(d + spec["d_raw"], w)]), w
            self.mods.append(m)
            d = w
        self.out = nn.Linear(d, spec["d_out"])

    def forward(self, x: Tensor) -> Tensor:
        spec = self.spec
        raw = x.flatten(1)
        h = x
        if spec["convs"]:
            for conv, (_, _) in zip(self.convs, spec["convs"]):
                h = torch.tanh(conv(h))
            h = h.flatten(1) if spec["pool"] == "flatten" else h.sum(-1)
        for m, (kind, _, act) in zip(self.mods, spec["blocks"]):
            f = ACTS[act]
            if kind == "linear":
                h = f(m[0](h))
            elif kind == "residual":
                h = h + f(m[0](h))
            elif kind == "concat":
                h = torch.cat([f(m[0](h)), torch.tanh(m[1](h))], dim=-1)
            elif kind == "gate":
                h = f(m[0](h)) * torch.sigmoid(m[1](h))
            elif kind == "glu":
                u, g = m[0](h).chunk(2, dim=-1)
                h = u * f(g)
            elif kind == "bn":
                h = f(m[1](m[0](h)))
            else:
                h = f(m[0](torch.cat([h, raw], dim=-1)))
        return self.out(h)


@st.composite
def specs(draw: st.DrawFn) -> dict:
    conv = draw(st.booleans())
    spec: dict = {"d_out": draw(st.integers(1, 3)), "convs": [], "pool": "sum"}
    if conv:
        spec["c_in"], spec["length"] = draw(st.integers(1, 3)), draw(st.integers(3, 6))
        spec["convs"] = [(draw(st.integers(2, 5)), draw(st.sampled_from([1, 3]))) for _ in range(draw(st.integers(1, 2)))]
        spec["pool"] = draw(st.sampled_from(["flatten", "sum"]))
        spec["d_in"] = spec["c_in"]
        spec["d_raw"] = spec["c_in"] * spec["length"]
    else:
        spec["d_in"] = spec["d_raw"] = draw(st.integers(1, 4))
    spec["blocks"] = [(draw(st.sampled_from(KINDS)), draw(st.integers(2, 6)), draw(st.sampled_from(sorted(ACTS))))
                      for _ in range(draw(st.integers(1, 4)))]
    spec["seed"] = draw(st.integers(0, 2**16))
    return spec


def build(spec: dict) -> tuple[nn.Module, tuple[Tensor, ...]]:
    gen = torch.Generator().manual_seed(spec["seed"])
    net = RandomNet(spec).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64) * 0.1)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    shape = (7, spec["c_in"], spec["length"]) if spec["convs"] else (7, spec["d_in"])
    return net, (torch.randn(shape, generator=gen, dtype=torch.float64),)


@settings(max_examples=40, deadline=None)
@given(spec=specs(), pick=st.integers(0, 2**16))
def test_random_graph_every_group_masks_like_a_zero_channel_and_compacts_like_its_mask(spec, pick):
    model, xs = build(spec)
    net = Traced(model, xs)
    groups = [g for g in units_of(net).groups if g.prunable]
    for g in groups:
        u = pick % g.size
        ref = forced_zero(net, g, u, xs)
        masked = copy.deepcopy(net)
        mask_unit(masked, g, u)
        got = outputs(masked, xs)
        assert close(got, ref), f"{spec}: group {g.name} unit {u}: masked != forced zero"
        small, keep = compact_units(masked)
        assert keep[g.name].shape[1] == max(1, g.size - 1)  # a group keeps one unit at least
        assert close(outputs(small, xs), got), f"{spec}: group {g.name}: compacted != masked"
    if groups:
        prune(net, 0.5, criterion="neuron_l2")
        assert close(outputs(compact(net), xs), outputs(net, xs))
