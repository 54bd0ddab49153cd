"""The default bulk indicator: the INR's interpolation error on an element (the INR itself, or the INR ID-pruned there).

Numbers, not smoke: the indicator equals the interpolation error computed with the full INR on the same
samples; it sees the two kinks the rank-(d+1) residual misses (a kink through a plateau, a kink cutting
off one corner); it is invariant to the width of the network representing the field (neurons split in
two) and scales with the square of the field (so Dörfler marking is unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from sciprune.nn.mlp import MLP
from sciprune.studies.amr.examine import ElementPass, examine, reference_corners
from sciprune.studies.amr.inr import INR
from sciprune.studies.amr.interp import corner_weights, map_reference
from sciprune.studies.amr.marking import dorfler, indicator
from sciprune.studies.amr.sampling import element_uniforms


def _inr(weights: list[list[list[float]]], biases: list[list[float]]) -> INR:
    ws = [torch.tensor(w, dtype=torch.float64) for w in weights]
    bs = [torch.tensor(b, dtype=torch.float64) for b in biases]
    mlp = MLP.from_layers(ws, bs, ["relu"] * (len(ws) - 1) + ["identity"])
    mlp.requires_grad_(False)
    return INR("t", "", mlp, None, "square", sum(w.numel() + b.numel() for w, b in zip(ws, bs)))


def _grid(n: int) -> np.ndarray:
    g = np.arange(n) / n
    lo = np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    return lo[:, None, :] + reference_corners(2)[None] / n


KW = dict(seed=0, it=2, id_samples=32, error_samples=128, epsilon=1e-6)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """As in the driver: many small ops, where intra-op threads only add waiting (20x slower under load)."""
    from sciprune.studies.amr.driver import single_threaded_torch

    with single_threaded_torch():
        yield


def _exact(inr: INR, corners: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The interpolation error with the full INR on the indicator's own error samples."""
    xi = element_uniforms(0, "err", 2, ids, 128, 2)
    f = inr(map_reference(corners, xi))[..., 0].numpy()
    u = np.einsum("bnc,bc->bn", corner_weights(xi), inr(corners)[..., 0].numpy())
    return ((f - u) ** 2).mean(axis=1)


def test_the_indicator_is_the_interpolation_error_and_sees_what_the_residual_misses() -> None:
    lift = lambda x: x  # noqa: E731
    one = reference_corners(2)[None]  # the unit square, one element
    ids = np.array([7])
    # a kink through a plateau: f = 50 relu(x - 1/2); the rank-3 ID keeps {x, y, kink}: exact, residual 0
    plateau = _inr([[[1, 0], [0, 1], [1, 1], [50, 0]], [[0, 0, 0, 1]]], [[0, 0, 0, -25], [0]])
    # a kink cutting off the corner (1, 1): f = 50 relu(x + y - 1.98), nonzero on 0.02 % of the square
    corner = _inr([[[1, 0], [0, 1], [1, 1], [50, 50]], [[0, 0, 0, 1]]], [[0, 0, 0, -99], [0]])
    for inr, expected in ((plateau, 625 / 12), (corner, None)):
        v = examine(ElementPass("interpolation", inr, lift, **KW), one, ids)
        exact = _exact(inr, one, ids)
        np.testing.assert_allclose(v.error, exact, rtol=1e-6)  # the pruned surrogate reproduces the INR
        direct = examine(ElementPass("interpolation", inr, lift, **{**KW, "epsilon": None}), one, ids)  # the INR itself, no ID
        np.testing.assert_allclose(direct.error, exact, rtol=1e-12)
        assert direct.ranks is None and v.ranks is not None and v.ranks.max() <= 4
        res = examine(ElementPass("residual", inr, lift, seed=0, it=2, id_samples=32, error_samples=128), one, ids)
        assert res.error[0] < 1e-12 * v.error[0]  # the rank-(d+1) residual is blind to both
        if expected is not None:  # ∫ (50 relu(x - 1/2) - 25 x)^2 = 625/12 over the square; 128 random samples: s.e. ~ 8 %
            assert abs(v.error[0] - expected) < 0.25 * expected
    # f(1, 1) = 1 and f ~ 0 elsewhere: I_E f ~ x y, mean (x y)^2 = 1/9
    assert abs(examine(ElementPass("interpolation", corner, lift, **KW), one, ids).error[0] - 1 / 9) < 0.02


