"""Hypernetwork layout: where each ShapeNet node lives in ParameterNet's generated flat vector.

In NIF (``specs/nif.md`` §2.4) a ParameterNet maps parameters ``p`` to a latent ``z`` and a last
linear layer maps ``z`` to the flat vector :math:`\\theta_s = W_{last} z + b_{last}` of length ``P``
holding every ShapeNet weight and bias, **all weights first, then all biases**, each block
row-major in ``(in, out)`` layout:

.. code-block:: text

    [ W_1 (d_x·n_1) | W_2 (n_1·n_2) | ... | W_out (n_K·d_u) | b_1 (n_1) | ... | b_out (d_u) ]

Entry ``(i, o)`` of ``W_l`` sits at ``w_offset(l) + i * out_l + o``; ``b_l[o]`` at ``b_offset(l) + o``.
ShapeNet hidden node ``j`` of layer ``l`` owns its incoming column ``W_l[:, j]``, its bias
``b_l[j]`` and its outgoing row ``W_{l+1}[j, :]``; in ParameterNet that is a set of rows of
``W_last`` (``(P, r)`` as a torch weight) and entries of ``b_last``. :meth:`ShapeNetLayout.groups`
declares those as :class:`~sciprune.core._units.NeuronGroup` s, so ``core.prune`` with a
structured criterion removes whole ShapeNet nodes, and :func:`~sciprune.core._shrink.compact_state`
cuts them out of ``W_last`` / ``b_last``: the remaining positions, in order, are exactly the flat
vector of the narrower ShapeNet :meth:`ShapeNetLayout.narrowed` describes.

With ``residual=True`` (plain NIF: ``h <- act(h W_k + b_k) + h`` on equal-width hidden layers) a
node exists only as the same index across all hidden layers, so there is one group, ``shape``,
owning the index in every hidden layer.

The API is small on purpose: :class:`ShapeNetLayout` (sizes, offsets, :meth:`~ShapeNetLayout.unpack`,
:meth:`~ShapeNetLayout.node_positions`, :meth:`~ShapeNetLayout.groups`,
:meth:`~ShapeNetLayout.narrowed`). The NIF models themselves live in ``sciprune.nn.nif``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sciprune.core import NeuronGroup, Slice
from sciprune.errors import InputError


@dataclass(frozen=True)
class ShapeNetLayout:
    """A ShapeNet MLP of widths ``[d_x, n_1, ..., n_K, d_u]`` generated as one flat vector.

    ``activation`` names the hidden activation (the output layer is linear); it is recorded for
    the groups (a removed node's constant output is ``act(0)``).
    """

    widths: tuple[int, ...]
    activation: str = "tanh"
    residual: bool = False

    def __post_init__(self) -> None:
        w = [int(v) for v in self.widths]
        if len(w) < 3 or min(w) < 1:
            raise InputError(f"ShapeNet widths must be [d_x, n_1, ..., d_u] with a hidden layer; got {list(self.widths)}")
        if self.residual and len(set(w[1:-1])) != 1:
            raise InputError(f"a residual ShapeNet needs equal hidden widths; got {w[1:-1]}")
        object.__setattr__(self, "widths", tuple(w))

    @property
    def layers(self) -> int:
        """Number of linear maps (``K + 1``)."""
        return len(self.widths) - 1

    @property
    def size(self) -> int:
        """``P``: every weight and bias of the ShapeNet."""
        return sum(i * o + o for i, o in zip(self.widths[:-1], self.widths[1:]))

    def w_offset(self, l: int) -> int:
        """Start of ``W_l`` (``l = 0..K``; ``(in_l, out_l)`` row-major)."""
        return sum(i * o for i, o in zip(self.widths[:l], self.widths[1 : l + 1]))

    def b_offset(self, l: int) -> int:
        """Start of ``b_l``."""
        return self.w_offset(self.layers) + sum(self.widths[1 : l + 1])

    def unpack(self, theta: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``theta`` ``(B, P)`` -> weights ``(B, in_l, out_l)`` and biases ``(B, out_l)`` per layer."""
        if theta.shape[-1] != self.size:
            raise InputError(f"flat ShapeNet vector has {theta.shape[-1]} entries; expected {self.size} for widths {list(self.widths)}")
        ws, bs = [], []
        for l, (i, o) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            ws.append(theta[..., self.w_offset(l) : self.w_offset(l) + i * o].reshape(*theta.shape[:-1], i, o))
            bs.append(theta[..., self.b_offset(l) : self.b_offset(l) + o])
        return ws, bs

    def node_positions(self, l: int) -> tuple[Tensor, Tensor, Tensor]:
        """Positions owned by the ``n_l`` nodes of hidden layer ``l`` (``1..K``), each ``(n_l, k)``:
        incoming column of ``W_{l-1}`` (``k = in``), bias ``b_{l-1}`` (``k = 1``), outgoing row of ``W_l``."""
        if not 1 <= l < self.layers:
            raise InputError(f"hidden layer index must be in [1, {self.layers - 1}]; got {l}")
        fan_in, n, fan_out = self.widths[l - 1], self.widths[l], self.widths[l + 1]
        j = torch.arange(n)[:, None]
        inc = self.w_offset(l - 1) + torch.arange(fan_in)[None, :] * n + j
        bias = self.b_offset(l - 1) + j
        out = self.w_offset(l) + j * fan_out + torch.arange(fan_out)[None, :]
        return inc, bias, out

    @staticmethod
    def live_positions(weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """``(P,)`` booleans: generated entries that can be non-zero (a non-zero row of ParameterNet's
        last ``(P, r)`` weight, or a non-zero bias entry)."""
        live = (weight.detach() != 0).any(dim=1)
        return live | (bias.detach() != 0) if bias is not None else live

    def flops(self, live: Tensor | None = None) -> int:
        """ShapeNet FLOPs of one forward at one point: :math:`\\sum_l 2\\,\\mathrm{nnz}(W_l) +
        \\mathrm{nnz}(b_l)`, counting only the ``live`` generated entries (all when ``None``). The
        ParameterNet's cost (once per parameter vector, not per point) is the model's to add."""
        if live is None:
            live = torch.ones(self.size, dtype=torch.bool)
        total = 0
        for l, (i, o) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            total += 2 * int(live[self.w_offset(l) : self.w_offset(l) + i * o].sum())
            total += int(live[self.b_offset(l) : self.b_offset(l) + o].sum())
        return total

    def group_names(self) -> list[str]:
        return ["shape"] if self.residual else [f"shape.{l}" for l in range(1, self.layers)]

    def groups(self, weight: str, bias: str | None = None) -> tuple[NeuronGroup, ...]:
        """Neuron groups over ParameterNet's last layer: ``weight`` is its ``(P, r)`` weight's name,
        ``bias`` its ``(P,)`` bias's name. A node's incoming / outgoing positions are its
        ``incoming`` / ``outgoing`` rows; its bias row and every bias entry are ``attached``."""
        parts = [self.node_positions(l) for l in range(1, self.layers)]
        if self.residual:
            inc, b, outg = (torch.cat([p[k] for p in parts], dim=1) for k in range(3))
            parts = [(inc, b, outg)]
        out = []
        for name, (inc, b, outg) in zip(self.group_names(), parts):
            attached = [Slice(weight, 0, b)]
            if bias is not None:
                attached.append(Slice(bias, 0, torch.cat([inc, b, outg], dim=1)))
            out.append(NeuronGroup(name, int(inc.shape[0]), (Slice(weight, 0, inc),), (Slice(weight, 0, outg),),
                                   tuple(attached), activation=self.activation))
        return tuple(out)

    def narrowed(self, keep: dict[str, Tensor]) -> "ShapeNetLayout":
        """The layout after keeping, per group, ``keep[name]`` nodes (``(1, k)`` or ``(k,)`` indices;
        only the count matters: positions keep their order)."""
        w = list(self.widths)
        for name, idx in keep.items():
            k = int(idx.shape[-1])
            if name == "shape" and self.residual:
                w[1:-1] = [k] * (len(w) - 2)
            elif name.startswith("shape.") and not self.residual:
                w[int(name.split(".")[1])] = k
            else:
                raise InputError(f"unknown ShapeNet group {name!r}; expected one of {self.group_names()}")
        return ShapeNetLayout(tuple(w), self.activation, self.residual)
