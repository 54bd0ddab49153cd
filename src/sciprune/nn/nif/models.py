r"""The NIF families (exact to the spec, ``specs/nif.md`` §2).

* :class:`NIF`: ShapeNet ``h = act(x W_1 + b_1)``; ``nlayers ×`` ``h ← act(h W_k + b_k) + h``;
  ``u = h W_out + b_out``; ParameterNet ``Dense(m, act) → nlayers × [h ← h + act(Dense(h))] →
  Dense(r) → Dense(P)``, every layer truncated-normal(0.1) at ±2σ (Keras' scheme).
* :class:`NIFMultiScale`: SIREN ShapeNet ``h = sin(ω₀·(h W) + b)`` (ω₀ on the matmul only, the bias
  unscaled), optional ResNet blocks ``g = sin(ω₀ h W_a + b_a)``, ``h ← ½(h + sin(ω₀ g W_b + b_b))``;
  ParameterNet's last layer hyper-initialised (§3) so that ShapeNet starts as an initialised SIREN.
* :class:`NIFLastLayer`: ``u = Φ(x)·a(p) + c`` with a trainable SIREN basis ``Φ`` (§2.3).

The first two generate every ShapeNet weight (:class:`~sciprune.nn.nif.hyper._HyperNIF`); the
last-layer NIF generates only the coefficients ``a(p)``, so its ShapeNet is trainable.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from sciprune.core import PruningUnits, WeightUnit
from sciprune.errors import InputError
from sciprune.nn.nif.hyper import _HyperNIF
from sciprune.nn.nif.initialisers import _tn, _uniform
from sciprune.nn.nif.parameternet import ParameterNet, unique_rows


class NIF(_HyperNIF):
    """Plain NIF (§2.1): MLP ShapeNet with shortcut layers; ParameterNet TN(0.1) everywhere.

    ``shape``: ``input_dim, output_dim, units, nlayers, activation`` (``swish`` | ``tanh``);
    ``parameter``: ``input_dim, latent_dim, units, nlayers, activation``. Optional ``widths``
    (set by compaction) overrides ``units`` (one residual width).
    """

    CLASS = "NIF"

    def __init__(self, shape: dict[str, Any], parameter: dict[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__(shape, parameter, kind="mlp", generator=generator)

    def _record_names(self) -> list[str]:
        return ["shape"] * (len(self.layout.linears) - 1)

    def _shape(self, x: Tensor, w: Tensor, record: list[Tensor] | None) -> Tensor:
        lins = self.layout.linears
        h = self.shape_act(self._lin(x, w, lins[0], 1.0))
        if record is not None:
            record.append(h)
        for lin in lins[1:-1]:
            h = self.shape_act(self._lin(h, w, lin, 1.0)) + h
            if record is not None:
                record.append(h)
        return self._lin(h, w, lins[-1], 1.0)


class NIFMultiScale(_HyperNIF):
    """NIF multi-scale (§2.2): SIREN ShapeNet, ω₀ on the matmul only, optional ResNet blocks.

    ``shape``: ``input_dim, output_dim, units, nlayers, omega_0, weight_init_factor, use_resblock``;
    ``parameter``: ``input_dim, latent_dim, units, nlayers, activation`` (``swish`` | ``tanh``),
    ``use_resblock``. ParameterNet's last layer is hyper-initialised (§3): kernel
    ``U(±√(6/r)·weight_init_factor)``, bias ``U(±s_j)`` with ``s = 1/d_x`` (first-layer weights),
    ``√(6/n)/ω₀`` (hidden weights), ``√(6/(2n))`` (output weights), ``1/n`` (all biases).
    (The sine ParameterNet of upstream is not ported.)
    """

    CLASS = "NIFMultiScale"

    def __init__(self, shape: dict[str, Any], parameter: dict[str, Any], *, generator: torch.Generator | None = None) -> None:
        if str(parameter.get("activation", "swish")) == "sine":
            raise InputError("a sine ParameterNet is not supported; use activation swish or tanh")
        super().__init__(shape, parameter, kind="siren", generator=generator)

    def _init(self, g: torch.Generator) -> None:
        last = self.pnet.last
        for p in self.pnet.parameters():
            if p is not last.weight and p is not last.bias:
                _tn(p, g)
        r = last.in_features
        wif = float(self.cfg_shape.get("weight_init_factor", 1e-3))
        n = int(self.cfg_shape["units"])
        s = torch.empty(self.layout.size, dtype=torch.float64)
        for lin in self.layout.linears:
            span = slice(lin.w_off, lin.w_off + lin.fan_in * lin.fan_out)
            s[span] = {"first": 1.0 / self.d_x, "out": math.sqrt(6.0 / (2 * n))}.get(lin.role, math.sqrt(6.0 / n) / self.omega_0)
            s[lin.b_off:lin.b_off + lin.fan_out] = 1.0 / n
        with torch.no_grad():
            last.weight.copy_(_uniform(last.weight.shape, math.sqrt(6.0 / r) * wif, g))
            last.bias.copy_(_uniform(last.bias.shape, s, g))

    def _record_names(self) -> list[str]:
        if not self.resblock:
            return [f"shape.{k + 1}" for k in range(len(self.layout.linears) - 1)]
        names = ["shape"]
        for k in range(len(self.layout.widths) // 2):
            names += [f"block.{k}", "shape"]
        return names

    def _shape(self, x: Tensor, w: Tensor, record: list[Tensor] | None) -> Tensor:
        lins, om = self.layout.linears, self.omega_0
        h = torch.sin(self._lin(x, w, lins[0], om))
        if record is not None:
            record.append(h)
        if self.resblock:
            for a, b in zip(lins[1:-1:2], lins[2:-1:2]):
                g = torch.sin(self._lin(h, w, a, om))
                h = 0.5 * (h + torch.sin(self._lin(g, w, b, om)))
                if record is not None:
                    record += [g, h]
        else:
            for lin in lins[1:-1]:
                h = torch.sin(self._lin(h, w, lin, om))
                if record is not None:
                    record.append(h)
        return self._lin(h, w, lins[-1], 1.0)


class NIFLastLayer(nn.Module):
    """The last-layer-linear NIF (§2.3): ``u = Φ(x)·a(p) + c``.

    Φ is a trainable SIREN on x (first, ``nlayers`` hidden, then a linear map to ``r·d_u``), ``a(p)``
    ParameterNet's ``r`` outputs (hyper-initialised with ``s = √(3/n)``), ``c`` a trainable bias.
    """

    CLASS = "NIFLastLayer"
    pnet: ParameterNet
    shape_layers: nn.ModuleList
    c: nn.Parameter
    dedup: bool

    def __init__(self, shape: dict[str, Any], parameter: dict[str, Any], *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg_shape, self.cfg_parameter = dict(shape), dict(parameter)
        d_x, d_u, n, L = (int(shape[k]) for k in ("input_dim", "output_dim", "units", "nlayers"))
        d_p, m, L_p, r = (int(parameter[k]) for k in ("input_dim", "units", "nlayers", "latent_dim"))
        self.d_p, self.d_x, self.d_u, self.r = d_p, d_x, d_u, r
        self.omega_0 = float(shape.get("omega_0", 30.0))
        self.pnet = ParameterNet(d_p, m, L_p, r, r, str(parameter.get("activation", "swish")), bool(parameter.get("use_resblock", False)))
        sizes = [d_x] + [n] * (L + 1) + [r * d_u]
        self.shape_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.c = nn.Parameter(torch.zeros(d_u))
        self.dedup = True
        if generator is not None:
            self._init(generator, n)

    def _init(self, g: torch.Generator, n: int) -> None:
        for p in self.pnet.parameters():
            _tn(p, g)
        with torch.no_grad():
            wif = float(self.cfg_shape.get("weight_init_factor", 1e-3))
            self.pnet.last.weight.copy_(_uniform(self.pnet.last.weight.shape, math.sqrt(6.0 / self.r) * wif, g))
            self.pnet.last.bias.copy_(_uniform(self.pnet.last.bias.shape, math.sqrt(3.0 / n), g))
            for k, lin in enumerate(self._linears()):
                fan = lin.in_features
                bound = 1.0 / fan if k == 0 else math.sqrt(6.0 / fan) / self.omega_0
                lin.weight.copy_(_uniform(lin.weight.shape, bound, g))
                lin.bias.copy_(_uniform(lin.bias.shape, 1.0 / math.sqrt(fan), g))
            _tn(self.c, g)

    @property
    def arch(self) -> dict[str, Any]:
        return {"class": self.CLASS, "shape": dict(self.cfg_shape), "parameter": dict(self.cfg_parameter)}

    @classmethod
    def from_arch(cls, arch: dict[str, Any], generator: torch.Generator | None = None, *, dtype: torch.dtype | None = None) -> NIFLastLayer:
        m = cls(arch["shape"], arch["parameter"], generator=generator)
        return m.to(dtype) if dtype is not None else m

    def p_to_latent(self, p: Tensor) -> Tensor:
        """The coefficients ``a(p)`` (B, r)."""
        return self.pnet(p)

    def x_to_phi(self, x: Tensor) -> Tensor:
        """The basis ``Φ(x)`` (B, d_u, r)."""
        h = x
        lins = self._linears()
        for lin in lins[:-1]:
            h = torch.sin(self.omega_0 * (h @ lin.weight.T) + lin.bias)
        return lins[-1](h).view(-1, self.d_u, self.r)

    def _linears(self) -> list[nn.Linear]:
        return [cast(nn.Linear, m) for m in self.shape_layers]

    def forward(self, inp: Tensor) -> Tensor:
        p, x = inp[:, :self.d_p], inp[:, self.d_p:]
        if self.dedup:
            uniq, inv = unique_rows(p)
            a = self.pnet(uniq).index_select(0, inv)
        else:
            a = self.pnet(p)
        return torch.einsum("bur,br->bu", self.x_to_phi(x), a) + self.c

    def pruning_units(self) -> PruningUnits:
        """Unstructured units only (its ShapeNet is an ordinary SIREN)."""
        return PruningUnits(weights=tuple(WeightUnit(n) for n, p in self.named_parameters() if p.dim() == 2))

    def flops(self) -> int:
        return sum(2 * m.in_features * m.out_features + m.out_features for m in self.modules() if isinstance(m, nn.Linear))
