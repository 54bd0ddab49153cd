"""Numbers of the ID: errors against rank, exact recovery, the eps rule, agreement with LAPACK."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

import sciprune.core._idfactor as idfactor_module
import sciprune.core._idprune as idprune_module
from sciprune.core import id_prune, id_prune_mlp, interpolative_decomposition, torch_generator
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _decaying(gen: torch.Generator, B: int, n: int, m: int, rate: float = 0.6) -> torch.Tensor:
    """Random (B, n, m) float64 matrices whose column scales decay geometrically (shuffled)."""
    A = torch.randn(B, n, m, generator=gen, dtype=torch.float64)
    scales = rate ** torch.arange(m, dtype=torch.float64)
    return A * scales[torch.randperm(m, generator=gen)]


def _id_error(A: torch.Tensor, sel: torch.Tensor, T: torch.Tensor, k: int) -> float:
    I = sel[:k]
    return float(torch.linalg.norm(A - A[:, I] @ T[:k]) / torch.linalg.norm(A))


METHODS = pytest.mark.parametrize("method", ["qr", "gram"])


@METHODS
def test_error_decreases_with_rank_and_vanishes_at_full_rank(method: str) -> None:
    A = _decaying(torch_generator(0, "err"), 1, 40, 15)[0]
    errors = []
    for k in range(1, 16):
        d = interpolative_decomposition(A, rank=k, method=method)
        assert int(d.ranks[0]) == k
        errors.append(_id_error(A, d.selected[0], d.interp[0], k))
    assert all(e1 <= e0 * (1 + 1e-9) for e0, e1 in zip(errors, errors[1:]))
    assert errors[0] > 0.1 and errors[-1] < (1e-13 if method == "qr" else 1e-10)


@METHODS
def test_eps_rule_picks_hand_computed_rank_on_orthogonal_columns(method: str) -> None:
    # Orthogonal columns of norms s: the pivoted QR has R = diag(sorted s) exactly, pivots by norm.
    gen = torch_generator(0, "orth")
    Q, _ = torch.linalg.qr(torch.randn(20, 6, generator=gen, dtype=torch.float64))
    s = torch.tensor([0.2, 10.0, 0.001, 1.0, 5.0, 0.01], dtype=torch.float64)
    d = interpolative_decomposition(Q * s, eps=0.015, method=method)  # ratios 1 .5 .1 .02 | .001 .0001
    assert d.ranks.tolist() == [4]
    assert d.selected[0].tolist() == [1, 4, 3, 0]
    d = interpolative_decomposition(Q * s, eps=0.0199, method=method)
    assert d.ranks.tolist() == [4]
    d = interpolative_decomposition(Q * s, eps=0.021, method=method)
    assert d.ranks.tolist() == [3]


@METHODS
def test_batched_matches_per_element_loop_and_lapack_pivots(method: str) -> None:
    A = _decaying(torch_generator(1, "lapack"), 6, 30, 12)
    eps = 1e-2
    batch = interpolative_decomposition(A, eps=eps, method=method)
    for b in range(A.shape[0]):
        one = interpolative_decomposition(A[b], eps=eps, method=method)
        k = int(batch.ranks[b])
        assert int(one.ranks[0]) == k
        assert torch.equal(one.selected[0, :k], batch.selected[b, :k])
        assert torch.allclose(one.interp[0, :k], batch.interp[b, :k], rtol=0, atol=1e-12)
        assert (batch.selected[b, k:] == -1).all() and (batch.interp[b, k:] == 0).all()
        _, R, P = scipy.linalg.qr(A[b].numpy(), pivoting=True, mode="economic")
        ratios = np.abs(np.diag(R)) / abs(R[0, 0])
        assert k == int(np.nonzero(ratios >= eps)[0].max()) + 1
        assert P[:k].tolist() == batch.selected[b, :k].tolist()
        # T = [I | R11⁻¹ R12] Πᵀ from LAPACK's factors.
        T = np.zeros((k, A.shape[2]))
        T[:, P] = np.hstack([np.eye(k), scipy.linalg.solve_triangular(R[:k, :k], R[:k, k:])])
        assert np.allclose(T, batch.interp[b, :k].numpy(), rtol=0, atol=1e-10)


@METHODS
def test_zero_columns_match_lapack(method: str) -> None:
    # Most columns identically zero (dead ReLU neurons): the ID runs on the live ones only.
    A = _decaying(torch_generator(1, "zeros"), 4, 30, 12)
    for b, live in enumerate([[0, 5, 7], [2, 3, 4, 11], [1], []]):
        A[b, :, [j for j in range(12) if j not in live]] = 0.0
    eps = 1e-2
    d = interpolative_decomposition(A, eps=eps, method=method)
    for b in range(3):
        k = int(d.ranks[b])
        _, R, P = scipy.linalg.qr(A[b].numpy(), pivoting=True, mode="economic")
        ratios = np.abs(np.diag(R)) / abs(R[0, 0])
        assert k == int(np.nonzero(ratios >= eps)[0].max()) + 1
        assert P[:k].tolist() == d.selected[b, :k].tolist()
        T = np.zeros((k, A.shape[2]))
        T[:, P] = np.hstack([np.eye(k), scipy.linalg.solve_triangular(R[:k, :k], R[:k, k:])])
        assert np.allclose(T, d.interp[b, :k].numpy(), rtol=0, atol=1e-10)
    assert d.ranks[3] == 1 and d.selected[3, 0] == 0 and (d.interp[3] == 0).all()


@METHODS
def test_id_on_live_columns_equals_id_on_all(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    mlp = MLP([2, 32, 32, 1], "relu", generator=torch_generator(10, "live"))
    with torch.no_grad():
        mlp.layers[0].bias[:24] = -5.0  # 24 of 32 neurons dead on [0, 1]^2
    x = torch.rand(6, 64, 2, generator=torch_generator(10, "x"))
    compact = id_prune(mlp, x, eps=1e-3, method=method)
    monkeypatch.setattr(idfactor_module, "COMPACT_BELOW", 0.0)  # never compact
    full = id_prune(mlp, x, eps=1e-3, method=method)
    assert torch.equal(compact.ranks, full.ranks)
    for a, b in zip(compact.selected, full.selected):
        assert torch.equal(a, b)
    for a, b in zip(compact.weights + [compact.errors], full.weights + [full.errors]):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


@METHODS
def test_forward_skipping_dead_inputs_changes_nothing(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    mlp = MLP([2, 32, 32, 32, 1], "relu", generator=torch_generator(11, "dead"), dtype=torch.float64)
    with torch.no_grad():
        mlp.layers[0].bias[:20] = -5.0  # dead on [0, 1]^2: the next layer's product skips them
        mlp.layers[1].bias[:16] = -5.0
    x = torch.rand(5, 48, 2, generator=torch_generator(11, "x"), dtype=torch.float64)
    skip = id_prune(mlp, x, eps=1e-4, method=method)
    monkeypatch.setattr(idprune_module, "FORWARD_COMPACT_BELOW", 0.0)
    dense = id_prune(mlp, x, eps=1e-4, method=method)
    assert torch.equal(skip.ranks, dense.ranks)
    assert all(torch.equal(a, b) for a, b in zip(skip.selected, dense.selected))
    for a, b in zip(skip.weights + skip.biases, dense.weights + dense.biases):
        assert torch.allclose(a, b, rtol=0, atol=1e-11)
    assert torch.allclose(skip(x), mlp(x), rtol=0, atol=1e-3)


def test_fixed_rank_int_and_per_member() -> None:
    A = _decaying(torch_generator(2, "rank"), 3, 25, 10)
    assert interpolative_decomposition(A, rank=4).ranks.tolist() == [4, 4, 4]
    d = interpolative_decomposition(A, rank=torch.tensor([1, 5, 10]))
    assert d.ranks.tolist() == [1, 5, 10] and d.selected.shape == (3, 10)
    assert _id_error(A[2], d.selected[2], d.interp[2], 10) < 1e-13


def _deficient_mlp() -> MLP:
    """3-10-8-6-1 float64: hidden layer 0 = 4 ReLU neurons plus 6 positive multiples of them;
    hidden layer 1 (identity) = 3 neurons plus 5 linear combinations of them."""
    gen = torch_generator(3, "deficient")
    mlp = MLP([3, 10, 8, 6, 1], ["relu", "identity", "tanh", "identity"], generator=gen, dtype=torch.float64)
    with torch.no_grad():
        w0, b0 = mlp.layers[0].weight, mlp.layers[0].bias
        b0[:4] = 0.3  # each base neuron is active on part of [-1, 1]^3
        for j, (src, c) in enumerate([(0, 2.0), (1, 0.5), (2, 3.0), (3, 1.5), (0, 0.7), (2, 4.0)], 4):
            w0[j], b0[j] = c * w0[src], c * b0[src]
        w1, b1 = mlp.layers[1].weight, mlp.layers[1].bias
        C = torch.randn(5, 3, generator=gen, dtype=torch.float64)
        w1[3:], b1[3:] = C @ w1[:3], C @ b1[:3]
    return mlp


@pytest.mark.parametrize(("method", "eps"), [("qr", 1e-9), ("gram", 1e-4)])
def test_rank_deficient_layers_are_recovered_exactly(method: str, eps: float) -> None:
    mlp = _deficient_mlp()
    x = torch.rand(2, 64, 3, generator=torch_generator(3, "x"), dtype=torch.float64) * 2 - 1
    pruned = id_prune(mlp, x, eps=eps, method=method)
    assert pruned.ranks[:, :2].tolist() == [[4, 3], [4, 3]]
    assert pruned.errors[:, :2].max() < 1e-12
    assert torch.allclose(pruned(x), mlp(x).detach(), rtol=0, atol=1e-10)
    # The dependence is exact everywhere, so the pruned network also matches off the samples.
    small = id_prune_mlp(mlp, x[0], rank=[4, 3, 6])
    assert small.sizes == [3, 4, 3, 6, 1]
    x_new = torch.rand(100, 3, generator=torch_generator(3, "new"), dtype=torch.float64)
    assert torch.allclose(small(x_new), mlp(x_new), rtol=0, atol=1e-10)


@METHODS
def test_dead_layer_keeps_one_neuron_with_zero_interpolation(method: str) -> None:
    mlp = MLP([2, 6, 5, 1], "relu", generator=torch_generator(4, "dead"), dtype=torch.float64)
    with torch.no_grad():
        mlp.layers[1].bias.fill_(-100.0)  # hidden layer 1 is zero on [0, 1]^2
    x = torch.rand(3, 30, 2, generator=torch_generator(4, "x"), dtype=torch.float64)
    pruned = id_prune(mlp, x, eps=1e-3, method=method)
    assert pruned.ranks[:, 1].tolist() == [1, 1, 1]
    assert (pruned.weights[2] == 0).all() and (pruned.errors[:, 1] == 0).all()
    assert torch.allclose(pruned(x), mlp(x).detach(), rtol=0, atol=1e-12)


@METHODS
def test_all_zero_matrix(method: str) -> None:
    d = interpolative_decomposition(torch.zeros(2, 7, 4), eps=0.1, method=method)
    assert d.ranks.tolist() == [1, 1] and d.selected.tolist() == [[0], [0]]
    assert (d.interp == 0).all()


@METHODS
def test_padding_is_exact_and_extract_matches_batch(method: str) -> None:
    # sigmoid(0) = 1/2: padded neurons must still contribute nothing.
    mlp = MLP([2, 12, 12, 2], "sigmoid", generator=torch_generator(5, "pad"))
    gen = torch_generator(5, "x")
    x = torch.rand(5, 40, 2, generator=gen) * torch.tensor([0.01, 0.05, 0.2, 0.5, 1.0]).view(5, 1, 1)
    pruned = id_prune(mlp, x, eps=1e-4, method=method)
    assert len(set(pruned.ranks.sum(1).tolist())) > 1  # members of different sizes
    y = pruned(x)
    assert y.dtype == torch.float64 and y.shape == (5, 40, 2)
    for b in range(5):
        member = pruned.extract(b)
        assert member.sizes[1:-1] == pruned.ranks[b].tolist()
        assert torch.allclose(member(x[b].double()), y[b], rtol=0, atol=1e-12)
    expected = pruned.ranks.sum(1).double() / 24
    assert torch.equal(pruned.proportion_kept(), expected)
    assert torch.allclose(y, mlp(x).double(), atol=1e-3)


@METHODS
def test_chunks_give_the_same_result(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    mlp = MLP([2, 16, 16, 1], "tanh", generator=torch_generator(6, "chunk"))
    x = torch.rand(7, 32, 2, generator=torch_generator(6, "x")) * 0.3
    whole = id_prune(mlp, x, eps=1e-3, method=method)
    monkeypatch.setattr(idprune_module, "CHUNK_ELEMENTS", 32 * 16 * 2)  # chunks of 2 members
    parts = id_prune(mlp, x, eps=1e-3, method=method)
    assert torch.equal(whole.ranks, parts.ranks)
    for a, b in zip(whole.weights + whole.selected, parts.weights + parts.selected):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)  # forward blocking may differ by ulps


@METHODS
def test_errors_false_skips_only_the_errors(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    mlp = MLP([2, 16, 16, 16, 1], "tanh", generator=torch_generator(9, "noerr"))
    x = torch.rand(5, 32, 2, generator=torch_generator(9, "x")) * 0.3
    full = id_prune(mlp, x, eps=1e-3, method=method)
    assert full.errors is not None and full.errors.shape == (5, 3)
    monkeypatch.setattr(idprune_module, "CHUNK_ELEMENTS", 32 * 16 * 2)  # chunks of 2 members
    lean = id_prune(mlp, x, eps=1e-3, method=method, errors=False)
    assert lean.errors is None
    assert torch.equal(full.ranks, lean.ranks)
    for a, b in zip(full.weights + full.biases + full.selected, lean.weights + lean.biases + lean.selected):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(full(x), lean(x), rtol=0, atol=1e-12)


def test_float32_model_gives_float32_mlp() -> None:
    mlp = MLP([2, 8, 8, 1], "relu", generator=torch_generator(7, "f32"))
    x = torch.rand(50, 2, generator=torch_generator(7, "x"))
    small = id_prune_mlp(mlp, x, eps=1e-2)
    assert small.layers[0].weight.dtype == torch.float32
    assert torch.allclose(small(x), mlp(x), atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of eps and rank"),
        ({"eps": 1e-3, "rank": 2}, "exactly one of eps and rank"),
        ({"eps": 0.0}, r"eps must be in \(0, 1\); got 0.0"),
        ({"eps": 1.5}, r"eps must be in \(0, 1\); got 1.5"),
        ({"rank": 9}, r"rank for hidden layer 0 must be in \[1, min\(width, samples\)\] = \[1, 8\]; got 9"),
        ({"rank": [2, 2, 2]}, "one int or 2 ints"),
        ({"eps": 0.1, "method": "svd"}, "unknown ID method 'svd'; expected one of auto, qr, gram"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    mlp = MLP([2, 8, 8, 1], "relu", generator=torch_generator(8, "bad"))
    with pytest.raises(InputError, match=match):
        id_prune(mlp, torch.zeros(20, 2), **kwargs)


def test_bad_arguments_of_the_decomposition() -> None:
    with pytest.raises(InputError, match=r"rank must be in \[1, min\(samples, width\)\] = \[1, 4\]; got 5"):
        interpolative_decomposition(torch.zeros(10, 4), rank=5)
    with pytest.raises(InputError, match="exactly one of eps and rank"):
        interpolative_decomposition(torch.zeros(10, 4))
    with pytest.raises(InputError, match="samples must be"):
        id_prune(MLP([2, 4, 1], generator=None), torch.zeros(5, 3), eps=0.1)
