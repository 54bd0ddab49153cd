r"""Neural Implicit Flow (NIF): a hypernetwork whose ParameterNet generates a ShapeNet's weights.

A field :math:`u(x; p)` is modelled as ``ShapeNet(x; θ(p))`` with :math:`θ(p) = W_\text{last}\,
z(p) + b_\text{last}` and :math:`z(p) \in \mathbb{R}^r` the latent bottleneck of ParameterNet
(``specs/nif.md`` §1-3). Inputs are one tensor ``[p | x]`` (parameters first); ShapeNet has no
trainable weights of its own (except in :class:`NIFLastLayer`).

**Flat layout of θ** (§2.4): all weight blocks first, then all bias blocks, in ShapeNet order; a
block of a linear map ``fan_in → fan_out`` is reshaped ``(fan_in, fan_out)``, row-major, so entry
``(i, o)`` sits at ``offset + i·fan_out + o``. ``nlayers`` counts the *hidden* ``n×n`` maps only
(upstream issue #7): ShapeNet has ``nlayers + 2`` linear maps without ResNet blocks.

Families (exact to the spec, §2):

* :class:`NIF`: ShapeNet ``h = act(x W_1 + b_1)``; ``nlayers ×`` ``h ← act(h W_k + b_k) + h``;
  ``u = h W_out + b_out``; ParameterNet ``Dense(m, act) → nlayers × [h ← h + act(Dense(h))] →
  Dense(r) → Dense(P)``, every layer truncated-normal(0.1) at ±2σ (Keras' scheme).
* :class:`NIFMultiScale`: SIREN ShapeNet ``h = sin(ω₀·(h W) + b)`` (ω₀ on the matmul only, the bias
  unscaled), optional ResNet blocks ``g = sin(ω₀ h W_a + b_a)``, ``h ← ½(h + sin(ω₀ g W_b + b_b))``;
  ParameterNet's last layer hyper-initialised (§3) so that ShapeNet starts as an initialised SIREN.
* :class:`NIFLastLayer`: ``u = Φ(x)·a(p) + c`` with a trainable SIREN basis ``Φ`` (§2.3).

**Pruning units.** A ShapeNet hidden node owns entries of θ, and every θ entry is one row of
``pnet.last.weight`` (shape ``(P, r)``) and one entry of ``pnet.last.bias``: masking those rows and
entries (core masks) zeroes the node's generated weights for *every* p. Node ``j`` of a layer owns
its incoming column ``W_ℓ[:, j]`` (``incoming``), its bias ``b_ℓ[j]`` (``attached``) and its
outgoing row ``W_{ℓ+1}[j, :]`` (``outgoing``). Residual streams (the plain NIF's shortcut stream,
the SIREN ResNet stream) are one group whose node ``j`` owns index ``j`` in *every* layer that
writes or reads the stream. Since ``swish(0) = tanh(0) = sin(0) = 0``, a node whose incoming column
and bias are zero outputs zero, so a masked node is removed exactly by :meth:`compact_units`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from sciprune.core.io import register_family
from sciprune.core.units import NeuronGroup, PruningUnits, Slice, WeightUnit
from sciprune.errors import InputError

LAST = "pnet.last"  # ParameterNet's last layer: its rows generate θ


def swish(x: Tensor) -> Tensor:
    """``x·sigmoid(x)`` (Keras' swish, PyTorch's silu)."""
    return nn.functional.silu(x)


_ACT: dict[str, Callable[[Tensor], Tensor]] = {"swish": swish, "tanh": torch.tanh, "sin": torch.sin}


def _act(name: str) -> Callable[[Tensor], Tensor]:
    try:
        return _ACT[name]
    except KeyError:
        raise InputError(f"unknown NIF activation {name!r}; expected one of {', '.join(_ACT)}") from None


def _tn(t: Tensor, g: torch.Generator | None, std: float = 0.1) -> None:
    """Keras TruncatedNormal(std) in place: normal(0, std) redrawn outside ±2·std."""
    with torch.no_grad():
        v = torch.randn(t.shape, generator=g, dtype=torch.float64)
        bad = v.abs() > 2.0
        while bool(bad.any()):
            v[bad] = torch.randn(int(bad.sum()), generator=g, dtype=torch.float64)
            bad = v.abs() > 2.0
        t.copy_(v * std)


def _uniform(shape: Sequence[int], bound: Tensor | float, g: torch.Generator | None) -> Tensor:
    return (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 2.0 - 1.0) * bound


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


class _HyperNIF(nn.Module):
    """What :class:`NIF` and :class:`NIFMultiScale` share: ParameterNet, θ layout, forward, units."""

    CLASS = ""
    pnet: ParameterNet
    layout: ShapeLayout
    dedup: bool

    def __init__(self, shape: dict[str, Any], parameter: dict[str, Any], *, kind: str, generator: torch.Generator | None) -> None:
        super().__init__()
        self.cfg_shape, self.cfg_parameter = dict(shape), dict(parameter)
        try:
            d_x, d_u = int(shape["input_dim"]), int(shape["output_dim"])
            n, L = int(shape["units"]), int(shape["nlayers"])
            d_p, m, L_p, r = (int(parameter[k]) for k in ("input_dim", "units", "nlayers", "latent_dim"))
        except KeyError as err:
            raise InputError(f"NIF config misses {err.args[0]!r}; see specs/nif.md §2 for the keys") from None
        self.resblock = bool(shape.get("use_resblock", False))
        widths = shape.get("widths") or ([n, n] * L + [n] if self.resblock else [n] * (L + 1))
        self.layout = ShapeLayout(d_x, d_u, widths, kind, self.resblock)
        self.d_p, self.d_x, self.d_u = d_p, d_x, d_u
        self.omega_0 = float(shape.get("omega_0", 30.0))
        self.shape_act = _act("sin" if kind == "siren" else str(shape.get("activation", "swish")))
        self.pnet = ParameterNet(d_p, m, L_p, r, self.layout.size, str(parameter.get("activation", "swish")),
                                 bool(parameter.get("use_resblock", False)))
        self.dedup = True
        if generator is not None:
            self._init(generator)

    # -- construction -----------------------------------------------------------------------
    def _init(self, g: torch.Generator) -> None:
        for p in self.pnet.parameters():
            _tn(p, g)

    @property
    def arch(self) -> dict[str, Any]:
        shape = dict(self.cfg_shape, widths=list(self.layout.widths))
        return {"class": self.CLASS, "shape": shape, "parameter": dict(self.cfg_parameter)}

    @classmethod
    def from_arch(cls, arch: dict[str, Any], generator: torch.Generator | None = None, *, dtype: torch.dtype | None = None) -> _HyperNIF:
        m = cls(arch["shape"], arch["parameter"], generator=generator)  # type: ignore[call-arg]
        return m.to(dtype) if dtype is not None else m

    # -- sub-models -------------------------------------------------------------------------
    def p_to_latent(self, p: Tensor) -> Tensor:
        """``p (B, d_p) → z (B, r)``."""
        return self.pnet.latent(p)

    def latent_to_weights(self, z: Tensor) -> Tensor:
        """``z (B, r) → θ (B, P)``."""
        return self.pnet.last(z)

    def p_to_weights(self, p: Tensor) -> Tensor:
        return self.pnet(p)

    def x_to_u_given_w(self, x: Tensor, w: Tensor) -> Tensor:
        """ShapeNet: ``x (B, d_x)`` with per-sample ``θ (B, P)`` (or one shared ``(P,)``) ``→ u (B, d_u)``."""
        return self._shape(x, w, None)

    # -- forward ----------------------------------------------------------------------------
    def _block(self, w: Tensor, lin: Linear) -> tuple[Tensor, Tensor]:
        W = w[..., lin.w_off:lin.w_off + lin.fan_in * lin.fan_out].reshape(*w.shape[:-1], lin.fan_in, lin.fan_out)
        return W, w[..., lin.b_off:lin.b_off + lin.fan_out]

    def _lin(self, h: Tensor, w: Tensor, lin: Linear, scale: float) -> Tensor:
        W, b = self._block(w, lin)
        if w.dim() == 1:
            y = h @ W
        else:  # one weight set per sample: (B,1,in) @ (B,in,out)
            y = torch.bmm(h.unsqueeze(1), W).squeeze(1)
        return (y * scale if scale != 1.0 else y) + b

    def _shape(self, x: Tensor, w: Tensor, record: list[Tensor] | None) -> Tensor:
        raise NotImplementedError

    def forward(self, inp: Tensor) -> Tensor:
        """``[p | x] (B, d_p + d_x) → u (B, d_u)``; ParameterNet runs once per distinct ``p``."""
        if inp.dim() != 2 or inp.shape[1] != self.d_p + self.d_x:
            raise InputError(f"NIF input must be (B, d_p + d_x) = (B, {self.d_p + self.d_x}); got {tuple(inp.shape)}")
        p, x = inp[:, :self.d_p], inp[:, self.d_p:]
        if not self.dedup:
            return self._shape(x, self.pnet(p), None)
        uniq, inv = unique_rows(p)
        theta = self.pnet(uniq)
        if uniq.shape[0] * 16 > p.shape[0]:  # many distinct p: one weight set per sample
            return self._shape(x, theta.index_select(0, inv), None)
        order = torch.argsort(inv, stable=True)
        counts = torch.bincount(inv, minlength=uniq.shape[0]).tolist()
        parts = [self._shape(xs, theta[u], None) for u, xs in enumerate(torch.split(x[order], counts)) if counts[u]]
        out = torch.empty(x.shape[0], self.d_u, dtype=theta.dtype, device=x.device)
        out[order] = torch.cat(parts)
        return out

    def activations(self, inp: Tensor) -> dict[str, Tensor]:
        """Every group's node outputs on ``inp``: ``{group name: (B·uses, size)}`` (stream positions stacked)."""
        p, x = inp[:, :self.d_p], inp[:, self.d_p:]
        record: list[Tensor] = []
        self._shape(x, self.pnet(p), record)
        out: dict[str, list[Tensor]] = {}
        for name, h in zip(self._record_names(), record):
            out.setdefault(name, []).append(h)
        return {k: torch.cat(v) for k, v in out.items()}

    def _record_names(self) -> list[str]:
        raise NotImplementedError

    # -- pruning units ----------------------------------------------------------------------
    def group_activation(self) -> str:
        """The activation of ShapeNet's hidden nodes, by core's name (a removed node outputs ``act(0) = 0``)."""
        if self.layout.kind == "siren":
            return "sin"
        name = str(self.cfg_shape.get("activation", "swish"))
        return "silu" if name == "swish" else name

    def node_groups(self) -> list[tuple[str, list[tuple[Linear, str]]]]:
        """``(group name, [(linear, how)])``: ``how = "in"`` writes the nodes (its output columns),
        ``"out"`` reads them (its input rows). Names follow :class:`sciprune.nn.hypernet.ShapeNetLayout`:
        ``shape`` (a residual stream), ``shape.<l>`` (hidden layer l), ``block.<k>`` (a ResNet block's inner nodes)."""
        lins = self.layout.linears
        if self.layout.residual:
            stream = [lin for lin in lins if lin.role in ("first", "hidden", "res_b")]
            readers = [lin for lin in lins if lin.role in ("hidden", "res_a", "out")]
            groups = [("shape", [(lin, "in") for lin in stream] + [(lin, "out") for lin in readers])]
            if self.resblock:
                for k, (a, b) in enumerate(zip(lins[1:-1:2], lins[2:-1:2])):
                    groups.append((f"block.{k}", [(a, "in"), (b, "out")]))
            return groups
        return [(f"shape.{k + 1}", [(lins[k], "in"), (lins[k + 1], "out")]) for k in range(len(lins) - 1)]

    def _group_positions(self) -> list[tuple[str, int, Tensor, Tensor, Tensor]]:
        """Per group: ``(name, size, incoming θ positions (n, a), bias positions (n, c), outgoing (n, d))``."""
        out = []
        for name, parts in self.node_groups():
            ins = [lin for lin, how in parts if how == "in"]
            n = ins[0].fan_out
            inc = torch.cat([lin.w_pos().T for lin in ins], dim=1)
            bias = torch.stack([lin.b_pos() for lin in ins], dim=1)
            outg = torch.cat([lin.w_pos() for lin, how in parts if how == "out"], dim=1)
            out.append((name, n, inc, bias, outg))
        return out

    def pruning_units(self) -> PruningUnits:
        """ShapeNet nodes as neuron groups over ``pnet.last.weight`` rows and ``pnet.last.bias`` entries.

        Without ResNet blocks these are exactly :meth:`sciprune.nn.hypernet.ShapeNetLayout.groups`
        (core's layout); a SIREN ResNet ShapeNet (which core's layout does not describe: its blocks
        interleave ``W_a, W_b``) declares the same kind of groups from this module's layout.
        Weight units: every ParameterNet matrix (unstructured pruning).
        """
        weights = tuple(WeightUnit(name) for name, p in self.named_parameters() if p.dim() == 2)
        if not self.resblock:
            from sciprune.nn.hypernet import ShapeNetLayout

            core = ShapeNetLayout((self.d_x, *self.layout.widths, self.d_u), self.group_activation(), self.layout.kind == "mlp")
            return PruningUnits(weights=weights, groups=core.groups(f"{LAST}.weight", f"{LAST}.bias"))
        groups = []
        for name, n, inc, bias, outg in self._group_positions():
            groups.append(NeuronGroup(
                name=name, size=n,
                incoming=(Slice(f"{LAST}.weight", 0, inc),),
                outgoing=(Slice(f"{LAST}.weight", 0, outg),),
                attached=(Slice(f"{LAST}.weight", 0, bias),
                          Slice(f"{LAST}.bias", 0, torch.cat([inc, bias, outg], dim=1))),
                activation=self.group_activation(),
            ))
        return PruningUnits(weights=weights, groups=tuple(groups))

    def node_positions(self) -> dict[str, Tensor]:
        """Per group: every θ position a node owns, ``(size, k)`` (incoming, bias, outgoing)."""
        return {name: torch.cat([inc, bias, outg], dim=1) for name, _, inc, bias, outg in self._group_positions()}

    def compact_units(self, keep: dict[str, Tensor]) -> _HyperNIF:
        """A narrower NIF keeping, per group, the node indices ``keep[name]`` (``(k,)`` or ``(1, k)``).

        θ rows are cut by :func:`sciprune.core.shrink.compact_state` (masks carried); the remaining
        positions, in order, are the flat vector of the narrower ShapeNet. Same outputs when every
        dropped node's generated weights are zero (a masked node), or when the caller has folded
        their contribution into the kept ones (ID).
        """
        from sciprune.core.masks import load_state_dict
        from sciprune.core.shrink import compact_state

        keep = {k: torch.as_tensor(v, dtype=torch.long).reshape(1, -1) for k, v in keep.items()}
        index = {id(lin): i for i, lin in enumerate(self.layout.linears)}
        widths = list(self.layout.widths)
        for name, parts in self.node_groups():
            if name in keep:
                if keep[name].numel() == 0:
                    raise InputError(f"compaction would remove every node of ShapeNet group {name!r}; keep at least one")
                for lin, how in parts:
                    if how == "in":
                        widths[index[id(lin)]] = int(keep[name].numel())
        sd = compact_state(self, keep)
        ref = next(self.parameters())
        small = type(self).from_arch({"shape": dict(self.cfg_shape, widths=widths), "parameter": self.cfg_parameter})
        small = small.to(dtype=ref.dtype, device=ref.device)
        load_state_dict(small, sd)
        small.dedup = self.dedup
        return small

    def shape_nodes(self) -> int:
        """Hidden ShapeNet nodes (a stream counts once)."""
        return sum(n for _, n, _, _, _ in self._group_positions())

    def shape_flops(self) -> int:
        """ShapeNet FLOPs for one point (2 per multiply-add, 1 per bias add)."""
        return sum(2 * lin.fan_in * lin.fan_out + lin.fan_out for lin in self.layout.linears)

    def flops(self) -> int:
        """One point, ParameterNet included (an upper bound: de-duplication shares it across points)."""
        pn = sum(2 * m.in_features * m.out_features + m.out_features for m in self.pnet.modules() if isinstance(m, nn.Linear))
        return self.shape_flops() + pn


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


