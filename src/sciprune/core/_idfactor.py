"""Batched truncated column-pivoted factorizations behind :mod:`sciprune.core._idprune` (private).

Everything here works on a batch ``A`` (B, n, m) of contiguous float64 matrices and returns, for
each member, the pivots ``I`` (in pivot order, ``-1`` padding), the rows :math:`R_{1:k,:} = Q^\\top A`
of the column-pivoted QR :math:`A \\Pi = Q R` in the *original* column order, and the rank ``k``.

**QR path** (:func:`pivoted_qr`). A left-looking column-pivoted Gram-Schmidt QR, vectorised over
the batch: step ``i`` picks the column of largest residual norm (``argmax``: ties go to the lowest
index, as in LAPACK ``geqp3``), orthogonalises it against the ``i`` columns of ``Q`` found so far
(classical Gram-Schmidt applied twice, "CGS2", as accurate as Householder), sets
:math:`R_{ii} = \\lVert q \\rVert`, :math:`R_{i,:} = q_i^\\top A` (one batched matrix-vector
product) and downdates the residual norms :math:`d_j \\leftarrow d_j - R_{ij}^2`. It stops as soon
as every member has its rank, so the cost is ``O(n m k)`` per matrix instead of
``O(n m \\min(n, m))``. The residual norms are downdated, not recomputed: their absolute error is
about :math:`10^{-16} \\lVert a_j \\rVert^2`, so pivots among columns whose residuals differ by
less than ~1e-8 of their norm may differ from LAPACK's.

**Gram path** (:func:`pivoted_cholesky`). A pivoted Cholesky of :math:`G = A^\\top A` gives the
same pivots and :math:`R` in exact arithmetic from one ``2 n m^2`` product plus steps on (B, m)
data. It squares the condition number (it sees :math:`|R_{jj}|` only to ~1e-7 of :math:`|R_{11}|`,
and ``T`` to ~1e-16 κ²), so :func:`resolve` picks it for ``method="auto"`` only for widths
<= :data:`GRAM_MAX_WIDTH` and ``eps >=`` :data:`GRAM_MIN_EPS`, where it is measured faster; at
width 256 the product alone is slower than the QR path (``docs/benchmarks.md``).

:func:`factor` picks the path and, when most columns are identically zero (dead ReLU neurons),
runs it on the nonzero ones only. :func:`interp_from_r` turns ``(I, R)`` into
:math:`T = R_{11}^{-1} R_{1:k,:}` (one triangular solve; the selected columns set to the identity
exactly), and :func:`id_with_error` adds the relative Frobenius error of the ID.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: pivots with |R_jj| below this fraction of |R_11| are treated as exactly dependent.
NUMERICAL_FLOOR = 1e-12
#: the same for the Gram path, which sees |R_jj| only to ~1e-7 |R_11|.
GRAM_FLOOR = 1e-6
#: ``method="auto"`` uses the Gram path for widths up to this, when eps >= GRAM_MIN_EPS.
GRAM_MAX_WIDTH = 64
GRAM_MIN_EPS = 1e-5
#: the ID runs on the nonzero columns only when they are at most this fraction of the width.
COMPACT_BELOW = 0.6
METHODS = ("auto", "qr", "gram")


def _threshold(r11: Tensor, rel: float) -> Tensor:
    """``rel |R_11|``, at least the smallest normal float: ``|R_ii| >=`` it also means ``R_ii != 0``."""
    return (r11 * rel).clamp_min_(torch.finfo(r11.dtype).tiny)


def _pad_pivots(piv: Tensor, ranks: Tensor, kmax: int) -> Tensor:
    """The first ``kmax`` pivots with ``-1`` from each member's rank on (steps past it were rejected)."""
    past = torch.arange(kmax, device=piv.device) >= ranks.unsqueeze(1)
    return piv[:, :kmax].masked_fill(past, -1)


