r"""ParameterNet ``p → z → θ``, and the de-duplication of its input rows.

ParameterNet (``specs/nif.md`` §2): ``Dense(m, act)``, ``nlayers`` blocks (a shortcut
``h ← h + act(Dense(h))``, or with ``use_resblock`` a ResNet block
``h ← act(h + Dense_2(act(Dense_1(h))))``), a linear bottleneck ``Dense(r)`` to the latent
:math:`z(p)` and a linear last layer ``Dense(P)`` to :math:`θ(p) = W_\text{last}\, z(p) + b_\text{last}`.
In a batch of ``[p | x]`` rows the same ``p`` repeats (one snapshot's parameters for many points),
so the models (with ``dedup``, the default) run ParameterNet once per distinct row
(:func:`unique_rows`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciprune.nn.nif.activations import _act


def unique_rows(p: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct rows of ``p`` ``(N, d)`` (lexicographic order) and each row's index among them.

    The same result as ``torch.unique(p, dim=0, return_inverse=True)`` from 1-D sorts only (one
    per column, the row key re-compressed after each): ``unique(dim=0)`` walks rows one by one and
    took ~1 s for 65,536 rows, longer than the whole ShapeNet pass.
    """
    n = p.shape[0]
    key = torch.zeros(n, dtype=torch.long, device=p.device)
    for j in range(p.shape[1]):
        vals, inv = torch.unique(p[:, j], return_inverse=True)
        key = torch.unique(key * vals.numel() + inv, return_inverse=True)[1]
    count = int(key.max()) + 1 if n else 0
    first = torch.full((count,), n, dtype=torch.long, device=p.device)
    first = first.scatter_reduce(0, key, torch.arange(n, device=p.device), reduce="amin")
    return p[first], key


class ParameterNet(nn.Module):
    """``p → z`` (latent, linear bottleneck) ``→ θ`` (``last``, linear)."""

    first: nn.Linear
    bottleneck: nn.Linear
    last: nn.Linear

    def __init__(self, d_p: int, units: int, nlayers: int, latent: int, out: int, activation: str, resblock: bool) -> None:
        super().__init__()
        self.act = _act(activation)
        self.resblock = resblock
        self.first = nn.Linear(d_p, units)
        self.hidden = nn.ModuleList(nn.Linear(units, units) for _ in range(nlayers * (2 if resblock else 1)))
        self.bottleneck = nn.Linear(units, latent)
        self.last = nn.Linear(latent, out)

    def latent(self, p: Tensor) -> Tensor:
        h = self.act(self.first(p))
        if self.resblock:  # MLP_ResNet: y = act(x + Dense2(act(Dense1(x))))
            for a, b in zip(self.hidden[0::2], self.hidden[1::2]):
                h = self.act(h + b(self.act(a(h))))
        else:              # MLP_SimpleShortCut: y = x + act(Dense(x))
            for layer in self.hidden:
                h = h + self.act(layer(h))
        return self.bottleneck(h)

    def forward(self, p: Tensor) -> Tensor:
        return self.last(self.latent(p))
