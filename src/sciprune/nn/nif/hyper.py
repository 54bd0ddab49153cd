r"""``_HyperNIF``: the base of :class:`~sciprune.nn.nif.models.NIF` and
:class:`~sciprune.nn.nif.models.NIFMultiScale`: ParameterNet, θ layout, forward, pruning units.

ShapeNet has no trainable weights of its own: its forward reads every weight from θ(p)
(:class:`~sciprune.nn.nif.layout.ShapeLayout`). With ``dedup`` (the default) ParameterNet runs once
per distinct ``p``; ShapeNet then makes one matmul per distinct ``p``, or, when distinct ``p`` exceed
1/16 of the rows, one batched ``bmm`` with a weight set per row. The subclasses supply ``_shape``
(ShapeNet's forward) and ``_record_names`` (the group each recorded activation belongs to).

**Pruning units.** A ShapeNet hidden node owns entries of θ, and every θ entry is one row of
``pnet.last.weight`` (shape ``(P, r)``) and one entry of ``pnet.last.bias``: masking those rows and
entries (core masks) zeroes the node's generated weights for *every* p. Node ``j`` of a layer owns
its incoming column ``W_ℓ[:, j]`` (``incoming``), its bias ``b_ℓ[j]`` (``attached``) and its
outgoing row ``W_{ℓ+1}[j, :]`` (``outgoing``). Residual streams (the plain NIF's shortcut stream,
the SIREN ResNet stream) are one group whose node ``j`` owns index ``j`` in *every* layer that
writes or reads the stream. Since ``swish(0) = tanh(0) = sin(0) = 0``, a node whose incoming column
and bias are zero outputs zero, so a masked node is removed exactly by :meth:`~_HyperNIF.compact_units`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from sciprune.core import NeuronGroup, PruningUnits, Slice, WeightUnit
from sciprune.errors import InputError
from sciprune.nn.nif.activations import _act
from sciprune.nn.nif.initialisers import _tn
from sciprune.nn.nif.layout import LAST, Linear, ShapeLayout
from sciprune.nn.nif.parameternet import ParameterNet, unique_rows


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
        thetas = theta.unbind(0)  # its backward is one stack; theta[u] zero-filled a (distinct p, P) gradient per p
        parts = [self._shape(xs, thetas[u], None) for u, xs in enumerate(torch.split(x[order], counts)) if counts[u]]
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

        θ rows are cut by :func:`sciprune.core._shrink.compact_state` (masks carried); the remaining
        positions, in order, are the flat vector of the narrower ShapeNet. Same outputs when every
        dropped node's generated weights are zero (a masked node), or when the caller has folded
        their contribution into the kept ones (ID).
        """
        from sciprune.core import load_state_dict
        from sciprune.core import compact_state

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
