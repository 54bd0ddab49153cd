"""Time-conditioned vector fields ``f(t, x)`` for neural ODEs and continuous normalising flows.

Two layer forms (FFJORD's, see ``specs/sparseflows.md`` §2.5), widths ``sizes = [d, h_1, ..., d]``,
activation :math:`\\sigma` after every layer but the last:

* :class:`ConcatField` ("concat"): the time is a column concatenated to each layer's input,
  :math:`h_{l+1} = \\sigma(W_l [t, h_l] + b_l)` with :math:`W_l` of shape ``(h_{l+1}, 1 + h_l)``
  (column 0 reads ``t``);
* :class:`ConcatSquashField` ("concatsquash"): each layer is
  :math:`h_{l+1} = \\sigma\\big((W_l h_l + b_l) \\odot \\mathrm{sigmoid}(g_l t + c_l) + a_l t\\big)`,
  i.e. ``Linear(h)(x) * sigmoid(gate(t)) + hyper_bias(t)`` with ``gate = Linear(1, out)`` and
  ``hyper_bias = Linear(1, out, bias=False)``.

``forward(t, x)`` takes ``t`` as a scalar (or 0-d / ``(N,)`` / ``(N, 1)`` tensor) and ``x`` ``(N, d)``
(the torchdiffeq convention). Pruning units: the weight units are the main weights (``W_l``; the
tiny gate / hyper-bias maps are not weight units, as in the Sparse-flows protocol); a hidden neuron
owns its incoming row, its bias, its gate and hyper-bias rows (ConcatSquash) and the next layer's
column (at offset 1 after the time column for ``concat``): :func:`sciprune.core._units.chain_units`.
The output layer's group is declared but never prunable by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciprune.core import PruningUnits, chain_units, compact_state, load_state_dict, register_family
from sciprune.errors import InputError
from sciprune.nn.mlp import get_activation


def _time_column(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` as an ``(N, 1)`` column matching ``x`` ``(N, d)``."""
    tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if tt.dim() == 0:
        return tt.expand(x.shape[0], 1)
    return tt.reshape(-1, 1).expand(x.shape[0], 1)


def _check(sizes: Sequence[int], activation: str) -> list[int]:
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise InputError(f"vector-field sizes must be >= 2 positive widths; got {sizes}")
    get_activation(activation)
    return sizes


def _uniform_(t: Tensor, fan_in: int, gen: torch.Generator | None) -> None:
    if gen is None:
        t.zero_()
    else:
        bound = 1.0 / math.sqrt(fan_in)
        t.uniform_(-bound, bound, generator=gen)


class _Field(nn.Module):
    """Shared parts: sizes, activation, arch, rebuild at new widths."""

    kind = ""
    sizes: list[int]
    activation: str

    @property
    def arch(self) -> dict[str, object]:
        return {"class": type(self).__name__, "sizes": list(self.sizes), "activation": self.activation}

    @classmethod
    def from_arch(cls, arch: dict[str, object], *, dtype: torch.dtype = torch.float32) -> "_Field":
        if arch.get("class") != cls.__name__:
            raise InputError(f"checkpoint architecture class {arch.get('class')!r}; expected {cls.__name__!r}")
        sizes, act = arch.get("sizes"), arch.get("activation")
        if not (isinstance(sizes, list) and isinstance(act, str)):
            raise InputError(f"{cls.__name__} architecture needs 'sizes' (list) and 'activation' (str); got {arch}")
        return cls(sizes, act, generator=None, dtype=dtype)

    def _activations(self) -> list[str]:
        """The activation after each map: ``activation`` on hidden layers, none after the last."""
        return [self.activation] * (len(self.sizes) - 2) + ["identity"]

    def _hidden_widths(self, keep: dict[str, Tensor]) -> list[int]:
        n = len(self.sizes) - 1
        return [self.sizes[0]] + [
            int(keep[f"layers.{i}"].shape[1]) if f"layers.{i}" in keep else self.sizes[i + 1] for i in range(n - 1)
        ] + [self.sizes[-1]]

    def compact_units(self, keep: dict[str, Tensor]) -> "_Field":
        """The same field with hidden layer ``layers.i`` narrowed to ``keep["layers.i"][0]``."""
        sd = compact_state(self, keep)
        p = next(self.parameters())
        small = type(self)(self._hidden_widths(keep), self.activation, generator=None, dtype=p.dtype).to(p.device)
        load_state_dict(small, sd)
        return small

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}"