def _split(inr: INR) -> INR:
    """The same function, twice as wide: every hidden neuron split into two halves."""
    ws = [layer.weight.detach().clone() for layer in inr.mlp.linears]
    bs = [layer.bias.detach().clone() for layer in inr.mlp.linears]
    out_w, out_b = [], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        if i > 0:
            w = torch.cat([w, w], dim=1) / 2  # each input neuron appears twice, half the weight
        if i + 1 < len(ws):
            w, b = torch.cat([w, w]), torch.cat([b, b])
        out_w.append(w)
        out_b.append(b)
    mlp = MLP.from_layers(out_w, out_b, inr.mlp.activations)
    mlp.requires_grad_(False)
    return INR("wide", "", mlp, None, "square", 0)


@pytest.mark.parametrize("eps", [None, 1e-6])  # the INR itself (default), the INR ID-pruned on each element
def test_the_indicator_is_width_invariant_and_scales_with_the_field(eps: float | None) -> None:
    from sciprune.studies.amr.inr import resolve_inr

    base = resolve_inr("corner")
    narrow = INR("n", "", base.mlp, None, "square", 0)  # float64 copy: rounding is not what is tested
    wide = _split(narrow)
    assert wide.widths == [2 * w for w in narrow.widths]
    corners, lift = _grid(16), (lambda x: x)
    ids = np.arange(len(corners))
    x = torch.from_numpy(map_reference(corners, element_uniforms(0, "err", 2, ids, 8, 2)))
    np.testing.assert_allclose(wide(x).numpy(), narrow(x).numpy(), rtol=1e-12, atol=1e-12)
    e_narrow = examine(ElementPass("interpolation", narrow, lift, **{**KW, "epsilon": eps}), corners, ids).error
    e_wide = examine(ElementPass("interpolation", wide, lift, **{**KW, "epsilon": eps}), corners, ids).error
    np.testing.assert_allclose(e_wide, e_narrow, rtol=1e-5, atol=1e-12 * e_narrow.max())
    eta2 = indicator(np.zeros((len(ids), 1)), corners, "interpolation", e_narrow)
    np.testing.assert_array_equal(dorfler(indicator(np.zeros((len(ids), 1)), corners, "interpolation", e_wide), 0.5),
                                  dorfler(eta2, 0.5))
    # 4 f: the kept neurons and their interpolation are the hidden layers', unchanged; the error x 16
    ws = [layer.weight.detach().clone() for layer in narrow.mlp.linears]
    bs = [layer.bias.detach().clone() for layer in narrow.mlp.linears]
    ws[-1], bs[-1] = 4 * ws[-1], 4 * bs[-1]
    scaled = INR("4f", "", MLP.from_layers(ws, bs, narrow.mlp.activations), None, "square", 0)
    e_scaled = examine(ElementPass("interpolation", scaled, lift, **{**KW, "epsilon": eps}), corners, ids).error
    np.testing.assert_allclose(e_scaled, 16 * e_narrow, rtol=1e-9, atol=1e-12 * e_narrow.max())
    assert dorfler(16 * eta2, 0.5).tolist() == dorfler(eta2, 0.5).tolist()


mfem = pytest.importorskip("mfem.ser")


def test_the_default_is_the_interpolation_indicator_and_the_seed_mode_refuses_bulk_fields() -> None:
    from sciprune.studies.amr.config import AMRConfig

    cfg = AMRConfig()
    assert (cfg.mode, cfg.indicator, cfg.surrogate_epsilon) == ("bulk", "interpolation", None)
    with pytest.raises(ValueError, match="indicator=residual needs mode=bulk; got mode=pruning"):
        AMRConfig(inr="corner", mode="pruning", indicator="residual")
    with pytest.raises(ValueError, match="surrogate_epsilon=0.5 needs mode=bulk with indicator=interpolation"):
        AMRConfig(inr="corner", mode="pruning", surrogate_epsilon=0.5)