# -- node pruning on the hypernetwork layout ------------------------------------------------
# Masking, top-k, compaction and the cascade are core's (core.pruning.prune over the groups above,
# core.shrink.compact_units / compact_state); this module adds the pNIF criterion and the ID fold.


def theta_context(model: _HyperNIF, p: Tensor) -> Tensor:
    """θ(p) for the distinct rows of ``p`` ``(U, P)``: the context of the ``hyper_node_rms`` criterion."""
    with torch.no_grad():
        return model.p_to_weights(unique_rows(p)[0]).detach()


def hyper_node_rms(weight: Tensor, *, out_weight: Tensor | None = None, generator: torch.Generator | None = None,
                   context: Tensor | None = None, group: NeuronGroup | None = None) -> Tensor:
    r"""pNIF node score: :math:`s_j = \sqrt{\tfrac1{|P|}\sum_{p} \|θ_{S_j}(p)\|_2^2}`, the RMS over the
    training parameters of the L2 norm of node ``j``'s generated weights (incoming column, bias,
    outgoing row: the group's slices on ParameterNet's last weight). ``context``: θ(p) ``(U, P)``
    (:func:`theta_context`). Without a context the data-free variant: the L2 norm of the node's
    rows of ``W_last`` (``weight``, its incoming rows). Lower scores are pruned first.
    """
    if context is None or group is None:
        return weight.detach().to(torch.float64).pow(2).sum(dim=-1).sqrt()
    pos = torch.cat([s.index for s in (*group.incoming, *group.outgoing, *group.attached) if s.param == f"{LAST}.weight"], dim=1)
    th = context.detach().to(torch.float64)
    return th[:, pos.to(th.device)].pow(2).sum(dim=2).mean(dim=0).sqrt()


