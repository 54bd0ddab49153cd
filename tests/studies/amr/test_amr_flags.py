"""PruningAMR / BasicAMR verdicts on hand-built INRs, and the per-element samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciprune.nn.mlp import MLP
from sciprune.studies.amr import examine as examine_module
from sciprune.studies.amr.examine import ElementPass, examine, relative_error
from sciprune.studies.amr.inr import INR
from sciprune.studies.amr.sampling import element_uniforms

WIDTH = 24


def kinked_inr() -> INR:
    """A ReLU network that is exactly affine on x < 0.5 and has 20 kinks at x = c_i in (0.55, 0.95).

    Layer 1: relu(x - c_i) for 20 neurons (zero for x < 0.5) plus relu(x + 1), relu(y + 1), relu(x + y + 2)
    and relu(1 + 0 x) (positive everywhere: affine). Layer 2: relu(W h + 5) with small W: the
    pre-activation stays positive, so layer 2 is affine in layer 1. On x < 0.5 every hidden column
    is an affine function of (x, y): rank <= 3 per layer.
    """
    gen = torch.Generator().manual_seed(0)
    W1 = torch.zeros(WIDTH, 2, dtype=torch.float64)
    b1 = torch.zeros(WIDTH, dtype=torch.float64)
    c = torch.linspace(0.55, 0.95, 20, dtype=torch.float64)
    W1[:20, 0], b1[:20] = 1.0, -c
    W1[20], b1[20] = torch.tensor([1.0, 0.0]), 1.0
    W1[21], b1[21] = torch.tensor([0.0, 1.0]), 1.0
    W1[22], b1[22] = torch.tensor([1.0, 1.0]), 2.0
    b1[23] = 1.0
    W2 = 0.05 * torch.randn(WIDTH, WIDTH, generator=gen, dtype=torch.float64)
    b2 = torch.full((WIDTH,), 5.0, dtype=torch.float64)
    W3 = torch.randn(1, WIDTH, generator=gen, dtype=torch.float64)
    b3 = torch.zeros(1, dtype=torch.float64)
    mlp = MLP.from_layers([W1, W2, W3], [b1, b2, b3], ["relu", "relu", "identity"])
    return INR("kinked", "", mlp, None, "square", 0)


def _boxes(boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Corners (B, 4, 2) in lexicographic order of axis-aligned boxes (x0, x1, y0, y1)."""
    return np.array([[[x0, y0], [x1, y0], [x0, y1], [x1, y1]] for x0, x1, y0, y1 in boxes], dtype=np.float64)


def _verdicts(inr: INR, corners: np.ndarray, **kw: float):
    args = dict(seed=0, it=0, id_samples=256, error_samples=128, epsilon=1e-3, threshold=1e-3,
                prop_threshold=0.2, offset=5.0)
    args.update(kw)
    return examine(ElementPass("pruning", inr, lambda x: x, **args), corners, np.arange(len(corners)))  # type: ignore[arg-type]


def test_an_exactly_linear_region_is_not_refined() -> None:
    inr = kinked_inr()
    corners = _boxes([(0.0, 0.25, 0.0, 0.25), (0.25, 0.5, 0.5, 1.0), (0.5, 1.0, 0.0, 0.5), (0.6, 0.8, 0.3, 0.4)])
    v = _verdicts(inr, corners)
    assert v.flags.tolist() == [False, False, True, True]
    assert v.ranks is not None and v.proportion is not None
    assert v.ranks[:2].max() <= 3  # affine region: rank <= 3 in every layer
    assert np.all(v.proportion[:2] <= 6 / (2 * WIDTH))
    assert v.error[:2].max() < 1e-10  # the pruned network is exact there
    assert v.ranks[2, 0] >= 8  # many kinks inside: layer 1 keeps many neurons


def test_error_rule_alone_and_proportion_rule_alone() -> None:
    inr = kinked_inr()
    corners = _boxes([(0.0, 0.5, 0.0, 0.5), (0.5, 1.0, 0.0, 0.5)])
    # proportion threshold 1 switches the proportion rule off: the pruned network is exact on the
    # affine box and not on the kinked one, so a small error threshold flags only the latter
    v = _verdicts(inr, corners, prop_threshold=1.0, threshold=1e-6)
    assert v.error[0] < 1e-10 < 1e-6 < v.error[1]
    assert v.flags.tolist() == [False, True]
    # an unreachable error threshold leaves the proportion rule
    v = _verdicts(inr, corners, threshold=1e9)
    assert v.flags.tolist() == [False, True]


def test_relative_error_formula() -> None:
    f = torch.tensor([[[1.0], [3.0]]], dtype=torch.float64)
    g = torch.tensor([[[1.5], [2.0]]], dtype=torch.float64)
    # mean|f-g| = 0.75, mean 1/|f+5| = (1/6 + 1/8)/2
    assert relative_error(f, g, 5.0).item() == pytest.approx(0.75 * (1 / 6 + 1 / 8) / 2)
    assert relative_error(f, f, 0.0).item() == 0.0


