r"""The flat layout of θ: ShapeNet's linear maps and where their weights sit in ParameterNet's output.

**Flat layout of θ** (``specs/nif.md`` §2.4): all weight blocks first, then all bias blocks, in
ShapeNet order; a block of a linear map ``fan_in → fan_out`` is reshaped ``(fan_in, fan_out)``,
row-major, so entry ``(i, o)`` sits at ``offset + i·fan_out + o``. ``nlayers`` counts the *hidden*
``n×n`` maps only (upstream issue #7): ShapeNet has ``nlayers + 2`` linear maps without ResNet blocks.

θ is the output of ParameterNet's last layer (:data:`LAST`): θ entry ``k`` is row ``k`` of its
weight and entry ``k`` of its bias. Unlike :class:`sciprune.nn.hypernet.ShapeNetLayout` (core's
layout of an MLP ShapeNet), :class:`ShapeLayout` also describes SIREN ResNet blocks (roles
``res_a``, ``res_b``: ``W_a, W_b`` interleaved along the stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciprune.errors import InputError


LAST = "pnet.last"  # ParameterNet's last layer: its rows generate θ


@dataclass(frozen=True)
class Linear:
    """One ShapeNet linear map and where its weights live in θ."""

    fan_in: int
    fan_out: int
    w_off: int
    b_off: int
    role: str  # "first" | "hidden" | "res_a" | "res_b" | "out"

    def w_pos(self, rows: Tensor | slice | None = None, cols: Tensor | None = None) -> Tensor:
        """θ positions of the weight block, shape ``(fan_in, fan_out)`` (sub-indexed by rows / cols)."""
        pos = self.w_off + torch.arange(self.fan_in * self.fan_out).view(self.fan_in, self.fan_out)
        if rows is not None:
            pos = pos[rows]
        if cols is not None:
            pos = pos[:, cols]
        return pos

    def b_pos(self) -> Tensor:
        return self.b_off + torch.arange(self.fan_out)


class ShapeLayout:
    """The linear maps of a ShapeNet and their offsets in θ (weights first, then biases)."""

    def __init__(self, d_x: int, d_u: int, widths: Sequence[int], kind: str, resblock: bool) -> None:
        self.d_x, self.d_u, self.kind, self.resblock = d_x, d_u, kind, resblock
        self.widths = [int(w) for w in widths]
        dims, roles = [d_x], ["first"]
        for i, w in enumerate(self.widths):
            dims.append(w)
            if i > 0:
                roles.append(("res_a" if i % 2 == 1 else "res_b") if resblock else "hidden")
        roles.append("out")
        dims.append(d_u)
        self._check(dims)
        sizes = [(dims[i], dims[i + 1]) for i in range(len(dims) - 1)]
        n_w = sum(a * b for a, b in sizes)
        self.linears: list[Linear] = []
        w_off, b_off = 0, n_w
        for (a, b), role in zip(sizes, roles):
            self.linears.append(Linear(a, b, w_off, b_off, role))
            w_off += a * b
            b_off += b
        self.size = b_off

    def _check(self, dims: list[int]) -> None:
        if min(dims) < 1:
            raise InputError(f"ShapeNet widths must be >= 1; got {dims}")
        if self.resblock and len(self.widths) % 2 == 0:
            raise InputError(f"a ResNet ShapeNet needs widths [n, g_1, n, g_2, n, ...]; got {self.widths}")
        if self.kind == "mlp" or self.resblock:  # a residual stream has one width
            stream = self.widths if self.kind == "mlp" else self.widths[0::2]
            if len(set(stream)) != 1:
                raise InputError(f"the residual stream of a ShapeNet has one width; got {stream}")

    @property
    def residual(self) -> bool:
        return self.kind == "mlp" or self.resblock
