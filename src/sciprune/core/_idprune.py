"""Interpolative-decomposition (ID) pruning of MLPs, batched over many sample sets.

A column ID of a matrix :math:`A \\in \\mathbb{R}^{n \\times m}` (``n`` samples, ``m`` neurons) keeps
``k`` columns :math:`I` and an interpolation matrix :math:`T \\in \\mathbb{R}^{k \\times m}` with

.. math:: A \\approx A_{:,I}\\, T, \\qquad T = [\\, I_k \\mid R_{11}^{-1} R_{12} \\,]\\, \\Pi^\\top,

from a column-pivoted QR :math:`A \\Pi = Q R`. Applied to the post-activation outputs
:math:`A_l` of hidden layer ``l`` (rows = samples), :math:`h_l \\approx h_l[I_l]\\, T_l`, so the
layer after it absorbs :math:`T_l^\\top` and the layer's other neurons are removed
(PruningAMR, §3.2 of ``specs/pruningamr.md``; Chee et al., "Model preserving compression for
neural networks", NeurIPS 2022).

The ID is computed in float64 by a batched, truncated column-pivoted QR (``method="qr"``) or by
a pivoted Cholesky of :math:`A^\\top A` (``method="gram"``, faster for narrow layers); both are
described in :mod:`sciprune.core._idfactor`. The activations are computed by the model in its own
dtype. Columns of :math:`A_l` that are identically zero (ReLU neurons dead on the samples, often
half of a layer or more on a small box) are skipped where it pays: by the ID (they are never
pivots) and by the next layer's product (zero inputs); results are the same up to rounding.

Ranks: with ``eps`` the rank is the largest ``k >= 1`` with :math:`|R_{kk}| \\ge \\varepsilon
|R_{11}|` (:math:`|R_{jj}|` is non-increasing here, so this is where the QR stops). With a fixed
``rank`` the rank is ``min(rank, numerical rank)``, where a pivot with :math:`|R_{jj}| <
10^{-12} |R_{11}|` counts as zero (keeping it would only add rounding noise). A matrix that is
identically zero keeps one column with a zero row of ``T`` (exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from sciprune.core._idfactor import (
    METHODS, Workspace, factor, id_with_error, interp_from_r, live_columns, nonzero_columns,
)
from sciprune.errors import InputError
from sciprune.core._activations import get_activation
from sciprune.core._units import MLPLike as MLP

#: float64 elements of A processed at once (8 MB per chunk: small enough that the allocator reuses memory).
CHUNK_ELEMENTS = 1 << 20
#: the forward skips a layer's zero inputs when the widest member has at most this fraction nonzero.
FORWARD_COMPACT_BELOW = 0.7


@dataclass(frozen=True)
class InterpolativeDecomposition:
    """Column IDs of a batch of matrices, ``A[b] ≈ A[b][:, selected[b, :k]] @ interp[b, :k]``.

    Attributes:
        selected: ``(B, kmax)`` long, kept column indices in pivot order; ``-1`` beyond ``ranks[b]``.
        ranks: ``(B,)`` long, the rank ``k`` of each member.
        interp: ``(B, kmax, m)`` float64 interpolation matrices ``T``; rows ``>= ranks[b]`` are zero.
    """

    selected: Tensor
    ranks: Tensor
    interp: Tensor


def _check_eps_rank(eps: float | None, rank: object, method: str = "auto") -> None:
    if method not in METHODS:
        raise InputError(f"unknown ID method {method!r}; expected one of {', '.join(METHODS)}")
    if (eps is None) == (rank is None):
        raise InputError(
            f"give exactly one of eps and rank; got eps={eps!r}, rank={rank!r}: "
            "use eps=1e-3 for a tolerance or rank=k for a fixed rank"
        )
    if eps is not None and not 0.0 < float(eps) < 1.0:
        raise InputError(f"eps must be in (0, 1); got {eps!r}")


def _as_target(rank: int | Tensor | None, B: int, n: int, m: int, device: torch.device) -> Tensor:
    if rank is None:
        return torch.full((B,), min(n, m), dtype=torch.long, device=device)
    r = torch.as_tensor(rank, device=device)
    if r.is_floating_point() or r.dim() > 1 or (r.dim() == 1 and r.numel() != B):
        raise InputError(f"rank must be an int or a ({B},) integer tensor; got {rank!r}")
    r = r.to(torch.long).expand(B) if r.dim() == 0 else r.to(torch.long)
    if B and (int(r.min()) < 1 or int(r.max()) > min(n, m)):
        raise InputError(
            f"rank must be in [1, min(samples, width)] = [1, {min(n, m)}]; got {rank}"
        )
    return r.clone()


def interpolative_decomposition(
    A: Tensor, *, eps: float | None = None, rank: int | Tensor | None = None, method: str = "auto"
) -> InterpolativeDecomposition:
    """Column ID ``A[b] ≈ A[b][:, I_b] T_b`` of ``A`` (n, m) or (B, n, m), computed in float64.

    Exactly one of ``eps`` (rank ``k`` = largest ``j >= 1`` with ``|R_jj| >= eps |R_11|`` in the
    column-pivoted QR ``A Π = Q R``) or ``rank`` (a fixed ``k``: an int, or one per member as a
    ``(B,)`` tensor) must be given. ``T = [I_k | R11⁻¹ R12] Πᵀ``. A matrix that is identically
    zero keeps one column with a zero row of ``T`` (exact). An unbatched ``A`` gives ``B = 1``.
    ``method``: ``"qr"`` (pivoted Gram-Schmidt QR on ``A``), ``"gram"`` (pivoted Cholesky of
    ``AᵀA``: faster for narrow layers, valid for ``eps >= ~1e-5``) or ``"auto"`` (``"gram"`` for
    widths <= 64 with ``eps >= 1e-5``, else ``"qr"``). See the module docstring.
    """
    _check_eps_rank(eps, rank, method)
    if not isinstance(A, Tensor) or A.dim() not in (2, 3):
        raise InputError(f"A must be a (n, m) or (B, n, m) tensor; got shape {getattr(A, 'shape', type(A))}")
    A3 = (A if A.dim() == 3 else A.unsqueeze(0)).detach()
    B, n, m = A3.shape
    target = _as_target(rank, B, n, m, A3.device)
    A64 = A3.to(torch.float64).contiguous()
    piv, R, ranks, _ = factor(A64, eps, target, method)
    return InterpolativeDecomposition(piv, ranks, interp_from_r(piv, R, m))


_INPLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_, "sin": torch.sin_}


@dataclass(frozen=True)
class PrunedMLPBatch:
    """``B`` ID-pruned copies of one MLP, zero-padded to common widths (float64).

    Member ``b`` keeps ``ranks[b, l]`` neurons of hidden layer ``l``; its layer ``l`` weight is
    ``weights[l][b, :k_l, :k_{l-1}]``. Padded neurons have zero weight rows and bias and the next
    layer's padded columns are zero, so they contribute nothing whatever the activation.

    Attributes:
        weights: per layer ``(B, k_l, k_{l-1})`` (input and output widths are never pruned).
        biases: per layer ``(B, k_l)``.
        activations: activation names, one per layer.
        ranks: ``(B, L-1)`` kept neurons per hidden layer.
        widths: original hidden widths ``m_l``.
        errors: ``(B, L-1)`` relative ID errors ``||A_l - A_l[:, I_l] T_l||_F / ||A_l||_F``, or
            ``None`` when :func:`id_prune` was called with ``errors=False``.
        selected: per hidden layer ``(B, k_l)`` kept neuron indices (``-1`` = padding).
    """

    weights: list[Tensor]
    biases: list[Tensor]
    activations: list[str]
    ranks: Tensor
    widths: list[int]
    errors: Tensor | None
    selected: list[Tensor]

    def __call__(self, x: Tensor) -> Tensor:
        """Forward ``x`` (B, n, d_in), or (n, d_in) shared by all members -> (B, n, d_out), float64."""
        h = x.to(torch.float64)
        if h.dim() == 2:
            h = h.unsqueeze(0).expand(self.ranks.shape[0], -1, -1)
        for w, b, act in zip(self.weights, self.biases, self.activations):
            h = get_activation(act)(torch.baddbmm(b.unsqueeze(1), h, w.mT))
        return h

    def proportion_kept(self) -> Tensor:
        """``(B,)`` float64: ``Σ_l k_l / Σ_l m_l`` over the hidden layers."""
        return self.ranks.sum(dim=1).to(torch.float64) / float(sum(self.widths))

    def extract(self, b: int, *, dtype: torch.dtype = torch.float64) -> MLP:
        """Member ``b`` as a physically smaller :class:`~sciprune.nn.mlp.MLP` (``dtype``)."""
        B = self.ranks.shape[0]
        if not -B <= b < B:
            raise InputError(f"member index {b} out of range for a batch of {B}")
        ks = self.ranks[b].tolist()
        rows = ks + [self.weights[-1].shape[1]]
        cols = [self.weights[0].shape[2]] + ks
        ws = [w[b, :r, :c].to(dtype) for w, r, c in zip(self.weights, rows, cols)]
        bs = [bias[b, :r].to(dtype) for bias, r in zip(self.biases, rows)]
        from sciprune.core._compact import mlp_from_layers

        return mlp_from_layers(ws, bs, self.activations)


def _rank_targets(rank: int | Sequence[int] | None, widths: list[int], n: int) -> list[int | None]:
    """One target rank (or ``None``) per hidden layer of the given widths, for ``n`` samples."""
    ranks: list[int | None] = [rank] * len(widths) if rank is None or isinstance(rank, int) else list(rank)
    if len(ranks) != len(widths) or not all(r is None or isinstance(r, int) for r in ranks):
        raise InputError(f"rank must be one int or {len(widths)} ints (one per hidden layer); got {rank!r}")
    for l, (r, m) in enumerate(zip(ranks, widths)):
        if r is not None and not 1 <= r <= min(m, n):
            raise InputError(
                f"rank for hidden layer {l} must be in [1, min(width, samples)] = [1, {min(m, n)}]; got {r}"
            )
    return ranks


def _gather_rows(M: Tensor, sel: Tensor) -> Tensor:
    """``M[sel[b]]`` for a shared ``M`` (r, ...) and indices ``sel`` (B, k) with -1 -> zero rows."""
    out = M[sel.clamp_min(0)]
    return out * (sel >= 0).reshape(*sel.shape, *([1] * (out.dim() - 2))).to(out.dtype)


def _hidden_layer(mlp: MLP, l: int, h: Tensor, out: Tensor, cols: Tensor | None) -> Tensor:
    """``act_l(h W_lᵀ + b_l)`` of the original network for ``h`` (C·n, m_{l-1}), written into ``out``.

    ``cols`` (C, m'), if given: per member, the only columns of ``h`` that may be nonzero; the
    product then skips the others (exact zeros).
    """
    layer = mlp.linears[l]
    W, b = layer.weight.detach(), layer.bias.detach()
    if cols is None:
        torch.addmm(b, h, W.T, out=out)
    else:  # rows of a contiguous Wᵀ gather much faster than columns of W
        C, mc = cols.shape
        hc = h.view(C, -1, h.shape[1]).gather(2, cols.unsqueeze(1).expand(C, h.shape[0] // C, mc))
        torch.baddbmm(b, hc, W.T.contiguous()[cols], out=out.view(C, -1, out.shape[1]))
    name = mlp.activations[l]
    if name in _INPLACE:
        _INPLACE[name](out)
    elif name != "identity":
        out.copy_(get_activation(name)(out))
    return out


def _live(h: Tensor, activation: str) -> Tensor:
    """(C, m) bool: columns of ``h`` (C, n, m) not identically zero (after a ReLU, ``max != 0``
    suffices: values are >= 0 or NaN, and NaN counts as live)."""
    return h.amax(dim=1) != 0 if activation == "relu" else nonzero_columns(h)


def _prune_chunk(
    mlp: MLP, x: Tensor, eps: float | None, targets: list[int | None], method: str, ws: Workspace,
    errors: bool,
) -> PrunedMLPBatch:
    C, n, _ = x.shape
    ws64 = [layer.weight.detach().to(torch.float64) for layer in mlp.linears]
    bs64 = [layer.bias.detach().to(torch.float64) for layer in mlp.linears]
    weights, biases, sels, ranks = [], [], [], []
    errs: list[Tensor] = []
    T_prev: Tensor | None = None
    h, cols = x.reshape(C * n, -1), None
    for l in range(len(mlp.sizes) - 2):
        m = mlp.sizes[l + 1]
        with torch.no_grad():
            h = _hidden_layer(mlp, l, h, ws.get(f"h{l % 2}", (C * n, m), x.dtype), cols)
        live = _live(h.view(C, n, m), mlp.activations[l])  # dead ReLU neurons: often over half
        cols = live_columns(live, FORWARD_COMPACT_BELOW)
        A = ws.get("a64", (C, n, m), torch.float64).copy_(h.view(C, n, m))
        target = _as_target(targets[l], C, n, m, x.device)
        sel, k, T, err = id_with_error(A, eps, target, method, ws, errors=errors, live=live)
        W = _gather_rows(ws64[l], sel)  # (C, k_l, m_{l-1})
        weights.append(W if T_prev is None else torch.bmm(W, T_prev.mT))
        biases.append(_gather_rows(bs64[l], sel))
        sels.append(sel)
        ranks.append(k)
        if err is not None:
            errs.append(err)
        T_prev = T
    W_out = ws64[-1].expand(C, -1, -1)
    weights.append(W_out if T_prev is None else torch.bmm(W_out, T_prev.mT))
    biases.append(bs64[-1].expand(C, -1).clone())
    return PrunedMLPBatch(
        weights, biases, list(mlp.activations), torch.stack(ranks, 1), list(mlp.sizes[1:-1]),
        torch.stack(errs, 1) if errors else None, sels,
    )


def _concat(parts: list[PrunedMLPBatch]) -> PrunedMLPBatch:
    """The chunks as one batch, padded to the widest (zeros; ``-1`` for indices)."""
    if len(parts) == 1:
        return parts[0]
    def cat(ts: list[Tensor], value: float = 0.0) -> Tensor:
        wide = [max(t.shape[i] for t in ts) for i in range(ts[0].dim() - 1, 0, -1)]
        pads = [[p for have, want in zip(t.shape[:0:-1], wide) for p in (0, want - have)] for t in ts]
        return torch.cat([torch.nn.functional.pad(t, pad, value=value) for t, pad in zip(ts, pads)])
    first = parts[0]
    return PrunedMLPBatch(
        [cat([p.weights[i] for p in parts]) for i in range(len(first.weights))],
        [cat([p.biases[i] for p in parts]) for i in range(len(first.biases))],
        first.activations,
        torch.cat([p.ranks for p in parts]),
        first.widths,
        None if first.errors is None else torch.cat([cast(Tensor, p.errors) for p in parts]),
        [cat([p.selected[i] for p in parts], -1) for i in range(len(first.selected))],
    )


def id_prune(
    mlp: MLP,
    samples: Tensor,
    *,
    eps: float | None = None,
    rank: int | Sequence[int] | None = None,
    method: str = "auto",
    errors: bool = True,
) -> PrunedMLPBatch:
    """ID-prune every hidden layer of ``mlp`` on ``B`` independent sample sets at once.

    ``samples`` is (n, d_in) or (B, n, d_in) (e.g. one set per mesh element). Per hidden layer
    ``l``, :math:`A_l` (n, m_l) is the post-activation output of layer ``l`` of the *original*
    network on the samples (computed in the model's dtype, then float64); its ID selects
    :math:`I_l, T_l`, and the next layer is corrected:

    .. math:: \\tilde W_l = W_l[I_l, :]\\, T_{l-1}^\\top,\\quad \\tilde b_l = b_l[I_l],\\qquad
              \\tilde W_{L-1} = W_{L-1} T_{L-2}^\\top,

    with :math:`T_{-1} = I` (inputs are never pruned). ``eps`` or ``rank`` (one int, or one per
    hidden layer) and ``method`` as in :func:`interpolative_decomposition`. ``errors=False`` skips
    the relative ID errors (:attr:`PrunedMLPBatch.errors` is then ``None``) for callers that do not
    read them (measured ~15 % of the time at width 32, ~0 at 256). Large batches run in chunks.
    """
    _check_eps_rank(eps, rank, method)
    if not isinstance(mlp, MLP):
        raise InputError(f"id_prune needs a sciprune MLP; got {type(mlp).__name__}")
    x = samples if samples.dim() == 3 else samples.unsqueeze(0)
    if samples.dim() not in (2, 3) or x.shape[2] != mlp.sizes[0] or x.shape[1] < 1:
        raise InputError(
            f"samples must be (n, {mlp.sizes[0]}) or (B, n, {mlp.sizes[0]}); got shape {tuple(samples.shape)}"
        )
    if len(mlp.sizes) < 3:
        raise InputError(f"id_prune needs at least one hidden layer; got sizes {mlp.sizes}")
    targets = _rank_targets(rank, mlp.sizes[1:-1], x.shape[1])
    x = x.to(mlp.linears[0].weight.dtype)
    chunk = max(1, CHUNK_ELEMENTS // (x.shape[1] * max(mlp.sizes[1:-1])))
    ws = Workspace(x.device)
    return _concat([_prune_chunk(mlp, xc, eps, targets, method, ws, errors) for xc in x.split(chunk)])


def id_prune_mlp(
    mlp: MLP,
    samples: Tensor,
    *,
    eps: float | None = None,
    rank: int | Sequence[int] | None = None,
    method: str = "auto",
) -> MLP:
    """ID-prune ``mlp`` on one sample set (n, d_in): a physically smaller MLP in the model's dtype."""
    if samples.dim() != 2:
        raise InputError(f"id_prune_mlp takes one sample set (n, d_in); got shape {tuple(samples.shape)}")
    dtype = mlp.linears[0].weight.dtype
    return id_prune(mlp, samples, eps=eps, rank=rank, method=method, errors=False).extract(0, dtype=dtype)