def node_scores(model: _HyperNIF, p: Tensor) -> dict[str, Tensor]:
    """``hyper_node_rms`` of every group's nodes, for the training parameters ``p``."""
    theta = theta_context(model, p)
    return {g.name: hyper_node_rms(theta, context=theta, group=g) for g in model.pruning_units().groups}


def id_fold(model: _HyperNIF, samples: Tensor, keep: dict[str, int]) -> _HyperNIF:
    r"""ID node selection with the interpolation folded into ParameterNet's last layer, exactly.

    For each group in ShapeNet order, its node outputs :math:`H` stacked over ``samples`` (rows
    ``[p | x]``; every stream position stacked for a residual stream) get a rank-``k`` column ID
    :math:`H \approx H_{:,I}\,T` (:func:`sciprune.core.idprune.interpolative_decomposition`). A
    reader of the group computes :math:`h W(p)`, and :math:`W(p)`'s rows are rows of
    :math:`θ(p) = W_\text{last} z(p) + b_\text{last}`, linear in :math:`z`; so replacing the kept
    rows by :math:`T W(p)` is the same linear map applied to ``W_last`` rows and ``b_last``
    entries: :math:`W_\text{last}[R_I] \leftarrow T\, W_\text{last}[R]`. The other nodes are then
    removed. Exact for a plain SIREN ShapeNet up to the ID's residual; for a residual stream one
    shared ``T`` serves every reader (an approximation of the same order).
    Returns a compacted model; ``model`` is not changed.
    """
    from sciprune.core.idprune import interpolative_decomposition

    from sciprune.core.shrink import compact_units

    small, _ = compact_units(_copy(model))
    current = cast(_HyperNIF, small)
    order = [name for name, _ in current.node_groups()]
    for name in order:
        k = keep.get(name)
        if k is None:
            continue
        with torch.no_grad():
            H = current.activations(samples)[name]
        n = H.shape[1]
        k = max(1, min(int(k), n, H.shape[0]))
        if k >= n:
            continue
        dec = interpolative_decomposition(H, rank=k)
        rank = int(dec.ranks[0])
        sel = dec.selected[0, :rank].cpu()
        T = dec.interp[0, :rank].cpu()  # (rank, n)
        pos = dict((g, o) for g, _, _, _, o in current._group_positions())[name]  # (n, d) outgoing rows
        last = current.pnet.last
        with torch.no_grad():
            for par in (last.weight, last.bias):
                old = par.detach().to(torch.float64).cpu()[pos]  # (n, d[, r])
                new = torch.einsum("in,nd...->id...", T, old)
                par[pos[sel].flatten()] = new.reshape(-1, *old.shape[2:]).to(par.dtype).to(par.device)
        current = current.compact_units({name: torch.sort(sel).values})
    return current