class ConcatField(_Field):
    """``f(t, x)`` with the time concatenated to every layer's input (see the module docstring).

    Args:
        sizes: ``[d, h_1, ..., d_out]``.
        activation: hidden activation name.
        generator: required: the source of the initial weights (``nn.Linear``'s scheme, fan-in
            ``1 + in``, layer by layer, weight then bias); ``None`` only where the weights are
            loaded next (zeros: :meth:`from_arch`, compaction).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", *, generator: torch.Generator | None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.sizes, self.activation = _check(sizes, activation), activation
        self._fn = get_activation(activation)
        with torch.random.fork_rng(devices=[]):
            self.layers = nn.ModuleList(nn.Linear(1 + i, o, dtype=dtype) for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        with torch.no_grad():
            for m in self.linears:
                _uniform_(m.weight, m.in_features, generator)
                _uniform_(m.bias, m.in_features, generator)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        tc = _time_column(t, x)
        layers = self.linears
        for l, layer in enumerate(layers):
            x = layer(torch.cat([tc, x], dim=1))
            if l + 1 < len(layers):
                x = self._fn(x)
        return x

    def pruning_units(self) -> PruningUnits:
        """:func:`~sciprune.core._units.chain_units` with the next layer's columns at offset 1 (after
        the time column)."""
        return chain_units(self.sizes, self._activations(), in_offset=1)

    def flops(self) -> int:
        """One evaluation for one sample: ``sum_l 2 nnz(W_l) + nnz(b_l)`` (time column included)."""
        return sum(2 * int((m.weight != 0).sum()) + int((m.bias != 0).sum()) for m in self.linears)


class ConcatSquashLinear(nn.Module):
    """``Linear(in, out)(x) * sigmoid(gate(t)) + hyper_bias(t)``."""

    def __init__(self, in_features: int, out_features: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            self.linear = nn.Linear(in_features, out_features, dtype=dtype)
            self.gate = nn.Linear(1, out_features, dtype=dtype)
            self.hyper_bias = nn.Linear(1, out_features, bias=False, dtype=dtype)

    def forward(self, tc: Tensor, x: Tensor) -> Tensor:
        return self.linear(x) * torch.sigmoid(self.gate(tc)) + self.hyper_bias(tc)


class ConcatSquashField(_Field):
    """``f(t, x)`` of ConcatSquash layers (see the module docstring); arguments as :class:`ConcatField`."""

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", *, generator: torch.Generator | None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.sizes, self.activation = _check(sizes, activation), activation
        self._fn = get_activation(activation)
        self.layers = nn.ModuleList(ConcatSquashLinear(i, o, dtype=dtype) for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        with torch.no_grad():
            for m in self.squash:
                _uniform_(m.linear.weight, m.linear.in_features, generator)
                _uniform_(m.linear.bias, m.linear.in_features, generator)
                for p in (m.gate.weight, m.gate.bias, m.hyper_bias.weight):
                    _uniform_(p, 1, generator)

    @property
    def squash(self) -> list[ConcatSquashLinear]:
        return [m for m in self.layers if isinstance(m, ConcatSquashLinear)]

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        tc = _time_column(t, x)
        layers = self.squash
        for l, layer in enumerate(layers):
            x = layer(tc, x)
            if l + 1 < len(layers):
                x = self._fn(x)
        return x

    def pruning_units(self) -> PruningUnits:
        """:func:`~sciprune.core._units.chain_units` over the layers' ``linear`` maps, with each neuron's
        gate and hyper-bias rows attached."""
        return chain_units(self.sizes, self._activations(), weight="linear.weight", bias="linear.bias",
                           rows=("gate.weight", "gate.bias", "hyper_bias.weight"))

    def flops(self) -> int:
        """One evaluation for one sample. Per layer and output ``o`` with a live (non-zero) row:
        the linear map ``2 nnz(W) + nnz(b)``; the gate ``g t + c`` (2 if either is non-zero), its
        sigmoid counted as 1, the product 1, the hyper-bias ``a t`` (2 if non-zero: multiply, add)."""
        total = 0
        for m in self.squash:
            w, b = m.linear.weight, m.linear.bias
            a = m.hyper_bias.weight[:, 0]
            total += 2 * int((w != 0).sum()) + int((b != 0).sum())
            main = (w != 0).any(dim=1) | (b != 0)
            total += 4 * int(main.sum())  # gate affine (2), sigmoid (1), product (1)
            total += 2 * int((a != 0).sum())
        return total


register_family("ConcatField", ConcatField.from_arch)
register_family("ConcatSquashField", ConcatSquashField.from_arch)
