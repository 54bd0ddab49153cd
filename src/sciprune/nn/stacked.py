"""A stacked ensemble: ``P`` independent MLPs of one architecture trained as one model.

Layer ``l`` holds ``weight`` ``[P, out, in]`` and ``bias`` ``[P, out]``; a forward is one batched
matmul per layer (``torch.baddbmm``):

.. math:: h^{(p)}_{l+1} = \\sigma_l\\big(h^{(p)}_l W_l^{(p)\\top} + b_l^{(p)}\\big), \\quad p = 1..P.

The member axis is axis 0 of every parameter (``member_axes=1`` in the pruning units), so each
member gets its own masks and its own sparsity. Initialised from ``generator``, member ``p`` holds
exactly the weights of the ``p``-th of ``P`` MLPs ``MLP(sizes, activation, generator=generator)`` drawn
in turn from that generator (so :meth:`StackedMLP.from_members` of such MLPs is the same ensemble).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciprune.core import PruningUnits, chain_units, compact_state, load_state_dict, register_family
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP, get_activation


class StackedLinear(nn.Module):
    """``P`` linear maps ``in -> out``: ``weight`` ``[P, out, in]``, ``bias`` ``[P, out]``."""

    def __init__(self, members: int, in_features: int, out_features: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.zeros(members, out_features, in_features, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(members, out_features, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[P, N, in]`` -> ``[P, N, out]``."""
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedMLP(nn.Module):
    """``P`` MLPs with widths ``sizes`` evaluated together.

    Args:
        members: ``P``.
        sizes, activation, output_activation: as for :class:`~sciprune.nn.mlp.MLP`.
        generator: required: the source of the initial weights, drawn member after member as
            :class:`~sciprune.nn.mlp.MLP` draws them (PyTorch's ``nn.Linear`` scheme); ``None`` only
            where the weights are loaded next (zeros: :meth:`from_arch`, :meth:`from_members`).

    ``forward(x)``: ``x`` is ``[N, d_in]`` (every member sees the same batch) or ``[P, N, d_in]``;
    the result is ``[P, N, d_out]``.
    """

    def __init__(
        self,
        members: int,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "relu",
        *,
        output_activation: str = "identity",
        generator: torch.Generator | None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if int(members) < 1:
            raise InputError(f"StackedMLP needs at least one member; got {members}")
        template = MLP(sizes, activation, output_activation=output_activation, generator=None, dtype=dtype)  # validates
        self.members = int(members)
        self.sizes: list[int] = list(template.sizes)
        self.activations: list[str] = list(template.activations)
        self._fns = [get_activation(a) for a in self.activations]
        self.layers = nn.ModuleList(
            StackedLinear(self.members, i, o, dtype=dtype) for i, o in zip(self.sizes[:-1], self.sizes[1:])
        )
        if generator is not None:
            with torch.no_grad():
                for p in range(self.members):
                    for layer in self.stacked:
                        bound = 1.0 / math.sqrt(layer.in_features)
                        layer.weight[p].uniform_(-bound, bound, generator=generator)
                        layer.bias[p].uniform_(-bound, bound, generator=generator)

    @property
    def stacked(self) -> list[StackedLinear]:
        return [m for m in self.layers if isinstance(m, StackedLinear)]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        for layer, fn in zip(self.layers, self._fns):
            x = fn(layer(x))
        return x

    @property
    def arch(self) -> dict[str, object]:
        return {"class": "StackedMLP", "members": self.members, "sizes": list(self.sizes),
                "activations": list(self.activations)}

    @classmethod
    def from_arch(cls, arch: dict[str, object], *, dtype: torch.dtype = torch.float32) -> "StackedMLP":
        if arch.get("class") != "StackedMLP":
            raise InputError(f"checkpoint architecture class {arch.get('class')!r}; expected 'StackedMLP'")
        members, sizes, acts = arch.get("members"), arch.get("sizes"), arch.get("activations")
        if not (isinstance(members, int) and isinstance(sizes, list) and isinstance(acts, list)):
            raise InputError(f"StackedMLP architecture needs 'members' (int), 'sizes' and 'activations' (lists); got {arch}")
        return cls(members, sizes, acts, generator=None, dtype=dtype)

    def member(self, p: int) -> MLP:
        """A copy of member ``p`` as a plain :class:`~sciprune.nn.mlp.MLP` (masks not carried)."""
        return MLP.from_layers([m.weight[p].detach() for m in self.stacked],
                               [m.bias[p].detach() for m in self.stacked], self.activations)

    @classmethod
    def from_members(cls, mlps: Sequence[MLP]) -> "StackedMLP":
        """Stack MLPs of one architecture (copies of their weights)."""
        first = mlps[0]
        if any(m.sizes != first.sizes or m.activations != first.activations for m in mlps):
            raise InputError("from_members needs MLPs of one architecture (same sizes and activations)")
        w = first.linears[0].weight
        out = cls(len(mlps), first.sizes, first.activations, generator=None, dtype=w.dtype).to(w.device)
        with torch.no_grad():
            for l, layer in enumerate(out.stacked):
                layer.weight.copy_(torch.stack([m.linears[l].weight for m in mlps]))
                layer.bias.copy_(torch.stack([m.linears[l].bias for m in mlps]))
        return out

    def pruning_units(self) -> PruningUnits:
        """Per layer ``layers.l``: its ``[P, out, in]`` weight (one member axis), and its neurons as a
        group (row, bias, next layer's column; the output layer's group declared but not prunable by
        default): :func:`~sciprune.core._units.chain_units` with ``member_axes=1``."""
        return chain_units(self.sizes, self.activations, member_axes=1, members=self.members)

    def compact_units(self, keep: dict[str, Tensor]) -> "StackedMLP":
        """A narrower ensemble keeping, per hidden layer ``layers.i`` and member ``p``, the neurons
        ``keep["layers.i"][p]`` (the same count in every member; see :mod:`sciprune.core._shrink`)."""
        sd = compact_state(self, keep)
        sizes = [self.sizes[0]] + [
            int(keep[f"layers.{i}"].shape[1]) if f"layers.{i}" in keep else self.sizes[i + 1] for i in range(len(self.sizes) - 2)
        ] + [self.sizes[-1]]
        w = self.stacked[0].weight
        small = StackedMLP(self.members, sizes, self.activations, generator=None, dtype=w.dtype).to(w.device)
        load_state_dict(small, sd)
        return small

    def flops_per_member(self) -> list[int]:
        """FLOPs of one forward of one sample through each member (``2 nnz(W) + nnz(b)`` per layer)."""
        return [sum(2 * int((m.weight[p] != 0).sum()) + int((m.bias[p] != 0).sum()) for m in self.stacked)
                for p in range(self.members)]

    def flops(self) -> int:
        """FLOPs of one forward of one sample through all members."""
        return sum(self.flops_per_member())

    def extra_repr(self) -> str:
        return f"members={self.members}, sizes={self.sizes}, activations={self.activations}"


register_family("StackedMLP", StackedMLP.from_arch)
