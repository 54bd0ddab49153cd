"""The AMR error check's dead-input-skipping forward equals the plain forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sciprune.core._idfactor as idfactor_module
import sciprune.core._idprune as idprune_module
from sciprune.nn.mlp import MLP
from sciprune.studies.amr.forward import forward_live


def _dead_relu_net(widths: list[int], seed: int, acts: list[str] | None = None) -> MLP:
    gen = torch.Generator().manual_seed(seed)
    sizes = [2, *widths, 2]
    ws = [torch.randn(o, i, generator=gen, dtype=torch.float64) / i**0.5 for i, o in zip(sizes, sizes[1:])]
    bs = [torch.randn(o, generator=gen, dtype=torch.float64) - 0.5 for o in sizes[1:]]
    return MLP.from_layers(ws, bs, acts or ["relu"] * len(widths) + ["identity"])


@pytest.mark.parametrize("acts", [None, ["relu", "tanh", "relu", "identity"]])
def test_forward_skipping_dead_inputs_matches_the_plain_forward(acts: list[str] | None) -> None:
    mlp = _dead_relu_net([64, 64, 64], 1, acts)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((50, 1, 2)) + 0.02 * rng.random((50, 96, 2)))  # 50 small boxes
    with torch.no_grad():
        h1 = torch.relu(mlp.linears[0](x))
        assert idfactor_module.live_columns(h1.amax(dim=1) != 0, idprune_module.FORWARD_COMPACT_BELOW) is not None  # the skipping path runs
        fast, plain = forward_live(mlp, x), mlp(x)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12 * float(plain.abs().max()))
