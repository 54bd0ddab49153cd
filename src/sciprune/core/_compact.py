"""Compaction of structured-pruned MLPs, and CSR export of unstructured-pruned ones.

Structured pruning (see ``core/_masks.py``) zeroes a hidden neuron's incoming row, bias and outgoing
column but keeps it in the dense tensors. :func:`compact` builds a physically smaller
:class:`~sciprune.nn.mlp.MLP` with the same outputs. Hidden neuron ``j`` of layer ``l`` (weights
``W_l`` of shape ``(out, in)``) is removed when

* its outgoing column :math:`W_{l+1}[:, j]` is zero: its output is never used; or
* its incoming row :math:`W_l[j, :]` is zero: it outputs the constant :math:`c_j =
  \\sigma_l(b_l[j])`, which is folded into the next bias, :math:`b_{l+1} \\mathrel{+}=
  W_{l+1}[:, j]\\, c_j` (this matters when :math:`\\sigma_l(b_l[j]) \\neq 0`, e.g. a sigmoid, or a
  ReLU with a positive bias).

Removals cascade (a removed row can empty a column of the layer before, and the reverse), so the
rules are applied until nothing changes. Tests for "zero" are exact (``== 0``).

:func:`to_csr` and :class:`CSRMLP` serve unstructured masks. On CPU, torch's CSR kernels rarely
beat a dense pass below ~95 % sparsity for widths ≤ 256 (measured break-even 81-97 % depending on
width and batch, and never at batch 1: ``specs/pruning_libs.md`` §8); structured pruning plus
:func:`compact` is the reliable way to a faster network.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from sciprune.core._activations import get_activation
from sciprune.core._io import build_model
from sciprune.core._masks import get_masks, set_mask
from sciprune.core._units import MLPLike
from sciprune.errors import InputError

MLP = MLPLike  # the MLP family (sciprune.nn.mlp.MLP), seen through its protocol: core imports no family


def mlp_from_layers(weights: list[Tensor], biases: list[Tensor], activations: list[str], family: str = "MLP") -> MLPLike:
    """A registered MLP-like family (default ``"MLP"``) holding copies of the given ``(out, in)``
    weights and ``(out,)`` biases."""
    sizes = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
    net = build_model({"class": family, "sizes": sizes, "activations": list(activations)}, dtype=weights[0].dtype)
    net = net.to(weights[0].device)
    if not isinstance(net, MLPLike):
        raise InputError(f"family {family!r} is not MLP-like (sizes, activations, linears)")
    with torch.no_grad():
        for layer, w, b in zip(net.linears, weights, biases):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    return net


def _removable(Ws: list[Tensor], l: int) -> tuple[Tensor, Tensor]:
    """Masks over the neurons of hidden layer ``l``: (dead outgoing column, zero incoming row)."""
    return (Ws[l + 1] == 0).all(dim=0), (Ws[l] == 0).all(dim=1)


def compact(model: nn.Module) -> nn.Module:
    """A physically smaller network with the same outputs as the structured-pruned ``model``.

    An MLP goes through :func:`compact_mlp`; any other family through its declared groups
    (:func:`sciprune.core._shrink.compact_units`). :func:`compact_with_indices` also returns the
    kept indices.
    """
    return compact_with_indices(model)[0]


def compact_with_indices(model: nn.Module) -> tuple[nn.Module, dict[str, Tensor]]:
    """:func:`compact` plus ``keep[group]``: ``(members, k)`` original indices of the surviving
    neurons of each prunable group (``"layers.l"`` for an MLP's hidden layer ``l``), so weights can
    be rewound through compaction."""
    if isinstance(model, MLPLike):
        small, keep = _compact_mlp(model)
        return small, {f"layers.{l}": k[None].cpu() for l, k in enumerate(keep)}
    from sciprune.core._shrink import compact_units

    return compact_units(model)


def compact_mlp(mlp: MLPLike) -> MLPLike:
    """A physically smaller MLP with the same outputs as the structured-pruned ``mlp``.

    Hidden neurons with a zero outgoing column, or a zero incoming row (their constant output
    :math:`\\sigma(b_j)` is folded into the next layer's bias), are removed until none is left.
    A layer is never emptied: if every neuron of a layer goes, one *null* neuron is kept (zero
    incoming row, zero bias, zero outgoing column: it contributes nothing for any activation,
    and its entries are masked). Masks on surviving entries are carried over (restricted); a
    masked bias entry that receives a folded constant is unmasked (its value is no longer a
    free weight but part of the function). The result has ``mlp``'s dtype; the input and output
    widths are unchanged.
    """
    return _compact_mlp(mlp)[0]


def _compact_mlp(mlp: MLPLike) -> tuple[MLPLike, list[Tensor]]:
    if not isinstance(mlp, MLP):
        raise InputError(f"compact needs a sciprune MLP; got {type(mlp).__name__}")
    Ws = [layer.weight.detach().clone() for layer in mlp.linears]
    bs = [layer.bias.detach().clone() for layer in mlp.linears]
    masks = get_masks(mlp)
    L = len(Ws)
    keep = [torch.arange(w.shape[0], device=w.device) for w in Ws[:-1]]  # surviving original indices
    unmask: list[Tensor] = [torch.zeros(b.shape[0], dtype=torch.bool, device=b.device) for b in bs]
    null = [False] * (L - 1)
    changed = True
    while changed:
        changed = False
        for l in range(L - 1):
            if null[l]:
                continue
            dead_out, zero_in = _removable(Ws, l)
            drop = dead_out | zero_in
            if not bool(drop.any()):
                continue
            consts = get_activation(mlp.activations[l])(bs[l]) * (zero_in & ~dead_out)
            fold = Ws[l + 1] @ consts.to(Ws[l + 1].dtype)  # b_{l+1} += W_{l+1}[:, j] c_j
            bs[l + 1] = bs[l + 1] + fold
            unmask[l + 1][keep[l + 1] if l + 1 < L - 1 else slice(None)] |= fold != 0
            if bool(drop.all()):  # keep one null neuron
                null[l] = True
                drop = torch.ones_like(drop)
                drop[0] = False
                Ws[l][0].zero_()
                bs[l][0] = 0.0
                Ws[l + 1][:, 0] = 0.0
            stay = ~drop
            keep[l] = keep[l][stay]
            Ws[l], bs[l] = Ws[l][stay], bs[l][stay]
            Ws[l + 1] = Ws[l + 1][:, stay]
            changed = True
    small = mlp_from_layers(Ws, bs, mlp.activations, str(getattr(mlp, "arch", {}).get("class", "MLP")))
    _carry_masks(small, masks, keep, null, unmask)
    return small, keep


def _carry_masks(
    small: MLPLike, masks: dict[str, Tensor], keep: list[Tensor], null: list[bool], unmask: list[Tensor]
) -> None:
    L = len(small.layers)
    full = [slice(None)]
    rows = keep + full  # original indices of each layer's outputs (the output layer is never pruned)
    cols = full + keep  # ... and of its inputs
    for l in range(L):
        w_name, b_name = f"layers.{l}.weight", f"layers.{l}.bias"
        dead_row = l < L - 1 and null[l]
        dead_col = l > 0 and null[l - 1]
        if w_name in masks or dead_row or dead_col:
            w = small.linears[l].weight
            m = masks[w_name][rows[l]][:, cols[l]] if w_name in masks else w.new_ones(w.shape, dtype=torch.bool)
            if dead_row:
                m[0] = False
            if dead_col:
                m[:, 0] = False
            set_mask(small, w_name, m)
        if b_name in masks or dead_row:
            b = small.linears[l].bias
            m = (masks[b_name] | unmask[l])[rows[l]] if b_name in masks else b.new_ones(b.shape, dtype=torch.bool)
            if dead_row:
                m[0] = False
            set_mask(small, b_name, m)


def _csr(w: Tensor) -> Tensor:
    with warnings.catch_warnings():  # torch warns once that CSR support is beta
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return w.to_sparse_csr()


def to_csr(mlp: MLPLike) -> list[Tensor]:
    """The weight matrices of ``mlp`` as ``torch.sparse_csr`` tensors (exact zeros dropped)."""
    if not isinstance(mlp, MLP):
        raise InputError(f"to_csr needs a sciprune MLP; got {type(mlp).__name__}")
    return [_csr(layer.weight.detach()) for layer in mlp.linears]


class CSRMLP(nn.Module):
    """An MLP whose weights are stored in CSR form: ``h ← σ_l(W_l h + b_l)`` with ``W_l`` sparse.

    Same outputs as the masked dense ``mlp`` it is built from. Each weight is kept as three dense
    buffers (``crow_l``, ``col_l``, ``val_l``: ``state_dict`` and ``deepcopy`` work) and viewed as a
    CSR tensor in :meth:`forward`. Inference only (no gradients through the sparse weights).
    See the module docstring for when CSR pays off (rarely, below ~95 % sparsity on CPU).
    """

    def __init__(self, mlp: MLPLike) -> None:
        super().__init__()
        if not isinstance(mlp, MLP):
            raise InputError(f"CSRMLP needs a sciprune MLP; got {type(mlp).__name__}")
        self.activations = list(mlp.activations)
        self.shapes = [tuple(int(v) for v in layer.weight.shape) for layer in mlp.linears]
        self._fns = [get_activation(a) for a in self.activations]
        for l, (layer, w) in enumerate(zip(mlp.linears, to_csr(mlp))):
            self.register_buffer(f"crow_{l}", w.crow_indices().clone())
            self.register_buffer(f"col_{l}", w.col_indices().clone())
            self.register_buffer(f"val_{l}", w.values().clone())
            self.register_buffer(f"bias_{l}", layer.bias.detach().clone())

    def csr_weights(self) -> list[Tensor]:
        """The weights as ``torch.sparse_csr`` tensors (views of the buffers)."""
        out = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            for l, shape in enumerate(self.shapes):
                crow, col, val = (getattr(self, f"{k}_{l}") for k in ("crow", "col", "val"))
                out.append(torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False))
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1]).T  # (in, N): CSR @ dense
        for l, (w, fn) in enumerate(zip(self.csr_weights(), self._fns)):
            h = fn(torch.addmm(getattr(self, f"bias_{l}").unsqueeze(1), w, h))
        return h.T.reshape(*lead, h.shape[0])
