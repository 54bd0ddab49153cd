r"""The initialisers of NIF (``specs/nif.md`` §2-3), drawn in float64 from an explicit generator.

* :func:`_tn`: Keras' ``TruncatedNormal(std)``, :math:`w \sim \mathcal{N}(0, \text{std}^2)` redrawn
  while :math:`|w| > 2\,\text{std}` (std 0.1: ParameterNet's layers, but for a hyper-initialised last
  layer, and the output bias ``c`` of the last-layer NIF);
* :func:`_uniform`: :math:`U(-b, b)` with a scalar or per-entry bound ``b`` (the hyper-initialisation
  of ParameterNet's last layer, §3, and the SIREN basis of :class:`~sciprune.nn.nif.models.NIFLastLayer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _tn(t: Tensor, g: torch.Generator | None, std: float = 0.1) -> None:
    """Keras TruncatedNormal(std) in place: normal(0, std) redrawn outside ±2·std."""
    with torch.no_grad():
        v = torch.randn(t.shape, generator=g, dtype=torch.float64)
        bad = v.abs() > 2.0
        while bool(bad.any()):
            v[bad] = torch.randn(int(bad.sum()), generator=g, dtype=torch.float64)
            bad = v.abs() > 2.0
        t.copy_(v * std)


def _uniform(shape: Sequence[int], bound: Tensor | float, g: torch.Generator | None) -> Tensor:
    return (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 2.0 - 1.0) * bound