def _copy(model: _HyperNIF) -> _HyperNIF:
    import copy

    return copy.deepcopy(model)


def _register_criterion() -> None:
    from sciprune.core.criteria import Criterion, available_criteria, register_criterion

    if "hyper_node_rms" not in available_criteria():
        register_criterion(Criterion("hyper_node_rms", True, hyper_node_rms,
                                     "hypernetwork nodes with the smallest RMS-over-p L2 norm of generated weights",
                                     wants_context=True))


_register_criterion()


FAMILIES: dict[str, type[nn.Module]] = {"NIF": NIF, "NIFMultiScale": NIFMultiScale, "NIFLastLayer": NIFLastLayer}


def build_nif(arch: dict[str, Any], generator: torch.Generator | None = None, *, dtype: torch.dtype | None = None) -> nn.Module:
    """Rebuild a NIF family from its ``arch``; a foreign arch is one clear line."""
    cls = FAMILIES.get(str(arch.get("class")))
    if cls is None:
        raise InputError(f"architecture class {arch.get('class')!r} is not a NIF; expected one of {', '.join(FAMILIES)}")
    return cls.from_arch(arch, generator, dtype=dtype)  # type: ignore[attr-defined,no-any-return]


def _builder(arch: dict[str, Any], *, dtype: torch.dtype = torch.float32) -> nn.Module:
    return build_nif(arch, dtype=dtype)