def _scaled(inr: INR, c: float) -> INR:
    """``c f``: the output layer times ``c`` (stored and float64 copies)."""
    def scale(mlp: MLP) -> MLP:
        ws = [layer.weight.detach().clone() for layer in mlp.linears]
        bs = [layer.bias.detach().clone() for layer in mlp.linears]
        ws[-1], bs[-1] = c * ws[-1], c * bs[-1]
        out = MLP.from_layers(ws, bs, mlp.activations)
        out.requires_grad_(False)
        return out

    return INR(f"{c}f", "", scale(inr.mlp), None, inr.default_mesh, inr.n_params,
               None if inr.native is None else scale(inr.native))


@pytest.mark.mfem
def test_tolerance_stops_where_the_estimate_crosses_it_whatever_the_scale_of_the_field() -> None:
    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.driver import run_amr
    from sciprune.studies.amr.inr import resolve_inr

    inr = resolve_inr("corner")
    small = dict(inr="corner", max_dofs=3000, rmse_points=4096)
    free = run_amr(AMRConfig(**small), inr, out=None)  # type: ignore[arg-type]
    est = [r.estimate for r in free.iterations if r.kind == "bulk"]
    assert free.field_scale is not None and all(e is not None and e > 0 for e in est)
    k = next(j for j in range(2, len(est)) if est[j] < min(est[:j]))  # type: ignore[type-var]
    tol = (est[k] + min(est[:k])) / 2 / free.field_scale  # type: ignore[operator,type-var]
    stopped = run_amr(AMRConfig(**small, tolerance=tol), inr, out=None)  # type: ignore[arg-type]
    assert stopped.stop_reason == "tolerance" and len(stopped.iterations) == 2 + k
    assert [(r.dofs, r.rmse) for r in stopped.iterations] == [(r.dofs, r.rmse) for r in free.iterations[: 2 + k]]
    # the estimate tracks the true error of the mesh it describes (0.8-1 on the shipped INRs, docs/amr.md)
    for before, e in zip(free.iterations[1:], est):
        assert 0.5 * before.rmse < e < 1.5 * before.rmse  # type: ignore[operator]
    four = run_amr(AMRConfig(**small, tolerance=tol), _scaled(inr, 4.0), out=None)  # type: ignore[arg-type]
    assert four.stop_reason == "tolerance" and four.field_scale == 4 * free.field_scale
    assert [r.dofs for r in four.iterations] == [r.dofs for r in stopped.iterations]
    np.testing.assert_allclose([r.rmse for r in four.iterations], [4 * r.rmse for r in stopped.iterations], rtol=1e-9)


@pytest.mark.parametrize("name", ["corner", "front"])
def test_the_pruned_surrogate_and_the_inr_itself_mark_the_same_elements(name: str) -> None:
    from sciprune.studies.amr.inr import resolve_inr

    inr, corners = resolve_inr(name), _grid(16)
    ids = np.arange(len(corners))
    pruned = examine(ElementPass("interpolation", inr, lambda x: x, **KW), corners, ids).error
    direct = examine(ElementPass("interpolation", inr, lambda x: x, **{**KW, "epsilon": None}), corners, ids).error
    big = direct > 1e-3 * direct.max()  # measured: within 0.8 % (corner) and 3 % (front) there
    assert np.all(np.abs(pruned - direct)[big] < 0.05 * direct[big])
    assert np.array_equal(dorfler(pruned, 0.5), dorfler(direct, 0.5)) and dorfler(direct, 0.5).sum() >= 2


@pytest.mark.mfem
def test_runs_through_the_inr_itself_and_through_the_pruned_inr_report_and_plot(tmp_path: Path) -> None:
    from sciprune.runner.run import run_config

    small = {"study": "amr", "inr": "corner", "max_dofs": 500, "rmse_points": 4096, "baseline_max_dofs": 20000}
    for eps, words in ((None, "the INR itself"), (1e-6, "the INR ID-pruned on it")):
        out = tmp_path / str(eps)
        run_config({**small, "surrogate_epsilon": eps}, out=out, quiet=True)
        params = json.loads((out / "parameters.json").read_text())
        assert params["surrogate_epsilon"] == eps and params["field_scale"] > 0
        bulk = [r for r in params["iterations"] if r["kind"] == "bulk"]
        assert bulk and all(r["estimate"] > 0 and (r["mean_proportion"] is None) == (eps is None) for r in bulk)
        assert (out / "plots" / "error_vs_dofs.png").is_file() and words in (out / "report.html").read_text()
