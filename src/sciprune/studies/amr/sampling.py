"""Per-element random samples that depend only on (seed, purpose, iteration, element id).

A counter-based generator, vectorised over elements: sample ``s`` (coordinate ``j``) of element
``e`` is

.. math:: u = \\mathrm{mix}\\big(k + (c + 1)\\,\\gamma\\big) \\,/\\, 2^{64},\\qquad
          c = e \\cdot 2^{32} + s\\,d + j,\\qquad k = \\mathrm{derive\\_seed}(seed, \\text{"amr"}, purpose, it),

with :math:`\\gamma` the golden-ratio increment and ``mix`` the SplitMix64 finaliser (Steele et al.,
"Fast splittable pseudorandom number generators", OOPSLA 2014). It is the same stream an
element-by-element loop would draw from a generator seeded with ``(seed, it, element)``, computed
for all elements at once, so the samples never depend on how many workers process the elements or
on which other elements are examined.
"""

from __future__ import annotations

import numpy as np

from sciprune.core import derive_seed

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def element_uniforms(seed: int, purpose: str, it: int, elements: np.ndarray, n: int, d: int) -> np.ndarray:
    """``(len(elements), n, d)`` float64 uniforms in [0, 1) for each element id in ``elements``."""
    elements = np.asarray(elements, dtype=np.uint64)
    if n * d >= 1 << 32:
        raise ValueError(f"n * d = {n * d} samples per element exceed 2^32")
    key = np.uint64(derive_seed(seed, "amr", purpose, it))
    local = np.arange(n * d, dtype=np.uint64)
    counter = (elements[:, None] << np.uint64(32)) | local[None, :]
    with np.errstate(over="ignore"):
        z = _mix(key + (counter + np.uint64(1)) * _GAMMA)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u.reshape(len(elements), n, d)