for _name in FAMILIES:
    register_family(_name, _builder)


def load_nif(path: Any, *, expect: dict[str, Any] | None = None) -> nn.Module:
    """A NIF from a sciprune checkpoint (safetensors + ``arch``), masks included.

    ``expect``: the architecture the caller needs; a checkpoint of another one is refused with one line.
    """
    from sciprune.core.io import load_checkpoint
    from sciprune.core.masks import load_state_dict

    ckpt = load_checkpoint(path)
    arch = ckpt.meta.get("arch")
    if not isinstance(arch, dict):
        raise InputError(f"checkpoint {str(path)!r} has no architecture metadata; expected one written by sciprune")
    if expect is not None and arch != expect:
        raise InputError(f"checkpoint {str(path)!r} holds {arch.get('class')} {arch.get('shape')}; it does not match the "
                         f"expected {expect.get('class')} {expect.get('shape')}: use a checkpoint of this architecture")
    model = build_nif(arch)
    floats = [t.dtype for t in ckpt.tensors.values() if t.is_floating_point()]
    model = model.to(floats[0] if floats else torch.float32)
    try:
        load_state_dict(model, ckpt.tensors)
    except RuntimeError as err:
        raise InputError(f"checkpoint {str(path)!r} does not match its architecture: {str(err).splitlines()[0]}") from None
    return model
