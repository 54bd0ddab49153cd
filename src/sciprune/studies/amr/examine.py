"""Which elements to refine: PruningAMR and BasicAMR verdicts, batched over elements.

Both criteria draw per-element samples in reference coordinates (:mod:`.sampling`), map them
through the element's multilinear map (uniform in the element for axis-aligned boxes, the
reference's ``B(E)``) and use the relative error, with offset ``c`` (``error_offset``),

.. math:: e(f, g) = \\Big(\\tfrac{1}{n m}\\sum_{i,k} |f_k(x_i) - g_k(x_i)|\\Big)
                    \\Big(\\tfrac{1}{n m}\\sum_{j,k} \\frac{1}{|f_k(x_j) + c|}\\Big).

**PruningAMR** (per element ``E``): ID-prune the INR (in its stored precision, float32 for the
shipped INRs, like the reference; the factorisation itself is float64) on ``n_ID`` samples in ``E``
(:func:`sciprune.core.idprune.id_prune`, tolerance ``epsilon``), keeping ``k_l`` of the ``m_l``
neurons of hidden layer ``l``; then on ``n_err`` fresh samples compare ``f`` with the pruned network
``f~`` (the forward of ``f`` there skips each element's dead ReLU inputs, like the ID's forward).
Refine iff :math:`e(f, \\tilde f) > T` or :math:`P_E = \\sum_l k_l / \\sum_l m_l > P`.

**BasicAMR**: refine iff :math:`e(f, u_h) > T` on ``n_err`` samples, ``u_h`` being the mesh's P1
interpolant (component ``component`` of ``f``).

Elements go through in fixed chunks (``CHUNK`` elements, one ``id_prune`` call each); ``workers``
threads take chunks in turn. Everything per chunk (the INR, its ID, the error checks) runs on the INR's
device (:meth:`INR.to`: ``--device cuda`` puts it on the GPU); only the verdicts come back to the CPU.
Chunks and samples never depend on the number of workers, so the verdicts do not either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciprune.core.idprune import id_prune
from sciprune.studies.amr.forward import forward_live
from sciprune.studies.amr.inr import INR
from sciprune.studies.amr.interp import corner_weights, map_reference
from sciprune.studies.amr.sampling import element_uniforms

CHUNK = 128
Lift = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[Iterable[object], int], Iterator[object]]


@dataclass(frozen=True)
class Verdicts:
    """Per examined element: ``flags`` (refine?), ``error`` ``e_E`` and, for PruningAMR, the
    proportion of kept neurons ``proportion`` and the kept neurons per layer ``ranks`` (B, L-1)."""

    flags: np.ndarray
    error: np.ndarray
    proportion: np.ndarray | None = None
    ranks: np.ndarray | None = None


def _np(t: Tensor) -> np.ndarray:
    """A result tensor as a NumPy array (from any device)."""
    return t.cpu().numpy()


def relative_error(f: Tensor, g: Tensor, offset: float) -> Tensor:
    """``e(f, g)`` per leading index: ``f``, ``g`` (B, n, m) -> (B,); exact ``g`` gives 0."""
    mae = (f - g).abs().mean(dim=(1, 2))
    inv = (f + offset).abs().reciprocal().mean(dim=(1, 2))
    return torch.where(mae == 0, torch.zeros_like(mae), mae * inv)


def _inputs(inr: INR, lift: Lift, corners: np.ndarray, xi: np.ndarray, dtype: torch.dtype = torch.float64) -> Tensor:
    return inr.features(torch.from_numpy(lift(map_reference(corners, xi)))).to(dtype)


def _pruning_chunk(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                   id_samples: int, error_samples: int, epsilon: float, threshold: float,
                   prop_threshold: float, offset: float) -> Verdicts:
    dim = corners.shape[2]
    net = inr.stored
    dtype = next(net.parameters()).dtype
    x_id = _inputs(inr, lift, corners, element_uniforms(seed, "id", it, ids, id_samples, dim), dtype)
    with torch.inference_mode():
        pruned = id_prune(net, x_id, eps=epsilon, errors=False)
        x_err = _inputs(inr, lift, corners, element_uniforms(seed, "err", it, ids, error_samples, dim), dtype)
        err = relative_error(forward_live(net, x_err).to(torch.float64), pruned(x_err), offset)
        prop = pruned.proportion_kept()
    flags = (err > threshold) | (prop > prop_threshold)
    return Verdicts(_np(flags), _np(err), _np(prop), _np(pruned.ranks))


def _ranks_chunk(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                 id_samples: int, epsilon: float, residual_samples: int = 0) -> Verdicts:
    net = inr.stored
    dtype = next(net.parameters()).dtype
    dim = corners.shape[2]
    x_id = _inputs(inr, lift, corners, element_uniforms(seed, "id", it, ids, id_samples, dim), dtype)
    with torch.inference_mode():
        if not residual_samples:
            pruned = id_prune(net, x_id, eps=epsilon, errors=False)
            prop = _np(pruned.proportion_kept())
            return Verdicts(np.zeros(len(ids), bool), np.zeros(len(ids)), prop, _np(pruned.ranks))
        rank = [min(dim + 1, m, id_samples) for m in net.sizes[1:-1]]
        affine = id_prune(net, x_id, rank=rank, errors=False)
        x_err = _inputs(inr, lift, corners, element_uniforms(seed, "err", it, ids, residual_samples, dim), dtype)
        diff = forward_live(net, x_err).to(torch.float64) - affine(x_err)
        err = diff.square().mean(dim=(1, 2))
    return Verdicts(np.zeros(len(ids), bool), _np(err), None, _np(affine.ranks))


def reference_corners(dim: int) -> np.ndarray:
    """The ``2^d`` corners of the reference element in lexicographic order (``c = sum_d b_d 2^d``)."""
    return np.array([[(c >> d) & 1 for d in range(dim)] for c in range(1 << dim)], dtype=np.float64)


def _interpolation_chunk(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                         id_samples: int, error_samples: int, epsilon: float | None) -> Verdicts:
    net = inr.stored
    dtype = next(net.parameters()).dtype
    B, C, dim = corners.shape
    cxi = np.broadcast_to(reference_corners(dim), (B, C, dim))
    xi_err = element_uniforms(seed, "err", it, ids, error_samples, dim)
    with torch.inference_mode():
        if epsilon is None:  # the INR itself on the error samples and the corners
            f = forward_live(net, _inputs(inr, lift, corners, np.concatenate([xi_err, cxi], axis=1), dtype))
            f_err, f_corner = _np(f[:, :error_samples].to(torch.float64)), _np(f[:, error_samples:].to(torch.float64))
            prop, ranks = None, None
        else:
            xi_id = np.concatenate([element_uniforms(seed, "id", it, ids, id_samples, dim), cxi], axis=1)
            x_id = _inputs(inr, lift, corners, xi_id, dtype)
            pruned = id_prune(net, x_id, eps=epsilon, errors=False)
            f_corner = _np(forward_live(net, x_id[:, id_samples:]).to(torch.float64))  # (B, C, m)
            f_err = _np(pruned(_inputs(inr, lift, corners, xi_err, dtype)).to(torch.float64))  # (B, n, m)
            prop, ranks = _np(pruned.proportion_kept()), _np(pruned.ranks)
    interp = np.einsum("bnc,bcm->bnm", corner_weights(xi_err), f_corner)
    err = np.square(f_err - interp).mean(axis=(1, 2))
    return Verdicts(np.zeros(B, bool), err, prop, ranks)


def _basic_chunk(inr: INR, lift: Lift, corners: np.ndarray, corner_vals: np.ndarray, ids: np.ndarray, *,
                 seed: int, it: int, error_samples: int, threshold: float, offset: float, component: int) -> Verdicts:
    xi = element_uniforms(seed, "err", it, ids, error_samples, corners.shape[2])
    with torch.inference_mode():
        f = inr.mlp(_inputs(inr, lift, corners, xi))[..., component : component + 1]
    u = np.einsum("bnc,bc->bn", corner_weights(xi), corner_vals)
    err = relative_error(f, torch.from_numpy(u).to(f.device).unsqueeze(2), offset)
    return Verdicts(_np(err > threshold), _np(err))


def _concat(parts: list[Verdicts]) -> Verdicts:
    def cat(xs: list[np.ndarray | None]) -> np.ndarray | None:
        if any(x is None for x in xs):
            return None
        return np.concatenate(xs)  # type: ignore[arg-type]

    if not parts:
        return Verdicts(np.zeros(0, bool), np.zeros(0))
    return Verdicts(
        np.concatenate([p.flags for p in parts]), np.concatenate([p.error for p in parts]),
        cat([p.proportion for p in parts]), cat([p.ranks for p in parts]),
    )


def _run_chunks(job: Callable[[slice], Verdicts], n: int, workers: int, progress: Progress | None) -> Verdicts:
    slices = [slice(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(slices)))) as pool:
        results: Iterable[Verdicts] = map(job, slices) if workers <= 1 else pool.map(job, slices)
        if progress is not None and len(slices) >= 8:  # a bar only where the pass takes a while
            results = progress(results, len(slices))  # type: ignore[arg-type,assignment]
        parts = list(results)
    return _concat(parts)


def examine_pruning(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                    id_samples: int, error_samples: int, epsilon: float, threshold: float,
                    prop_threshold: float, offset: float, workers: int = 1,
                    progress: Progress | None = None) -> Verdicts:
    """PruningAMR verdicts for the elements ``ids`` with corners ``corners`` (B, 2^d, d)."""
    def job(s: slice) -> Verdicts:
        return _pruning_chunk(inr, lift, corners[s], ids[s], seed=seed, it=it, id_samples=id_samples,
                              error_samples=error_samples, epsilon=epsilon, threshold=threshold,
                              prop_threshold=prop_threshold, offset=offset)

    return _run_chunks(job, len(ids), workers, progress)


def examine_ranks(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                  id_samples: int, epsilon: float, residual_samples: int = 0, workers: int = 1,
                  progress: Progress | None = None) -> Verdicts:
    """The bulk criterion's input (:mod:`.marking`) for the elements ``ids``; ``flags`` are zeros.

    Without ``residual_samples``: the ID ranks at tolerance ``epsilon`` (``ranks`` (B, L-1),
    ``proportion``). With it: the network ID-pruned to ``d + 1`` neurons a layer on the element
    (``ranks``) and its mean squared error against the network on that many fresh samples
    (``error``); ``proportion`` is ``None``."""
    def job(s: slice) -> Verdicts:
        return _ranks_chunk(inr, lift, corners[s], ids[s], seed=seed, it=it, id_samples=id_samples, epsilon=epsilon,
                            residual_samples=residual_samples)

    return _run_chunks(job, len(ids), workers, progress)


def examine_interpolation(inr: INR, lift: Lift, corners: np.ndarray, ids: np.ndarray, *, seed: int, it: int,
                          id_samples: int, error_samples: int, epsilon: float | None, workers: int = 1,
                          progress: Progress | None = None) -> Verdicts:
    """The bulk criterion's default input (:mod:`.marking`, ``indicator = "interpolation"``) for the
    elements ``ids``; ``flags`` are zeros.

    Per element ``E``: the INR is ID-pruned (tolerance ``epsilon``) on ``id_samples`` samples in
    ``E`` plus its ``2^d`` corners; ``error`` is the mean squared difference, on ``error_samples``
    fresh samples (all output components), between the pruned network :math:`\\tilde f` and the
    multilinear interpolant of the INR's values at the corners,
    :math:`\\frac1n \\sum_i (\\tilde f(x_i) - I_E f(x_i))^2`; ``ranks`` are the kept neurons
    per layer and ``proportion`` their share. ``epsilon=None`` evaluates the INR itself instead of
    :math:`\\tilde f` (no ID; ``ranks`` and ``proportion`` are ``None``)."""
    def job(s: slice) -> Verdicts:
        return _interpolation_chunk(inr, lift, corners[s], ids[s], seed=seed, it=it, id_samples=id_samples,
                                    error_samples=error_samples, epsilon=epsilon)

    return _run_chunks(job, len(ids), workers, progress)


def examine_basic(inr: INR, lift: Lift, corners: np.ndarray, corner_vals: np.ndarray, ids: np.ndarray, *,
                  seed: int, it: int, error_samples: int, threshold: float, offset: float, component: int,
                  workers: int = 1, progress: Progress | None = None) -> Verdicts:
    """BasicAMR verdicts; ``corner_vals`` (B, 2^d) are the elements' constrained vertex values."""
    def job(s: slice) -> Verdicts:
        return _basic_chunk(inr, lift, corners[s], corner_vals[s], ids[s], seed=seed, it=it,
                            error_samples=error_samples, threshold=threshold, offset=offset, component=component)

    return _run_chunks(job, len(ids), workers, progress)
