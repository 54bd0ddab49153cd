r"""The POD / truncated-SVD baseline at a given number of stored numbers.

The snapshot matrix :math:`S \in \mathbb{R}^{(n_\text{space} d_u) \times n_p}` (one column per
distinct parameter) is approximated by its rank-``k`` truncated SVD :math:`U_k \Sigma_k V_k^\top`,
stored as :math:`U_k \Sigma_k` and :math:`V_k`: :math:`k (n_\text{space} d_u + n_p)` numbers. The
error is the relative L2 (Frobenius) error over the whole field, the RMSE its absolute twin.
"""

from __future__ import annotations

import numpy as np


def pod_curve(u: np.ndarray, grid: tuple[int, ...]) -> list[dict[str, float]]:
    """``[{rank, stored, rel_l2, rmse}]`` for every rank ``k = 1 … min(rows, cols)``."""
    n_p = grid[0]
    S = u.reshape(n_p, -1).T.astype(np.float64)  # (space·d_u, n_p)
    U, s, _ = np.linalg.svd(S, full_matrices=False)
    total = float((S**2).sum())
    out = []
    for k in range(1, len(s) + 1):
        resid = float((s[k:] ** 2).sum())
        out.append({"rank": k, "stored": k * (S.shape[0] + n_p), "rel_l2": float(np.sqrt(resid / total)),
                    "rmse": float(np.sqrt(resid / S.size))})
    return out


def pod_at(curve: list[dict[str, float]], stored: int) -> dict[str, float] | None:
    """The largest-rank POD storing at most ``stored`` numbers (None when even rank 1 needs more)."""
    fit = [c for c in curve if c["stored"] <= stored]
    return fit[-1] if fit else None
