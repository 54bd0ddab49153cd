"""The NIF family: sizes, forward paths, initialisation, node groups, compaction, ID folding, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from sciprune.core import compact_units, network_stats, prune, save_checkpoint, torch_generator
from sciprune.errors import InputError
from sciprune.nn.hypernet import ShapeNetLayout
from sciprune.nn.nif import (
    NIF, NIFLastLayer, NIFMultiScale, build_nif, id_fold, load_nif, node_scores, theta_context, unique_rows,
)


def _shape(**kw):
    return {"input_dim": 1, "output_dim": 1, "units": 30, "nlayers": 2, "activation": "swish", **kw}


def _param(**kw):
    return {"input_dim": 1, "latent_dim": 1, "units": 30, "nlayers": 2, "activation": "swish", **kw}


def _models():
    g = torch_generator(0, "nif-test")
    siren = dict(input_dim=2, units=12, nlayers=2, omega_0=30.0, weight_init_factor=1e-2)
    return [
        NIF(_shape(units=10), _param(units=8, latent_dim=2), generator=g).double(),
        NIFMultiScale(_shape(**siren), _param(units=8, latent_dim=3), generator=g).double(),
        NIFMultiScale(_shape(**siren, use_resblock=True), _param(units=8, latent_dim=3, use_resblock=True), generator=g).double(),
    ]


def _inputs(model, n=300, distinct=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randint(0, distinct, (n, model.d_p), generator=g).double() / distinct
    return torch.cat([p, torch.rand(n, model.d_x, generator=g, dtype=torch.float64)], dim=1)


def test_tutorial_one_sizes_match_the_spec():
    m = NIF(_shape(), _param())
    assert m.layout.size == 1951  # P = L n² + (d_x + d_u + 1 + L) n + d_u
    assert sum(p.numel() for p in m.parameters()) == 5853
    r = NIFMultiScale(_shape(use_resblock=True), _param())
    n, L = 30, 2
    assert r.layout.size == 2 * L * n * n + (1 + 1 + 1 + 2 * L) * n + 1


def test_deduplicated_parameternet_equals_one_weight_set_per_row():
    for m in _models():
        for distinct in (3, 1000):  # grouped matmuls, and the per-sample bmm path
            inp = _inputs(m, distinct=distinct)
            m.dedup = True
            a = m(inp)
            m.dedup = False
            b = m(inp)
            m.dedup = True
            assert torch.allclose(a, b, atol=1e-12)


def test_sub_models_compose_to_the_forward():
    for m in _models():
        inp = _inputs(m)
        p, x = inp[:, :m.d_p], inp[:, m.d_p:]
        w = m.latent_to_weights(m.p_to_latent(p))
        assert torch.allclose(m.x_to_u_given_w(x, w), m(inp), atol=1e-12)


def test_siren_scales_the_matmul_not_the_bias():
    m = NIFMultiScale(_shape(units=3, nlayers=0, omega_0=30.0), _param(units=4), generator=torch_generator(1, "s"))
    m = m.double()
    x = torch.tensor([[0.3]], dtype=torch.float64)
    w = torch.randn(m.layout.size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    first, out = m.layout.linears
    W1 = w[first.w_off:first.w_off + 3].view(1, 3)
    b1 = w[first.b_off:first.b_off + 3]
    W2 = w[out.w_off:out.w_off + 3].view(3, 1)
    b2 = w[out.b_off:out.b_off + 1]
    expect = torch.sin(30.0 * (x @ W1) + b1) @ W2 + b2
    assert torch.allclose(m.x_to_u_given_w(x, w), expect, atol=1e-12)


def test_hyper_initialisation_bounds():
    n, d_x, om = 20, 2, 30.0
    m = NIFMultiScale(_shape(input_dim=d_x, units=n, omega_0=om, weight_init_factor=1e-3), _param(latent_dim=4),
                      generator=torch_generator(3, "h"))
    b = m.pnet.last.bias.detach().double()
    W = m.pnet.last.weight.detach()
    lins = m.layout.linears
    first, hidden, out = lins[0], lins[1], lins[-1]
    assert b[first.w_off:first.w_off + d_x * n].abs().max() <= 1 / d_x
    assert b[first.w_off:first.w_off + d_x * n].abs().max() > 0.8 / d_x
    hid = b[hidden.w_off:hidden.w_off + n * n].abs().max()
    assert 0.8 * math.sqrt(6 / n) / om < hid <= math.sqrt(6 / n) / om
    assert b[out.w_off:out.w_off + n].abs().max() <= math.sqrt(6 / (2 * n))
    assert b[lins[0].b_off:].abs().max() <= 1 / n
    assert W.abs().max() <= math.sqrt(6 / 4) * 1e-3
    # ShapeNet starts nearly independent of p: the generated weights barely move with p
    th = m.p_to_weights(torch.linspace(-1, 1, 7)[:, None]).detach()
    assert float((th - th.mean(0)).abs().max()) < 0.05 * float(th.abs().max())


def test_groups_are_core_layout_groups():
    nif, siren, res = _models()
    mine = {name: pos for name, pos in siren.node_positions().items()}
    core = ShapeNetLayout((2, 12, 12, 12, 1)).groups("w", "b")
    assert [g.name for g in core] == list(mine)
    for g in core:
        own = torch.cat([g.incoming[0].index, g.attached[0].index, g.outgoing[0].index], dim=1)
        assert torch.equal(own, mine[g.name])
    assert [g.name for g in res.pruning_units().groups] == ["shape", "block.0", "block.1"]


def test_residual_stream_is_one_group_over_every_layer():
    nif, _, res = _models()
    units = nif.pruning_units()
    assert [g.name for g in units.groups] == ["shape"]
    stream = units.groups[0]
    # node j owns W_1[:, j], b_1[j], and row and column j of every hidden map, and row j of W_out
    lins = nif.layout.linears
    owned = set(torch.cat([s.index[3] for s in stream.incoming + stream.outgoing]).tolist())
    for lin in lins[1:-1]:
        assert set(lin.w_pos()[3].tolist()) <= owned and set(lin.w_pos()[:, 3].tolist()) <= owned
    assert set(lins[0].w_pos()[:, 3].tolist()) <= owned and set(lins[-1].w_pos()[3].tolist()) <= owned


def test_masked_nodes_compact_to_the_same_outputs():
    for m in _models():
        inp = _inputs(m)
        prune(m, 0.5, criterion="hyper_node_rms", context=theta_context(m, inp[:, :m.d_p]))
        masked = m(inp)
        small, keep = compact_units(m)
        assert small.layout.size < m.layout.size
        assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in m.parameters())
        assert torch.allclose(small(inp), masked, atol=1e-6)
        assert network_stats(small, 1)["neurons"] == ";".join(str(w.shape[1]) for w in keep.values())


def test_pruned_nodes_stay_zero_under_training():
    from sciprune.core import enforce_masks

    m = _models()[1]
    inp = _inputs(m)
    prune(m, 0.5, criterion="hyper_node_rms", context=theta_context(m, inp[:, :1]), layers=["shape.2"])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    enforce_masks(m, opt)
    for _ in range(3):
        opt.zero_grad()
        m(inp).pow(2).mean().backward()
        opt.step()
    small, keep = compact_units(m)
    assert small.layout.widths == [12, 6, 12]


def test_id_fold_is_exact_for_a_duplicated_node():
    m = _models()[1]
    last = m.pnet.last
    pos = m._group_positions()
    name, n, inc, bias, _ = pos[1]  # shape.2: make node 5 a copy of node 2 (its incoming column and bias)
    with torch.no_grad():
        for par in (last.weight, last.bias):
            par[inc[5]] = par[inc[2]]
            par[bias[5]] = par[bias[2]]
    inp = _inputs(m)
    folded = id_fold(m, inp, {name: n - 1})
    assert folded.layout.widths[1] == n - 1
    assert torch.allclose(folded(inp), m(inp), atol=1e-6)
    assert torch.allclose(folded(_inputs(m, seed=7)), m(_inputs(m, seed=7)), atol=1e-6)  # unseen points too


def test_id_fold_on_a_residual_stream_keeps_a_working_model():
    m = _models()[0]
    inp = _inputs(m)
    folded = id_fold(m, inp, {"shape": 9})
    assert folded.layout.widths == [9, 9, 9]
    with torch.no_grad():
        err = float((folded(inp) - m(inp)).norm() / m(inp).norm())
    assert err < 0.5


def test_checkpoint_round_trip_and_a_foreign_architecture_is_refused(tmp_path):
    m = _models()[2]
    prune(m, 0.25, criterion="hyper_node_rms", layers=["block.0"])
    save_checkpoint(tmp_path / "m.safetensors", m)
    back = load_nif(tmp_path / "m.safetensors")
    inp = _inputs(m)
    assert torch.equal(back(inp), m(inp))
    other = _models()[1]
    with pytest.raises(InputError, match="does not match"):
        load_nif(tmp_path / "m.safetensors", expect=other.arch)
    with pytest.raises(InputError, match="not a NIF"):
        build_nif({"class": "MLP"})


def test_last_layer_variant_is_phi_times_a_plus_c():
    m = NIFLastLayer(_shape(input_dim=2, units=8, output_dim=2), _param(latent_dim=4), generator=torch_generator(4, "l")).double()
    inp = _inputs(m)
    p, x = inp[:, :1], inp[:, 1:]
    expect = torch.einsum("bur,br->bu", m.x_to_phi(x), m.p_to_latent(p)) + m.c
    assert torch.allclose(m(inp), expect, atol=1e-12)
    assert m(inp).shape == (300, 2)


def test_pnif_score_is_rms_over_p_of_the_node_norm():
    m = _models()[1]
    p = torch.tensor([[0.0], [0.5], [1.0]], dtype=torch.float64)
    theta = m.p_to_weights(p).detach()
    s = node_scores(m, p)["shape.1"]
    pos = m.node_positions()["shape.1"]
    expect = torch.stack([theta[i, pos].pow(2).sum(dim=1) for i in range(3)]).mean(dim=0).sqrt()
    assert torch.allclose(s, expect)


def test_unique_rows_equals_torch_unique_dim0():
    g = torch.Generator().manual_seed(3)
    for d in (1, 2, 3):
        p = torch.randint(0, 4, (500, d), generator=g).double() * 0.5
        u, inv = unique_rows(p)
        ru, rinv = torch.unique(p, dim=0, return_inverse=True)
        assert torch.equal(u, ru) and torch.equal(inv, rinv)