def test_basic_flags_only_where_the_interpolant_is_wrong() -> None:
    inr = kinked_inr()
    corners = _boxes([(0.0, 0.5, 0.0, 0.5), (0.5, 1.0, 0.0, 0.5)])
    corner_vals = inr(corners.reshape(-1, 2))[:, 0].numpy().reshape(2, 4)
    p = ElementPass("basic", inr, lambda x: x, seed=0, it=0, error_samples=64, threshold=1e-6, offset=5.0, component=0)
    v = examine(p, corners, np.arange(2), corner_vals)
    assert v.flags.tolist() == [False, True]
    assert v.error[0] < 1e-12


def test_verdicts_do_not_depend_on_workers_or_chunks() -> None:
    inr = kinked_inr()
    rng = np.random.default_rng(0)
    lo = rng.random((600, 2)) * 0.9
    corners = _boxes([(x, x + 0.1, y, y + 0.1) for x, y in lo])
    one = _verdicts(inr, corners)
    for workers in (2, 8):
        p = ElementPass("pruning", inr, lambda x: x, seed=0, it=0, id_samples=256, error_samples=128, epsilon=1e-3,
                        threshold=1e-3, prop_threshold=0.2, offset=5.0, workers=workers)
        other = examine(p, corners, np.arange(len(corners)))
        np.testing.assert_array_equal(one.flags, other.flags)
        np.testing.assert_array_equal(one.error, other.error)
        np.testing.assert_array_equal(one.ranks, other.ranks)


def test_element_samples_depend_only_on_seed_iteration_and_element() -> None:
    a = element_uniforms(3, "id", 2, np.array([5, 9, 11]), 64, 2)
    b = element_uniforms(3, "id", 2, np.array([11, 0, 5]), 64, 2)
    np.testing.assert_array_equal(a[0], b[2])
    np.testing.assert_array_equal(a[2], b[0])
    assert not np.array_equal(a[0], element_uniforms(3, "id", 3, np.array([5]), 64, 2)[0])
    assert not np.array_equal(a[0], element_uniforms(4, "id", 2, np.array([5]), 64, 2)[0])
    assert not np.array_equal(a[0], element_uniforms(3, "err", 2, np.array([5]), 64, 2)[0])
    big = element_uniforms(0, "id", 0, np.arange(200), 500, 2)
    assert 0.0 <= big.min() and big.max() < 1.0
    assert abs(big.mean() - 0.5) < 0.005 and abs(big.var() - 1 / 12) < 0.002


def _relu_net(widths: list[int], seed: int, acts: list[str] | None = None) -> MLP:
    """A random float64 MLP 2 -> widths -> 2, biases shifted down so that many ReLU neurons are dead
    on a small box."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [2, *widths, 2]
    ws = [torch.randn(o, i, generator=gen, dtype=torch.float64) / i**0.5 for i, o in zip(sizes, sizes[1:])]
    bs = [torch.randn(o, generator=gen, dtype=torch.float64) - 0.5 for o in sizes[1:]]
    return MLP.from_layers(ws, bs, acts or ["relu"] * len(widths) + ["identity"])


def test_element_errors_and_verdicts_are_those_of_the_plain_error_check(monkeypatch: pytest.MonkeyPatch) -> None:
    mlp = _relu_net([48, 48, 48], 2)
    inr = INR("random", "", mlp, None, "square", 0)
    rng = np.random.default_rng(2)
    lo = rng.random((300, 2)) * 0.95
    corners = _boxes([(x, x + 0.05, y, y + 0.05) for x, y in lo])
    fast = _verdicts(inr, corners, threshold=1e-4)
    monkeypatch.setattr(examine_module, "forward_live", lambda net, x: net(x))
    plain = _verdicts(inr, corners, threshold=1e-4)
    assert 0 < plain.flags.sum() < len(corners)  # both verdicts occur
    np.testing.assert_array_equal(fast.flags, plain.flags)
    np.testing.assert_array_equal(fast.ranks, plain.ranks)
    np.testing.assert_allclose(fast.error, plain.error, rtol=1e-12, atol=1e-15)


@pytest.mark.mfem
def test_epsilon_reaches_the_qr_through_one_pass_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--epsilon`` of ``mode=pruning`` is read from the config once (``ElementPass.of``) and reaches the
    pivoted QR unchanged, with two study frames between the loop and core's ID (docs/design.md counts them)."""
    pytest.importorskip("mfem.ser")
    import traceback

    import sciprune.core._idfactor as factor
    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.driver import run_amr
    from sciprune.studies.amr.inr import resolve_inr

    seen: list[tuple[float | None, list[str]]] = []
    qr = factor.pivoted_qr

    def spy(A, eps, *args, **kw):  # type: ignore[no-untyped-def]
        names = [f.name for f in traceback.extract_stack() if "/sciprune/" in f.filename]
        seen.append((eps, names[names.index("run_amr") + 1 : names.index("id_prune")]))
        return qr(A, eps, *args, **kw)

    monkeypatch.setattr(factor, "pivoted_qr", spy)
    cfg = AMRConfig(inr="corner", mode="pruning", epsilon=1e-6, max_it=3, max_dofs=300, rmse_points=1024,
                    uniform_baseline=False)
    run_amr(cfg, resolve_inr("corner"), out=None)
    assert seen and {eps for eps, _ in seen} == {1e-6}
    assert {tuple(frames) for _, frames in seen} == {("examine", "_pruning_chunk")}
