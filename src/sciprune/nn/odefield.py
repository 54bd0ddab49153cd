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
column (at offset 1 after the time column for ``concat``). The output layer is never a prunable group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciprune.core.io import register_family
from sciprune.core.masks import load_state_dict
from sciprune.core.seeding import torch_generator
from sciprune.core.shrink import compact_state
from sciprune.core.units import NeuronGroup, PruningUnits, Slice, WeightUnit
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
        return cls(sizes, act, dtype=dtype)

    def _hidden_widths(self, keep: dict[str, Tensor]) -> list[int]:
        n = len(self.sizes) - 1
        return [self.sizes[0]] + [
            int(keep[f"layers.{i}"].shape[1]) if f"layers.{i}" in keep else self.sizes[i + 1] for i in range(n - 1)
        ] + [self.sizes[-1]]

    def compact_units(self, keep: dict[str, Tensor]) -> "_Field":
        """The same field with hidden layer ``layers.i`` narrowed to ``keep["layers.i"][0]``."""
        sd = compact_state(self, keep)
        p = next(self.parameters())
        small = type(self)(self._hidden_widths(keep), self.activation, dtype=p.dtype).to(p.device)
        load_state_dict(small, sd)
        return small

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}"


class ConcatField(_Field):
    """``f(t, x)`` with the time concatenated to every layer's input (see the module docstring).

    Args:
        sizes: ``[d, h_1, ..., d_out]``.
        activation: hidden activation name.
        seed: root seed of the initial weights (``nn.Linear``'s scheme, fan-in ``1 + in``); without
            one the weights are zeros, to be loaded.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", *, seed: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.sizes, self.activation = _check(sizes, activation), activation
        self._fn = get_activation(activation)
        with torch.random.fork_rng(devices=[]):
            self.layers = nn.ModuleList(nn.Linear(1 + i, o, dtype=dtype) for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        gen = torch_generator(seed, "ConcatField") if seed is not None else None
        with torch.no_grad():
            for m in self.linears:
                _uniform_(m.weight, m.in_features, gen)
                _uniform_(m.bias, m.in_features, gen)

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
        n = len(self.sizes) - 1
        weights = tuple(WeightUnit(f"layers.{i}.weight", layer=f"layers.{i}") for i in range(n))
        groups = []
        for i in range(n - 1):
            rows = torch.arange(self.sizes[i + 1])[:, None]
            groups.append(NeuronGroup(
                f"layers.{i}", self.sizes[i + 1],
                incoming=(Slice(f"layers.{i}.weight", 0, rows),),
                outgoing=(Slice(f"layers.{i + 1}.weight", 1, rows + 1, fold_into=f"layers.{i + 1}.bias"),),
                attached=(Slice(f"layers.{i}.bias", 0, rows),),
                activation=self.activation,
            ))
        return PruningUnits(weights, tuple(groups))

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

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", *, seed: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.sizes, self.activation = _check(sizes, activation), activation
        self._fn = get_activation(activation)
        self.layers = nn.ModuleList(ConcatSquashLinear(i, o, dtype=dtype) for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        gen = torch_generator(seed, "ConcatSquashField") if seed is not None else None
        with torch.no_grad():
            for m in self.squash:
                _uniform_(m.linear.weight, m.linear.in_features, gen)
                _uniform_(m.linear.bias, m.linear.in_features, gen)
                for p in (m.gate.weight, m.gate.bias, m.hyper_bias.weight):
                    _uniform_(p, 1, gen)

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
        n = len(self.sizes) - 1
        weights = tuple(WeightUnit(f"layers.{i}.linear.weight", layer=f"layers.{i}") for i in range(n))
        groups = []
        for i in range(n - 1):
            rows = torch.arange(self.sizes[i + 1])[:, None]
            pre = f"layers.{i}"
            groups.append(NeuronGroup(
                pre, self.sizes[i + 1],
                incoming=(Slice(f"{pre}.linear.weight", 0, rows),),
                outgoing=(Slice(f"layers.{i + 1}.linear.weight", 1, rows, fold_into=f"layers.{i + 1}.linear.bias"),),
                attached=(Slice(f"{pre}.linear.bias", 0, rows), Slice(f"{pre}.gate.weight", 0, rows),
                          Slice(f"{pre}.gate.bias", 0, rows), Slice(f"{pre}.hyper_bias.weight", 0, rows)),
                activation=self.activation,
            ))
        return PruningUnits(weights, tuple(groups))

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