def pivoted_qr(
    A: Tensor, eps: float | None, target: Tensor, d: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Truncated column-pivoted QR of ``A`` (B, n, m), contiguous float64.

    Returns ``(piv, R, ranks, Q)``: pivots (B, k) with -1 padding, rows ``R = Qᵀ A`` (B, k, m) in
    the original column order (zero rows beyond each rank), ranks (B,) and ``Qᵀ`` (B, k, n), where
    ``k = max(ranks)``. ``target`` (B,) caps the rank of each member (``min(n, m)`` in eps mode).
    ``d`` (B, m), the squared column norms of ``A`` if already known, is overwritten.
    """
    B, n, m = A.shape
    kcap = int(target.max()) if B else 0
    if d is None:
        d = A.square().sum(dim=1)  # residual squared column norms (faster than vector_norm)
    cap = min(kcap, 16)
    Qt = A.new_zeros(B, cap, n)  # rows q_i, grown on demand: ranks are usually small
    R = A.new_zeros(B, cap, m)
    piv = torch.empty((B, kcap), dtype=torch.long, device=A.device)
    ranks = torch.zeros(B, dtype=torch.long, device=A.device)
    active = torch.ones(B, dtype=torch.bool, device=A.device)
    rel = NUMERICAL_FLOOR if eps is None else max(eps, NUMERICAL_FLOOR)
    thr = A.new_zeros(B)
    for i in range(kcap):
        p = d.argmax(dim=1, keepdim=True)  # (B, 1); chosen columns hold -inf: never picked twice
        a = A.gather(2, p.unsqueeze(1).expand(B, n, 1)).mT  # (B, 1, n): column p of A
        if i > 0:  # CGS2; the first pass's coefficients Q_iᵀ a_p = R[:i, p] are known already
            Qi = Qt[:, :i]
            c = R[:, :i].gather(2, p.unsqueeze(1).expand(B, i, 1))
            a = torch.baddbmm(a, c.mT, Qi, alpha=-1.0)
            a = torch.baddbmm(a, torch.bmm(a, Qi.mT), Qi, alpha=-1.0)
        rii = torch.linalg.vector_norm(a, dim=2).squeeze(1)
        if i == 0:
            thr = _threshold(rii, rel)
            accept = active  # k >= 1, even for an all-zero matrix
        else:
            accept = active & (rii >= thr)  # active members have i < target
            if not bool(accept.any()):
                break
        if i == cap:
            Qt = torch.cat([Qt, torch.zeros_like(Qt)], dim=1)[:, : min(2 * cap, kcap)]
            R = torch.cat([R, torch.zeros_like(R)], dim=1)[:, : min(2 * cap, kcap)]
            cap = Qt.shape[1]
        q = a.mul_((accept / rii.clamp_min(1e-300)).unsqueeze(1).unsqueeze(2))  # 0 if rejected
        Qt[:, i] = q.squeeze(1)
        row = torch.bmm(q, A).squeeze(1)  # R[i, :] = q_iᵀ A
        R[:, i] = row
        d.sub_(row * row).scatter_(1, p, -torch.inf)
        piv[:, i] = p.squeeze(1)
        ranks += accept
        active = accept & (i + 1 < target)
        if not bool(active.any()):
            break
    kmax = int(ranks.max()) if B else 0
    return _pad_pivots(piv, ranks, kmax), R[:, :kmax], ranks, Qt[:, :kmax]


def pivoted_cholesky(
    G: Tensor, eps: float | None, target: Tensor, d: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The same truncated pivoted QR (``piv, R, ranks``) from the Gram matrices ``G = AᵀA`` (B, m, m).

    Pivoted Cholesky: ``R[i, :] = (G[p, :] - R[:i, p]ᵀ R[:i, :]) / R_ii`` with
    ``R_ii = sqrt(d_p)``. One ``2 n m²`` product, then steps on (B, m) data only: fast for small
    widths, but the squared conditioning limits it to ``eps >= ~1e-5`` (floor :data:`GRAM_FLOOR`).
    ``d`` (B, m), the diagonal of ``G``, is overwritten.
    """
    B, m, _ = G.shape
    kcap = int(target.max()) if B else 0
    R = G.new_zeros(B, kcap, m)
    piv = torch.empty((B, kcap), dtype=torch.long, device=G.device)
    ranks = torch.zeros(B, dtype=torch.long, device=G.device)
    active = torch.ones(B, dtype=torch.bool, device=G.device)
    rel = GRAM_FLOOR if eps is None else max(eps, GRAM_FLOOR)
    thr = G.new_zeros(B)
    for i in range(kcap):
        p = d.argmax(dim=1, keepdim=True)  # (B, 1)
        rii = d.gather(1, p).squeeze(1).clamp_min(0.0).sqrt()
        if i == 0:
            thr = _threshold(rii, rel)
            accept = active
        else:
            accept = active & (rii >= thr)  # active members have i < target
            if not bool(accept.any()):
                break
        g = G.gather(1, p.unsqueeze(2).expand(B, 1, m)).squeeze(1)  # row p of G, (B, m)
        if i > 0:
            c = R[:, :i].gather(2, p.unsqueeze(1).expand(B, i, 1))
            g = torch.baddbmm(g.unsqueeze(1), c.mT, R[:, :i], alpha=-1.0).squeeze(1)
        row = g * (accept / rii.clamp_min(1e-300)).unsqueeze(1)
        R[:, i] = row
        d.sub_(row * row).scatter_(1, p, -torch.inf)
        piv[:, i] = p.squeeze(1)
        ranks += accept
        active = accept & (i + 1 < target)
        if not bool(active.any()):
            break
    kmax = int(ranks.max()) if B else 0
    return _pad_pivots(piv, ranks, kmax), R[:, :kmax], ranks


def resolve(method: str, eps: float | None, m: int) -> str:
    if method == "auto":
        gram = m <= GRAM_MAX_WIDTH and eps is not None and eps >= GRAM_MIN_EPS
        return "gram" if gram else "qr"
    return method


def nonzero_columns(A: Tensor) -> Tensor:
    """``(B, m)`` bool: which columns of ``A`` (B, n, m) are not identically zero (NaN counts as nonzero)."""
    return (A.amax(dim=1) != 0) | (A.amin(dim=1) != 0)


def live_columns(live: Tensor, below: float) -> Tensor | None:
    """Column order that puts each member's nonzero columns first, cut to the widest member's count.

    ``live`` (B, m) bool: which columns are nonzero. Returns (B, m') indices, ``m' = min(m, max
    live + 1)`` (so a member that has a zero column keeps one, as the full pivoting would see
    it), live columns in their original order; ``None`` when ``m' > below · m``.
    """
    m = live.shape[1]
    keep = min(m, int(live.sum(dim=1).max()) + 1) if live.shape[0] else m
    if keep > below * m:
        return None
    return torch.argsort((~live).to(torch.uint8), dim=1, stable=True)[:, :keep]


def factor(
    A: Tensor, eps: float | None, target: Tensor, method: str, ws: Workspace | None = None,
    live: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(piv, R, ranks, ||A||_F²)`` by the QR or the Gram path (``ws``: scratch buffers; ``live``:
    :func:`nonzero_columns` of ``A`` if known).

    Columns that are identically zero (dead ReLU neurons: often half of a layer or more on a small
    sample box) are never pivots and have zero rows of ``R``. When they are many, the
    factorization runs on the live columns only and ``piv`` and ``R`` are mapped back.
    """
    B, n, m = A.shape
    cols = live_columns(nonzero_columns(A) if live is None else live, COMPACT_BELOW)
    if cols is not None:
        out = None if ws is None else ws.get("live", (B, n, cols.shape[1]), A.dtype)
        A = torch.gather(A, 2, cols.unsqueeze(1).expand(B, n, cols.shape[1]), out=out)
        target = target.clamp_max(cols.shape[1])
    if resolve(method, eps, m) == "gram":
        G = torch.bmm(A.mT, A)
        d = G.diagonal(dim1=1, dim2=2).clone()  # squared column norms
        total2 = d.sum(dim=1)
        piv, R, ranks = pivoted_cholesky(G, eps, target, d)
    else:
        sq = torch.empty_like(A) if ws is None else ws.get("sq", tuple(A.shape), A.dtype)
        d = torch.mul(A, A, out=sq).sum(dim=1)  # faster than vector_norm
        total2 = d.sum(dim=1)
        piv, R, ranks = pivoted_qr(A, eps, target, d)[:3]
    if cols is not None:
        piv = cols.gather(1, piv.clamp_min(0)).masked_fill_(piv < 0, -1)
        k = R.shape[1]
        R = R.new_zeros(B, k, m).scatter_(2, cols.unsqueeze(1).expand(B, k, cols.shape[1]), R)
    return piv, R, ranks, total2


def interp_from_r(piv: Tensor, R: Tensor, m: int) -> Tensor:
    """``T = R11⁻¹ R`` with ``T[:, I] = I`` exactly; zero rows for padding and for all-zero members."""
    B, kmax = piv.shape
    valid = piv >= 0
    pc = piv.clamp_min(0)
    R11 = R.gather(2, pc.unsqueeze(1).expand(B, kmax, kmax))  # R11[b, i, j] = R[b, i, piv[b, j]]
    R11 = R11 * (valid.unsqueeze(1) & valid.unsqueeze(2))
    diag = R11.diagonal(dim1=1, dim2=2)
    live = diag != 0  # zero only on padding and for an all-zero matrix
    R11 = R11 + torch.diag_embed((~live).to(R.dtype))
    T = torch.linalg.solve_triangular(R11, R, upper=True)  # rows of R past the rank are zero: so are T's
    chosen = torch.zeros(B, m, dtype=torch.bool, device=R.device)
    chosen[torch.arange(B, device=R.device).unsqueeze(1).expand(B, kmax)[valid], piv[valid]] = True
    T = T.masked_fill(chosen.unsqueeze(1), 0.0)
    T.scatter_(2, pc.unsqueeze(2), live.to(R.dtype).unsqueeze(2))
    return T


class Workspace:
    """Flat buffers reused across chunks and layers of one call (fresh multi-MB tensors page-fault)."""

    def __init__(self, device: torch.device) -> None:
        self._bufs: dict[str, Tensor] = {}
        self.device = device

    def get(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        numel = math.prod(shape)
        buf = self._bufs.get(key)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = self._bufs[key] = torch.empty(numel, dtype=dtype, device=self.device)
        return buf[:numel].view(shape)


def _direct_residual2(A: Tensor, piv: Tensor, T: Tensor, redo: Tensor, ws: Workspace) -> Tensor:
    """``||A - A[:, I] T||_F²`` for the members ``redo`` (all of them at once when most need it)."""
    if 2 * redo.numel() > A.shape[0]:
        A_I = A.gather(2, piv.clamp_min(0).unsqueeze(1).expand(-1, A.shape[1], -1))
        A_I = A_I * (piv >= 0).unsqueeze(1)
        out = ws.get("sq", tuple(A.shape), A.dtype)
        return torch.linalg.vector_norm(torch.baddbmm(A, A_I, T, alpha=-1.0, out=out), dim=(1, 2))[redo] ** 2
    sel = piv[redo]
    A_I = A[redo].gather(2, sel.clamp_min(0).unsqueeze(1).expand(-1, A.shape[1], -1))
    direct = torch.baddbmm(A[redo], A_I * (sel >= 0).unsqueeze(1), T[redo], alpha=-1.0)
    return torch.linalg.vector_norm(direct, dim=(1, 2)) ** 2


def id_with_error(
    A: Tensor, eps: float | None, target: Tensor, method: str, ws: Workspace, *, errors: bool = True,
    live: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``(selected, ranks, T, relative Frobenius error)`` of the ID of ``A`` (B, n, m) float64.

    With ``errors=False`` the error is not computed and ``None`` is returned in its place.
    """
    piv, R, ranks, total2 = factor(A, eps, target, method, ws, live)
    T = interp_from_r(piv, R, A.shape[2])
    if not errors:
        return piv, ranks, T, None
    # A[:, I] T = Q R11 R11⁻¹ R = Q R (Q orthonormal), so ||A - A[:, I] T||² = ||A||² - ||R||².
    # The difference loses ~1e-16 ||A||² to cancellation (QR path; the Gram path's R is good to
    # ~1e-16 κ², so ~1e-10 for eps = 1e-3): below that floor it is recomputed directly.
    floor = 1e-12 if resolve(method, eps, A.shape[2]) == "qr" else 1e-8
    resid2 = (total2 - torch.linalg.vector_norm(R, dim=(1, 2)).square()).clamp_min(0.0)
    redo = (resid2 < floor * total2).nonzero().squeeze(1)
    if redo.numel():
        resid2[redo] = _direct_residual2(A, piv, T, redo, ws)
    err = torch.where(total2 > 0, (resid2 / total2.clamp_min(1e-300)).sqrt(), 0.0)
    return piv, ranks, T, err
