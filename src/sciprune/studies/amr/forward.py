"""The AMR error check's forward of the original network, skipping each element's dead inputs.

For ``B`` elements with ``n`` samples each, layer ``l`` computes
:math:`h_{l+1} = \\sigma_l(h_l W_l^\\top + b_l)` per element on only the columns of :math:`h_l`
that are nonzero on some of the element's samples (a ReLU neuron that is off on a whole small
element contributes exact zeros; on the shipped INRs 40-95 % of each layer's inputs on an element).
Only exact zeros are left out of the sums, so the values equal ``mlp(x)`` up to rounding. The
ID's own forward (:mod:`sciprune.core._idprune`) skips the same columns; this module re-uses its
per-layer kernel.
"""

from __future__ import annotations

from torch import Tensor

from sciprune.core._idfactor import live_columns
from sciprune.core._idprune import FORWARD_COMPACT_BELOW, _hidden_layer, _live
from sciprune.nn.mlp import MLP


def forward_live(mlp: MLP, x: Tensor) -> Tensor:
    """``mlp(x)`` for B independent sample sets ``x`` (B, n, d_in) -> (B, n, d_out)."""
    B, n, _ = x.shape
    h, cols = x.reshape(B * n, -1), None
    for l in range(len(mlp.linears)):
        h = _hidden_layer(mlp, l, h, h.new_empty(B * n, mlp.sizes[l + 1]), cols)
        if l + 1 < len(mlp.linears):
            cols = live_columns(_live(h.view(B, n, -1), mlp.activations[l]), FORWARD_COMPACT_BELOW)
    return h.view(B, n, -1)
