"""Which elements to refine: PruningAMR and BasicAMR verdicts, batched over elements.

Both criteria draw per-element samples in reference coordinates (:mod:`.sampling`), map them
through the element's multilinear map (uniform in the element for axis-aligned boxes, the
reference's ``B(E)``) and use the relative error, with offset ``c`` (``error_offset``),

.. math:: e(f, g) = \\Big(\\tfrac{1}{n m}\\sum_{i,k} |f_k(x_i) - g_k(x_i)|\\Big)
                    \\Big(\\tfrac{1}{n m}\\sum_{j,k} \\frac{1}{|f_k(x_j) + c|}\\Big).

**PruningAMR** (per element ``E``): ID-prune the INR (in its stored precision, float32 for the
shipped INRs, like the reference; the factorisation itself is float64) on ``n_ID`` samples in ``E``
(:func:`sciprune.core._idprune.id_prune`, tolerance ``epsilon``), keeping ``k_l`` of the ``m_l``
neurons of hidden layer ``l``; then on ``n_err`` fresh samples compare ``f`` with the pruned network
``f~`` (the forward of ``f`` there skips each element's dead ReLU inputs, like the ID's forward).
Refine iff :math:`e(f, \\tilde f) > T` or :math:`P_E = \\sum_l k_l / \\sum_l m_l > P`.

**BasicAMR**: refine iff :math:`e(f, u_h) > T` on ``n_err`` samples, ``u_h`` being the mesh's P1
interpolant (component ``component`` of ``f``).

Everything a pass needs besides the elements is one frozen :class:`ElementPass` (built from the
config by :meth:`ElementPass.of`, which reads only the fields the mode uses); :func:`examine` runs it.
Elements go through in fixed chunks (``CHUNK`` elements, one ``id_prune`` call each); ``workers``
threads take chunks in turn. Everything per chunk (the INR, its ID, the error checks) runs on the INR's
device (:meth:`INR.to`: ``--device cuda`` puts it on the GPU); only the verdicts come back to the CPU.
Chunks and samples never depend on the number of workers, so the verdicts do not either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from sciprune.core import id_prune
from sciprune.studies.amr.config import AMRConfig
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


@dataclass(frozen=True)
class ElementPass:
    """One pass over elements: what every chunk needs besides the elements themselves (frozen).

    Attributes:
        kind: ``pruning`` (PruningAMR verdicts), ``basic`` (BasicAMR verdicts), ``interpolation``
            (bulk's default indicator input), ``residual`` (bulk: the error of the INR ID-pruned to
            ``d + 1`` neurons a layer) or ``ranks`` (bulk's rank indicators: the ID ranks at ``epsilon``).
        inr, lift: the network and the map from mesh points to its inputs.
        seed, it: the samples of element ``e`` are ``element_uniforms(seed, kind, it, e, n, d)``.
        id_samples, error_samples: ``n_ID`` and ``n_err`` per element (0 where the kind uses none).
        epsilon: the ID tolerance (``pruning``, ``ranks``; ``interpolation``: ``None`` evaluates the
            INR itself, a value its ID-pruned surrogate).
        threshold, prop_threshold, offset, component: ``pruning`` / ``basic`` verdict parameters
            (``T``, ``P``, the error offset ``c``, the output component BasicAMR interpolates).
        workers, progress: threads taking chunks in turn; a progress bar (results never depend on either).
    """

    kind: Literal["pruning", "basic", "interpolation", "residual", "ranks"]
    inr: INR
    lift: Lift
    seed: int
    it: int
    id_samples: int = 0
    error_samples: int = 0
    epsilon: float | None = None
    threshold: float = 0.0
    prop_threshold: float = 1.0
    offset: float = 0.0
    component: int = 0
    workers: int = 1
    progress: Progress | None = None

    @classmethod
    def of(cls, cfg: AMRConfig, inr: INR, lift: Lift, it: int, *, workers: int = 1,
           progress: Progress | None = None) -> ElementPass:
        """The pass ``cfg``'s mode (and, in bulk mode, its indicator) runs at iteration ``it``: only
        the fields that pass uses are read from ``cfg`` (the others keep their neutral defaults)."""
        common: dict[str, Any] = dict(inr=inr, lift=lift, seed=cfg.seed, it=it, workers=workers, progress=progress)
        if cfg.mode == "pruning":
            return cls("pruning", id_samples=cfg.id_sample_count(), error_samples=cfg.error_samples, epsilon=cfg.epsilon,
                       threshold=cfg.threshold, prop_threshold=cfg.prop_threshold, offset=cfg.error_offset, **common)
        if cfg.mode == "basic":
            return cls("basic", error_samples=cfg.error_samples, threshold=cfg.threshold, offset=cfg.error_offset,
                       component=cfg.component, **common)
        if cfg.mode != "bulk":
            raise ValueError(f"mode={cfg.mode} examines no elements")
        if cfg.indicator == "interpolation":
            eps = cfg.surrogate_epsilon
            return cls("interpolation", id_samples=cfg.id_sample_count() if eps is not None else 0,
                       error_samples=cfg.error_samples, epsilon=eps, **common)
        if cfg.indicator == "residual":
            return cls("residual", id_samples=cfg.id_sample_count(), error_samples=cfg.error_samples, **common)
        return cls("ranks", id_samples=cfg.id_sample_count(), epsilon=cfg.epsilon, **common)

    def samples(self, role: str, ids: np.ndarray, n: int, dim: int) -> np.ndarray:
        """Reference-element samples (B, n, d) of the elements ``ids`` for ``role`` (``"id"`` / ``"err"``)."""
        return element_uniforms(self.seed, role, self.it, ids, n, dim)

    def inputs(self, corners: np.ndarray, xi: np.ndarray, dtype: torch.dtype = torch.float64) -> Tensor:
        """The INR's inputs at reference points ``xi`` (B, n, d) of the elements with ``corners``."""
        return self.inr.features(torch.from_numpy(self.lift(map_reference(corners, xi)))).to(dtype)


def _pruning_chunk(p: ElementPass, corners: np.ndarray, ids: np.ndarray) -> Verdicts:
    dim = corners.shape[2]
    net = p.inr.stored
    dtype = next(net.parameters()).dtype
    assert p.epsilon is not None
    x_id = p.inputs(corners, p.samples("id", ids, p.id_samples, dim), dtype)
    with torch.inference_mode():
        pruned = id_prune(net, x_id, eps=p.epsilon, errors=False)
        x_err = p.inputs(corners, p.samples("err", ids, p.error_samples, dim), dtype)
        err = relative_error(forward_live(net, x_err).to(torch.float64), pruned(x_err), p.offset)
        prop = pruned.proportion_kept()
    flags = (err > p.threshold) | (prop > p.prop_threshold)
    return Verdicts(_np(flags), _np(err), _np(prop), _np(pruned.ranks))


def _ranks_chunk(p: ElementPass, corners: np.ndarray, ids: np.ndarray) -> Verdicts:
    net = p.inr.stored
    dtype = next(net.parameters()).dtype
    dim = corners.shape[2]
    x_id = p.inputs(corners, p.samples("id", ids, p.id_samples, dim), dtype)
    with torch.inference_mode():
        if p.kind == "ranks":
            assert p.epsilon is not None
            pruned = id_prune(net, x_id, eps=p.epsilon, errors=False)
            prop = _np(pruned.proportion_kept())
            return Verdicts(np.zeros(len(ids), bool), np.zeros(len(ids)), prop, _np(pruned.ranks))
        rank = [min(dim + 1, m, p.id_samples) for m in net.sizes[1:-1]]
        affine = id_prune(net, x_id, rank=rank, errors=False)
        x_err = p.inputs(corners, p.samples("err", ids, p.error_samples, dim), dtype)
        diff = forward_live(net, x_err).to(torch.float64) - affine(x_err)
        err = diff.square().mean(dim=(1, 2))
    return Verdicts(np.zeros(len(ids), bool), _np(err), None, _np(affine.ranks))


def reference_corners(dim: int) -> np.ndarray:
    """The ``2^d`` corners of the reference element in lexicographic order (``c = sum_d b_d 2^d``)."""
    return np.array([[(c >> d) & 1 for d in range(dim)] for c in range(1 << dim)], dtype=np.float64)


def _interpolation_chunk(p: ElementPass, corners: np.ndarray, ids: np.ndarray) -> Verdicts:
    net = p.inr.stored
    dtype = next(net.parameters()).dtype
    B, C, dim = corners.shape
    n = p.error_samples
    cxi = np.broadcast_to(reference_corners(dim), (B, C, dim))
    xi_err = p.samples("err", ids, n, dim)
    with torch.inference_mode():
        if p.epsilon is None:  # the INR itself on the error samples and the corners
            f = forward_live(net, p.inputs(corners, np.concatenate([xi_err, cxi], axis=1), dtype))
            f_err, f_corner = _np(f[:, :n].to(torch.float64)), _np(f[:, n:].to(torch.float64))
            prop, ranks = None, None
        else:
            xi_id = np.concatenate([p.samples("id", ids, p.id_samples, dim), cxi], axis=1)
            x_id = p.inputs(corners, xi_id, dtype)
            pruned = id_prune(net, x_id, eps=p.epsilon, errors=False)
            f_corner = _np(forward_live(net, x_id[:, p.id_samples:]).to(torch.float64))  # (B, C, m)
            f_err = _np(pruned(p.inputs(corners, xi_err, dtype)).to(torch.float64))  # (B, n, m)
            prop, ranks = _np(pruned.proportion_kept()), _np(pruned.ranks)
    interp = np.einsum("bnc,bcm->bnm", corner_weights(xi_err), f_corner)
    err = np.square(f_err - interp).mean(axis=(1, 2))
    return Verdicts(np.zeros(B, bool), err, prop, ranks)


def _basic_chunk(p: ElementPass, corners: np.ndarray, ids: np.ndarray, corner_vals: np.ndarray) -> Verdicts:
    xi = p.samples("err", ids, p.error_samples, corners.shape[2])
    with torch.inference_mode():
        f = p.inr.mlp(p.inputs(corners, xi))[..., p.component : p.component + 1]
    u = np.einsum("bnc,bc->bn", corner_weights(xi), corner_vals)
    err = relative_error(f, torch.from_numpy(u).to(f.device).unsqueeze(2), p.offset)
    return Verdicts(_np(err > p.threshold), _np(err))


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


_CHUNKS: dict[str, Callable[..., Verdicts]] = {
    "pruning": _pruning_chunk, "basic": _basic_chunk, "interpolation": _interpolation_chunk,
    "residual": _ranks_chunk, "ranks": _ranks_chunk,
}


def examine(p: ElementPass, corners: np.ndarray, ids: np.ndarray, corner_vals: np.ndarray | None = None) -> Verdicts:
    """The verdicts of pass ``p`` for the elements ``ids`` with corners ``corners`` (B, 2^d, d).

    ``pruning`` / ``basic``: ``flags`` (refine?) and ``error`` ``e_E`` (``basic`` needs
    ``corner_vals`` (B, 2^d), the elements' constrained vertex values). The bulk kinds leave
    ``flags`` zero: ``interpolation``: ``error`` = :math:`\\frac1n \\sum_i (g(x_i) - I_E f(x_i))^2` on
    ``error_samples`` fresh samples, ``g`` the INR (``epsilon=None``) or the INR ID-pruned at
    ``epsilon`` on ``id_samples`` samples plus the ``2^d`` corners (then ``ranks``, ``proportion``);
    ``residual``: ``error`` = the mean squared difference between the INR and the INR ID-pruned to
    ``d + 1`` neurons a layer (``ranks``); ``ranks``: the ID ranks at ``epsilon`` (``ranks``,
    ``proportion``).

    Elements go in fixed chunks of :data:`CHUNK` (one ``id_prune`` call each), taken in turn by
    ``p.workers`` threads; chunks and samples never depend on the number of workers.
    """
    chunk = _CHUNKS[p.kind]
    if (p.kind == "basic") != (corner_vals is not None):
        raise ValueError("the elements' corner values go with a basic pass, and only with it")
    arrays = (corners, ids) if corner_vals is None else (corners, ids, corner_vals)
    n = len(ids)
    slices = [slice(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    args: list[list[Any]] = [[p] * len(slices), *([a[s] for s in slices] for a in arrays)]
    with ThreadPoolExecutor(max_workers=max(1, min(p.workers, len(slices)))) as pool:
        results: Iterable[Verdicts] = map(chunk, *args) if p.workers <= 1 else pool.map(chunk, *args)
        if p.progress is not None and len(slices) >= 8:  # a bar only where the pass takes a while
            results = p.progress(results, len(slices))  # type: ignore[arg-type,assignment]
        parts = list(results)
    return _concat(parts)
