r"""How each op of a traced graph moves channels: the rules :func:`sciprune.core._trace.trace_channels` applies.

:class:`Walk` visits the ``torch.fx`` nodes in order and keeps, for every value, a :class:`Chan`: which
channel (a union-find element) sits at each position of its feature axis, the value that position takes
once its unit's slices are zero (its *dead value*), and whether it is still ``σ(producer output)`` for a
named activation ``σ``. A rule either maps channels (element-wise ops, ``cat``, ``chunk``, reshapes,
axis moves, reductions over other axes), joins them (``a + b``, ``a * b``, ``einsum`` indices), creates
them (``Linear``/``Conv`` outputs, joined with their rows and biases), records readers (columns; sums
and contractions as *sinks*, exact only when the dead value there is 0) or **refuses**: the channels
the op touches are blocked with the op, its source line and the reason. See :mod:`sciprune.core._trace`
for the whole picture.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn

_NAMED_MODULES: dict[type, str] = {
    nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.Identity: "identity",
}
_NAMED_FUNCTIONS: dict[Any, str] = {
    torch.tanh: "tanh", torch.relu: "relu", nn.functional.relu: "relu", torch.sigmoid: "sigmoid",
    nn.functional.silu: "silu", torch.sin: "sin", nn.functional.tanh: "tanh", nn.functional.sigmoid: "sigmoid",
}
_NAMED_METHODS = {"tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid", "sin": "sin"}
_UNARY_FUNCTIONS = {
    torch.cos, torch.exp, torch.abs, torch.neg, operator.neg, torch.square, torch.erf, torch.sinh, torch.cosh,
    torch.atan, torch.sinc, torch.expm1, nn.functional.gelu, nn.functional.softplus, nn.functional.elu,
    nn.functional.leaky_relu, nn.functional.hardtanh, nn.functional.mish, nn.functional.softsign,
    nn.functional.tanhshrink, nn.functional.selu, nn.functional.celu, nn.functional.hardswish,
}
_UNARY_METHODS = {"cos", "exp", "abs", "neg", "square", "erf", "sinh", "cosh", "atan", "expm1", "contiguous", "clone"}
_UNARY_MODULES = (nn.GELU, nn.Softplus, nn.ELU, nn.LeakyReLU, nn.Hardtanh, nn.Mish, nn.Softsign, nn.Tanhshrink,
                  nn.SELU, nn.CELU, nn.Hardswish)
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_CHANNELWISE_MODULES = (nn.Upsample, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
                        nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_CHANNELWISE_FUNCTIONS = {nn.functional.interpolate, nn.functional.max_pool1d, nn.functional.max_pool2d,
                          nn.functional.avg_pool1d, nn.functional.avg_pool2d, nn.functional.adaptive_avg_pool1d,
                          nn.functional.adaptive_avg_pool2d}
_BINARY = {operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub", operator.mul: "mul",
           torch.mul: "mul", operator.truediv: "div", torch.div: "div", operator.iadd: "add", operator.isub: "sub",
           operator.imul: "mul", operator.itruediv: "div"}
_BINARY_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "div": "div"}
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_COUPLING_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm) if hasattr(nn, "RMSNorm") else (nn.LayerNorm, nn.GroupNorm)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TCONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_SIZE_METHODS = {"size", "dim"}

Dead = float | None  # a channel's value once its unit's slices are zero: a known constant, or not known


@dataclass
class Chan:
    """Channel map of one traced value: ``slots[p]`` is the channel at position ``p`` of ``axis``
    (``None``: not a traced channel, e.g. a concatenated input column); ``dead[p]`` its dead value;
    ``chain[p]`` ``(activation, producer call)`` while the value is ``σ(producer output)``."""

    axis: int
    slots: list[int | None]
    dead: list[Dead]
    chain: list[tuple[str, int] | None]


@dataclass(frozen=True)
class Blocked:
    """Why some channels may not be removed: the reason, the op and its source line."""

    reason: str
    node: str
    where: str



def _where(node: fx.Node) -> str:
    """The user's source line of ``node`` (the last frame outside torch), or the node's name."""
    if node.op == "output":
        return "the return of forward"
    st = node.meta.get("stack_trace")
    lines = [ln.strip() for ln in str(st or "").strip().splitlines() if ln.strip()]
    frames = [(ln, lines[i + 1] if i + 1 < len(lines) and not lines[i + 1].startswith("File ") else "")
              for i, ln in enumerate(lines) if ln.startswith("File ")]
    user = [f for f in frames if "/torch/" not in f[0]]
    if not user:
        return f"graph node {node.name}"
    head, code = user[-1]
    return f"{head.removeprefix('File ')}: {code}".rstrip(": ")


def _op_name(node: fx.Node) -> str:
    if node.op == "output":
        return "the network output"
    if node.op == "call_module":
        return f"module {node.target}"
    if node.op == "call_method":
        return f"method .{node.target}()"
    t = node.target
    return f"function {getattr(t, '__module__', '') or ''}.{getattr(t, '__name__', str(t))}".replace("_operator.", "operator.")


class Walk:
    def __init__(self, model: nn.Module, gm: fx.GraphModule, prefix: str, batch: int) -> None:
        self.model, self.gm, self.prefix, self.batch = model, gm, prefix, batch
        self.ids: dict[Any, int] = {}   # union-find element -> index into parent
        self.parent: list[int] = []
        self.n_slots = 0
        self.roles: dict[tuple[str, int], tuple[str, str | None]] = {}   # (param, axis) -> (role, fold_into)
        self.positions: dict[tuple[str, int, int], None] = {}             # every (param, axis, index) met
        self.buffers: list[tuple[str, int, int, int]] = []                    # (buffer, axis, pos, slot)
        self.blocks: list[tuple[int, Blocked]] = []                           # (slot, why)
        self.unowned: list[Blocked] = []
        self.reads: list[tuple[int, str, int, int, Dead, tuple[str, int] | None, str | None]] = []
        self.sinks: list[tuple[int, str]] = []
        self.producers: dict[int, int] = {}     # slot -> producer call id
        self.producer_bias: dict[int, str | None] = {}
        self.flop_sites: list[tuple[str, int]] = []
        self.calls = 0
        self.order: dict[str, int] = {}         # producer module -> order of its first call
        self.env: dict[str, Any] = {}

    # --- union-find -------------------------------------------------------------------------------
    def find(self, key: Any) -> int:
        """The root index of element ``key`` (a channel ``("s", n)`` or a position ``("p", param, axis, i)``)."""
        x = self.ids.get(key)
        if x is None:
            x = self.ids[key] = len(self.parent)
            self.parent.append(x)
            return x
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def new_slot(self) -> int:
        self.n_slots += 1
        self.find(("s", self.n_slots))
        return self.n_slots

    def block(self, chan: Chan | None, node: fx.Node, reason: str) -> None:
        why = Blocked(reason, _op_name(node), _where(node))
        slots = [s for s in (chan.slots if chan else []) if s is not None]
        for s in slots:
            self.blocks.append((s, why))
        if chan is not None and not slots:
            self.unowned.append(why)

    def block_all(self, value: Any, node: fx.Node, reason: str) -> None:
        for c in _chans(value):
            self.block(c, node, reason)

    # --- helpers ----------------------------------------------------------------------------------
    def shape(self, node: Any) -> tuple[int, ...] | None:
        if not isinstance(node, fx.Node):
            return None
        tm = node.meta.get("tensor_meta")
        return tuple(int(d) for d in tm.shape) if tm is not None and hasattr(tm, "shape") else None

    def val(self, a: Any) -> Any:
        if isinstance(a, fx.Node):
            return self.env.get(a.name)
        if isinstance(a, (list, tuple)):
            return type(a)(self.val(x) for x in a)
        return a

    def param(self, module: str, local: str) -> str:
        return f"{self.prefix}{module}.{local}" if module else f"{self.prefix}{local}"

    def produce(self, module: str, m: nn.Module, axis: int, n: int, row_axis: int, node: fx.Node) -> Chan:
        self.calls += 1
        self.order.setdefault(module, len(self.order))
        bias = self.param(module, "bias") if getattr(m, "bias", None) is not None else None
        self.roles[(self.param(module, "weight"), row_axis)] = ("in", None)
        if bias is not None:
            self.roles[(bias, 0)] = ("att", None)
        slots: list[int | None] = []
        for o in range(n):
            s = self.new_slot()
            slots.append(s)
            self.union(("s", s), ("p", self.param(module, "weight"), row_axis, o))
            self.positions[(self.param(module, "weight"), row_axis, o)] = None
            if bias is not None:
                self.union(("s", s), ("p", bias, 0, o))
                self.positions[(bias, 0, o)] = None
            self.producers[s] = self.calls
            self.producer_bias[s] = bias
        return Chan(axis, slots, [0.0] * n, [("identity", self.calls)] * n)

    def consume(self, chan: Chan, module: str, col_axis: int, node: fx.Node, reader: str, fold: str | None) -> None:
        w = self.param(module, "weight")
        self.roles[(w, col_axis)] = ("out", fold)
        for p, s in enumerate(chan.slots):
            if s is None:
                continue
            self.union(("s", s), ("p", w, col_axis, p))
            self.positions[(w, col_axis, p)] = None
            self.reads.append((s, reader, chan.axis, p, chan.dead[p], chan.chain[p], fold))

    def sink(self, chan: Chan, node: fx.Node, dead: Sequence[Dead] | None = None) -> None:
        dead = chan.dead if dead is None else dead
        for p, s in enumerate(chan.slots):
            if s is None:
                continue
            self.sinks.append((s, f"{_op_name(node)} at {_where(node)}"))
            if dead[p] != 0.0:
                self.blocks.append((s, Blocked("read by a sum/product whose term is not 0 once the channel's weights are zero",
                                               _op_name(node), _where(node))))

    # --- the walk ---------------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.gm.graph.nodes:
            try:
                out = self.visit(node)
            except Exception as err:  # a refusal, or a call whose arguments no rule expected: refused too
                reason = err.reason if isinstance(err, _Refuse) else f"{_op_name(node)} is not understood by the tracer ({type(err).__name__})"
                ins = [self.val(a) for a in (*node.args, *node.kwargs.values())]
                self.block_all(ins, node, reason)
                out = None
            self.env[node.name] = out

    def visit(self, node: fx.Node) -> Any:
        if node.op in ("placeholder", "get_attr"):
            return None
        args = [self.val(a) for a in node.args]
        kwargs = {k: self.val(v) for k, v in node.kwargs.items()}
        if node.op == "output":
            self.block_all(args, node, "reaches the network output")
            return None
        tracked = _chans(args) + _chans(list(kwargs.values()))
        if _chans(list(kwargs.values())) and not (node.op != "call_module" and set(kwargs) == {"other"}):
            raise _Refuse(f"{_op_name(node)} with a traced value passed by keyword")
        if node.op == "call_module" and _chans(args[1:]):
            raise _Refuse(f"{_op_name(node)} with more than one traced argument")
        if node.op == "call_module":
            return self.module_call(node, self.gm.get_submodule(str(node.target)), args, kwargs, tracked)
        if node.op == "call_method" and node.target in _SIZE_METHODS:
            return None
        if node.op == "call_function" and node.target is getattr and len(node.args) > 1 and node.args[1] in ("shape", "dtype", "device"):
            return None
        if not tracked:
            if node.op == "call_function" and node.target in (torch.chunk, torch.split) or \
                    node.op == "call_method" and node.target in ("chunk", "split"):
                return None
            return None
        return self.function_call(node, args, kwargs, tracked)

    def module_call(self, node: fx.Node, m: nn.Module, args: list[Any], kwargs: dict[str, Any], tracked: list[Chan]) -> Any:
        name = str(node.target)
        x = args[0] if args else None
        xs = self.shape(node.args[0]) if node.args else None
        ys = self.shape(node)
        if isinstance(m, nn.Linear):
            if isinstance(x, Chan):
                if xs is not None and x.axis == len(xs) - 1 and len(x.slots) == m.in_features:
                    fold = self.param(name, "bias") if m.bias is not None else None
                    self.consume(x, name, 1, node, _arg_name(node), fold)
                else:
                    self.block(x, node, "Linear applied along an axis that is not the traced feature axis")
            if ys is None:
                raise _Refuse("no shape recorded")
            self.flop_sites.append((name, _positions(ys, len(ys) - 1, self.batch)))
            return self.produce(name, m, len(ys) - 1, m.out_features, 0, node)
        if isinstance(m, CONVS + TCONVS):
            transposed = isinstance(m, TCONVS)
            if m.groups != 1:
                if isinstance(x, Chan):
                    self.block(x, node, "grouped convolution couples input and output channels")
                c = self.produce(name, m, 1, m.out_channels, 1 if transposed else 0, node)
                self.block(c, node, "grouped convolution couples input and output channels")
                return c
            if isinstance(x, Chan):
                if x.axis == 1 and len(x.slots) == m.in_channels:
                    self.consume(x, name, 0 if transposed else 1, node, _arg_name(node), None)
                else:
                    self.block(x, node, "convolution over an axis that is not the traced channel axis")
            if ys is None:
                raise _Refuse("no shape recorded")
            self.flop_sites.append((name, _positions(ys, 1, self.batch)))
            return self.produce(name, m, 1, m.out_channels, 1 if transposed else 0, node)
        if isinstance(m, _COUPLING_NORMS):
            reason = f"{type(m).__name__} normalises over the features: removing one channel changes every other"
            self.block_all(args, node, reason)
            if ys is None:
                return None
            ax = len(ys) - 1 if isinstance(m, nn.LayerNorm) or type(m).__name__ == "RMSNorm" else 1
            c = Chan(ax, [self.new_slot() for _ in range(ys[ax])], [None] * ys[ax], [None] * ys[ax])
            self.block(c, node, reason)
            return c
        if isinstance(m, _NORMS):
            if not isinstance(x, Chan) or x.axis != 1 or len(x.slots) != m.num_features:
                raise _Refuse(f"{type(m).__name__} over an axis that is not the traced channel axis")
            affine = m.weight is not None
            for p, s in enumerate(x.slots):
                if s is None:
                    raise _Refuse(f"{type(m).__name__} over channels that are partly network inputs")
                for local in ("weight", "bias"):
                    if getattr(m, local, None) is not None:
                        key = (self.param(name, local), 0, p)
                        self.union(("s", s), ("p", *key))
                        self.positions[key] = None
                        self.roles[key[:2]] = ("att", None)
                for local in ("running_mean", "running_var"):
                    if isinstance(getattr(m, local, None), Tensor):
                        self.buffers.append((self.param(name, local), 0, p, s))
            dead: list[Dead] = [0.0 if affine else None] * len(x.slots)
            return Chan(x.axis, list(x.slots), dead, [None] * len(x.slots))
        if isinstance(m, nn.Flatten):
            return self.reshape(node, x, xs, ys, None)
        if isinstance(m, tuple(_NAMED_MODULES)):
            return _unary(x, lambda t: m(t), _NAMED_MODULES[type(m)])
        if isinstance(m, _UNARY_MODULES):
            return _unary(x, lambda t: m(t), None)
        if isinstance(m, _DROPOUTS):
            return _zero_kept(x)
        if isinstance(m, _CHANNELWISE_MODULES):
            if isinstance(x, Chan) and x.axis == 1:
                return _zero_kept(x)
            raise _Refuse(f"{type(m).__name__} over the traced channel axis")
        raise _Refuse(f"unknown module type {type(m).__name__} (not understood by the tracer)")

    def function_call(self, node: fx.Node, args: list[Any], kwargs: dict[str, Any], tracked: list[Chan]) -> Any:
        t = node.target
        meth = node.op == "call_method"
        x = args[0] if args else None
        xs = self.shape(node.args[0]) if node.args else None
        ys = self.shape(node)
        several = (not meth and (t in _BINARY or t in (torch.cat, torch.concat, torch.concatenate, torch.stack, torch.einsum))) \
            or (meth and t in _BINARY_METHODS) or (t is operator.getitem and isinstance(x, list))
        if not several and (len(tracked) != 1 or not isinstance(x, Chan)):
            raise _Refuse(f"{_op_name(node)} with traced values in other arguments than its first")
        if (not meth and t in _NAMED_FUNCTIONS) or (meth and t in _NAMED_METHODS):
            if len(args) > 1 or kwargs.keys() - {"inplace"}:
                raise _Refuse("element-wise function with extra arguments")
            name = _NAMED_FUNCTIONS[t] if not meth else _NAMED_METHODS[str(t)]
            fn: Callable[[Tensor], Tensor] = (lambda v: getattr(v, str(t))()) if meth else t  # type: ignore[assignment]
            return _unary(x, fn, name)
        if (not meth and t in _UNARY_FUNCTIONS) or (meth and t in _UNARY_METHODS):
            if len(tracked) != 1 or not isinstance(x, Chan):
                raise _Refuse("element-wise function of a traced value with traced arguments")
            rest, kw = node.args[1:], dict(node.kwargs)
            if any(isinstance(a, fx.Node) for a in (*rest, *kw.values())):
                raise _Refuse("element-wise function with tensor arguments")
            fn = (lambda v: getattr(v, str(t))(*rest, **kw)) if meth else (lambda v: t(v, *rest, **kw))  # type: ignore[operator]
            return _unary(x, fn, None)
        if (not meth and t in _BINARY) or (meth and t in _BINARY_METHODS):
            kind = _BINARY[t] if not meth else _BINARY_METHODS[str(t)]  # type: ignore[index]
            if set(kwargs) - {"alpha"}:
                raise _Refuse("binary op with extra arguments")
            b = args[1] if len(args) > 1 else kwargs.get("other")
            alpha = kwargs.get("alpha", 1)
            if not isinstance(alpha, (int, float)):
                raise _Refuse("binary op with a tensor alpha")
            return self.binary(node, kind, x, b, node.args[0], node.args[1] if len(node.args) > 1 else None, alpha, ys)
        if (not meth and t is operator.pow) or (meth and t == "pow") or (not meth and t is torch.pow):
            if not isinstance(x, Chan) or len(args) != 2 or not isinstance(args[1], (int, float)):
                raise _Refuse("power with a traced exponent")
            e = args[1]
            return _unary(x, lambda v: v ** e, None)
        if t in (torch.flatten, "flatten", torch.reshape, "reshape", "view"):
            sizes: Any = node.args[1:] if t in ("reshape", "view") else (node.args[1] if t is torch.reshape else None)
            if t in ("reshape", "view") and len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
                sizes = sizes[0]
            return self.reshape(node, x, xs, ys, sizes)
        if t in (torch.permute, "permute", torch.transpose, "transpose", torch.movedim, "movedim", torch.unsqueeze,
                 "unsqueeze", torch.squeeze, "squeeze", torch.swapaxes, "swapaxes"):
            return self.move_axis(node, x, xs, ys, args, kwargs)
        if t in (torch.sum, "sum", torch.mean, "mean"):
            return self.reduce(node, x, xs, ys, args, kwargs, "mean" if t in (torch.mean, "mean") else "sum")
        if t in (torch.cat, torch.concat, torch.concatenate, torch.stack):
            return self.cat(node, args, kwargs, stack=t is torch.stack)
        if t in (torch.chunk, "chunk", torch.split, "split", torch.tensor_split, "tensor_split"):
            return self.chunk(node, x, xs, args, kwargs, str(getattr(t, "__name__", t)))
        if t is operator.getitem:
            return self.getitem(node, x, xs, ys, args[1])
        if t is torch.einsum:
            return self.einsum(node, args)
        if t in _CHANNELWISE_FUNCTIONS:
            if isinstance(x, Chan) and x.axis == 1 and len(tracked) == 1:
                return _zero_kept(x)
            raise _Refuse("pooling/interpolation over the traced channel axis")
        if t in (nn.functional.dropout, "to", "float", "double", "type_as") or t is torch.clone:
            if len(tracked) != 1 or not isinstance(x, Chan):
                raise _Refuse("traced value as an argument")
            return _zero_kept(x) if t is nn.functional.dropout else x
        raise _Refuse(f"{_op_name(node)} is not understood by the tracer")

    def binary(self, node: fx.Node, kind: str, a: Any, b: Any, na: Any, nb: Any, alpha: float, ys: Any) -> Chan:
        if not isinstance(a, Chan):  # number/tensor (op) traced: swap, remembering the order
            if kind in ("sub", "div"):
                if kind == "div" or not isinstance(b, Chan):
                    raise _Refuse("division by a traced value")
            a, b, na, nb = b, a, nb, na
            flip = True
        else:
            flip = False
        assert isinstance(a, Chan)
        sa = self.shape(na)
        if ys is None or sa is None:
            raise _Refuse("no shape recorded")
        axis = len(ys) - (len(sa) - a.axis)
        n = len(a.slots)
        if isinstance(b, Chan):
            sb = self.shape(nb)
            if sb is None or len(sb) - b.axis != len(sa) - a.axis or len(b.slots) != n:
                raise _Refuse("traced values with different feature axes combined")
            if kind == "div":
                raise _Refuse("division by a traced value")
            slots: list[int | None] = []
            for p in range(n):
                s1, s2 = a.slots[p], b.slots[p]
                if s1 is not None and s2 is not None:
                    self.union(("s", s1), ("s", s2))
                elif (s1 is None) != (s2 is None):
                    why = Blocked("combined position by position with a channel that is not traced (a network input)",
                                  _op_name(node), _where(node))
                    self.blocks.append((s1 if s1 is not None else s2, why))  # type: ignore[arg-type]
                slots.append(s1 if s1 is not None else s2)
            db = [alpha * d if d is not None else None for d in b.dead]
            dead = [_combine(kind, d1, d2, flip) for d1, d2 in zip(a.dead, db)]
            return Chan(axis, slots, dead, [None] * n)
        if isinstance(b, (int, float, bool)):
            if flip and alpha != 1:
                raise _Refuse("binary op with alpha and a traced second operand")
            dead = [_combine(kind, d, float(b) * alpha, flip) for d in a.dead]
            return Chan(axis, list(a.slots), dead, [None] * n)
        sb = self.shape(nb)
        if sb is None:
            raise _Refuse("combined with a value of unknown shape")
        k = len(sa) - a.axis
        size = sb[len(sb) - k] if len(sb) >= k else 1
        if size != 1:
            raise _Refuse("combined with a per-channel tensor that is not a module parameter "
                          "(a network input, or a parameter used outside a module)")
        if kind == "div" and flip:
            raise _Refuse("division by a traced value")
        dead = [0.0 if (kind in ("mul", "div") and d == 0.0) else None for d in a.dead]
        return Chan(axis, list(a.slots), dead, [None] * n)

    def reshape(self, node: fx.Node, x: Any, xs: Any, ys: Any, sizes: Any) -> Chan:
        if not isinstance(x, Chan) or xs is None or ys is None:
            raise _Refuse("reshape of a value of unknown shape")
        a, n = x.axis, len(x.slots)
        if list(ys[:a + 1]) == list(xs[:a + 1]):  # the axis and everything before it unchanged
            new_axis, rep = a, 1
            if len(ys) > a + 1 and _prod(ys[a + 1:]) != _prod(xs[a + 1:]):
                raise _Refuse("reshape that mixes the feature axis with others")
        elif list(ys[:a]) == list(xs[:a]) and len(ys) == a + 1 and ys[a] == n * _prod(xs[a + 1:]):
            new_axis, rep = a, _prod(xs[a + 1:])  # flatten from the feature axis: channel c -> positions c*rep ...
        else:
            raise _Refuse("reshape where the feature axis is not provable")
        if sizes is not None:  # view/reshape: the feature dimension must follow compaction
            if new_axis >= len(sizes):
                raise _Refuse("reshape with sizes that are not understood")
            d = sizes[new_axis]
            if not (isinstance(d, fx.Node) or d == -1):
                raise _Refuse(f"reshape with a hard-coded feature size {d} (would not follow compaction; use -1)")
        return Chan(new_axis, [s for s in x.slots for _ in range(rep)], [d for d in x.dead for _ in range(rep)],
                    [c if rep == 1 else None for c in x.chain for _ in range(rep)])

    def move_axis(self, node: fx.Node, x: Any, xs: Any, ys: Any, args: list[Any], kwargs: dict[str, Any]) -> Chan:
        if not isinstance(x, Chan) or xs is None or ys is None:
            raise _Refuse("axis move of a value of unknown shape")
        t, a = node.target, x.axis
        name = t if isinstance(t, str) else t.__name__  # type: ignore[union-attr]
        rest = args[1:]
        nd = len(xs)
        if name == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            dims = [int(d) % nd for d in dims]
            new = dims.index(a)
        elif name in ("transpose", "swapaxes"):
            d0, d1 = int(rest[0]) % nd, int(rest[1]) % nd
            new = d1 if a == d0 else d0 if a == d1 else a
        elif name == "movedim":
            src, dst = rest[0], rest[1]
            if not isinstance(src, int) or not isinstance(dst, int):
                raise _Refuse("movedim of several axes")
            perm = list(range(nd))
            perm.insert(dst % nd, perm.pop(src % nd))
            new = perm.index(a)
        elif name == "unsqueeze":
            d = int(rest[0]) % (nd + 1)
            new = a + 1 if d <= a else a
        else:  # squeeze
            new = a - sum(1 for i in range(a) if xs[i] == 1 and (not rest or i in _dims(rest, nd)))
            if xs[a] == 1 and (not rest or a in _dims(rest, nd)):
                raise _Refuse("squeeze of a one-channel feature axis")
        if ys[new] != len(x.slots):
            raise _Refuse("axis move where the feature axis is not provable")
        return Chan(new, list(x.slots), list(x.dead), list(x.chain))

    def reduce(self, node: fx.Node, x: Any, xs: Any, ys: Any, args: list[Any], kwargs: dict[str, Any], kind: str) -> Any:
        if not isinstance(x, Chan) or xs is None:
            raise _Refuse("reduction of a value of unknown shape")
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
        if set(kwargs) - {"dim", "keepdim"}:
            raise _Refuse("reduction with extra arguments")
        nd = len(xs)
        dims = set(range(nd)) if dim is None else set(_dims([dim], nd))
        if x.axis in dims:
            if kind == "mean":
                raise _Refuse("mean over the features: its divisor changes with the width")
            self.sink(x, node)
            return None
        new = x.axis if keep else x.axis - sum(1 for d in dims if d < x.axis)
        return Chan(new, list(x.slots), [0.0 if d == 0.0 else (d if kind == "mean" else None) for d in x.dead],
                    [None] * len(x.slots))

    def cat(self, node: fx.Node, args: list[Any], kwargs: dict[str, Any], stack: bool) -> Chan:
        items = args[0]
        nodes = node.args[0]
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        shapes = [self.shape(n) for n in nodes]  # type: ignore[union-attr]
        if any(s is None for s in shapes) or not isinstance(dim, int):
            raise _Refuse("concatenation of values of unknown shape")
        nd = len(shapes[0])  # type: ignore[arg-type]
        d = dim % (nd + 1 if stack else nd)
        chans = [c for c in items if isinstance(c, Chan)]
        axes = {c.axis for c in chans}
        if len(axes) != 1:
            raise _Refuse("concatenation of values with different feature axes")
        a = axes.pop()
        if not stack and d == a:
            slots: list[int | None] = []
            dead: list[Dead] = []
            chain: list[tuple[str, int] | None] = []
            for c, s in zip(items, shapes):
                if isinstance(c, Chan):
                    slots += c.slots
                    dead += c.dead
                    chain += c.chain
                else:
                    slots += [None] * s[d]  # type: ignore[index]
                    dead += [None] * s[d]  # type: ignore[index]
                    chain += [None] * s[d]  # type: ignore[index]
            return Chan(a, slots, dead, chain)
        if len(chans) != len(items) or len({len(c.slots) for c in chans}) != 1:
            raise _Refuse("concatenation along another axis of traced and untraced values")
        first = chans[0]
        for c in chans[1:]:
            for s1, s2 in zip(first.slots, c.slots):
                if s1 is not None and s2 is not None:
                    self.union(("s", s1), ("s", s2))
                elif (s1 is None) != (s2 is None):
                    raise _Refuse("concatenation along another axis of traced and untraced channels")
        dead = [d if all(c.dead[p] == d for c in chans) else None for p, d in enumerate(first.dead)]
        return Chan(a + 1 if stack and d <= a else a, list(first.slots), dead, [None] * len(first.slots))

    def chunk(self, node: fx.Node, x: Any, xs: Any, args: list[Any], kwargs: dict[str, Any], name: str) -> Any:
        if not isinstance(x, Chan) or xs is None:
            raise _Refuse("split of a value of unknown shape")
        rest = args[1:]
        arg = rest[0] if rest else kwargs.get("chunks", kwargs.get("split_size_or_sections", kwargs.get("split_size")))
        dim = rest[1] if len(rest) > 1 else kwargs.get("dim", 0)
        if not isinstance(dim, int) or not isinstance(arg, int):
            raise _Refuse(f"{name} with sizes that would not follow compaction")
        d = dim % len(xs)
        n = len(x.slots)
        if d != x.axis:
            parts = math.ceil(xs[d] / arg) if name == "split" else min(arg, xs[d])
            return [Chan(x.axis, list(x.slots), list(x.dead), list(x.chain)) for _ in range(parts)]
        if name != "chunk" or n % arg:
            raise _Refuse(f"{name} of the feature axis with a hard-coded size (would not follow compaction)")
        w = n // arg
        for j in range(1, arg):
            for p in range(w):
                s1, s2 = x.slots[p], x.slots[j * w + p]
                if s1 is not None and s2 is not None:
                    self.union(("s", s1), ("s", s2))
                elif (s1 is None) != (s2 is None):
                    raise _Refuse("chunks of traced and untraced channels")
        return [Chan(x.axis, x.slots[j * w:(j + 1) * w], x.dead[j * w:(j + 1) * w], x.chain[j * w:(j + 1) * w])
                for j in range(arg)]

    def getitem(self, node: fx.Node, x: Any, xs: Any, ys: Any, idx: Any) -> Any:
        if isinstance(x, list):
            return x[idx] if isinstance(idx, int) else None
        if not isinstance(x, Chan) or xs is None:
            raise _Refuse("indexing of a value of unknown shape")
        items = list(idx) if isinstance(idx, tuple) else [idx]
        if any(isinstance(i, (fx.Node, Tensor, list)) for i in items):
            raise _Refuse("indexing with a tensor")
        if Ellipsis in items:
            e = items.index(Ellipsis)
            used = sum(1 for i in items if i is not None and i is not Ellipsis)
            items = items[:e] + [slice(None)] * (len(xs) - used) + items[e + 1:]
        src = new = 0
        for i in items:
            if i is None:
                new += 1
                continue
            if src == x.axis:
                if i != slice(None):
                    raise _Refuse("indexing of the feature axis (hard-coded positions would not follow compaction)")
                return Chan(new, list(x.slots), list(x.dead), list(x.chain))
            if isinstance(i, slice):
                new += 1
            src += 1
        return Chan(new + (x.axis - src), list(x.slots), list(x.dead), list(x.chain))

    def einsum(self, node: fx.Node, args: list[Any]) -> Any:
        eq = args[0]
        ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        nodes = list(node.args[1]) if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)) else list(node.args[1:])
        if not isinstance(eq, str) or "..." in eq or "->" not in eq:
            raise _Refuse("einsum without an explicit output (or with '...')")
        lhs, out = eq.replace(" ", "").split("->")
        subs = lhs.split(",")
        letters: dict[str, list[Chan]] = {}
        for sub, c, n in zip(subs, ops, nodes):
            if isinstance(c, Chan):
                letters.setdefault(sub[c.axis], []).append(c)
        for sub, c, n in zip(subs, ops, nodes):
            if not isinstance(c, Chan):
                for ch in sub:
                    if ch in letters:
                        raise _Refuse("einsum of traced channels with a tensor that is not traced on the same index")
        if sum(1 for ch in letters if ch in out) > 1:
            raise _Refuse("einsum keeping two traced feature axes")
        if any(sub.count(sub[c.axis]) > 1 for sub, c in zip(subs, ops) if isinstance(c, Chan)):
            raise _Refuse("einsum with a repeated index on a traced feature axis")
        result = None
        for ch, chans in letters.items():
            first = chans[0]
            for c in chans[1:]:
                if len(c.slots) != len(first.slots):
                    raise _Refuse("einsum of traced axes of different sizes")
                for s1, s2 in zip(first.slots, c.slots):
                    if s1 is not None and s2 is not None:
                        self.union(("s", s1), ("s", s2))
                    elif (s1 is None) != (s2 is None):
                        raise _Refuse("einsum of traced and untraced channels")
            dead = [0.0 if any(c.dead[p] == 0.0 for c in chans) else None for p in range(len(first.slots))]
            if ch in out:
                result = Chan(out.index(ch), list(first.slots), dead, [None] * len(first.slots))
            else:
                self.sink(first, node, dead)
        return result


class _Refuse(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _arg_name(node: fx.Node) -> str:
    """The name of the fx node ``node`` reads as its first argument."""
    a = node.args[0]
    return a.name if isinstance(a, fx.Node) else str(a)


def _chans(value: Any) -> list[Chan]:
    if isinstance(value, Chan):
        return [value]
    if isinstance(value, (list, tuple)):
        return [c for v in value for c in _chans(v)]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _chans(v)]
    return []


def _prod(xs: Sequence[int]) -> int:
    p = 1
    for v in xs:
        p *= int(v)
    return p


def _dims(rest: Sequence[Any], nd: int) -> list[int]:
    out: list[int] = []
    for r in rest:
        out += [int(v) % nd for v in r] if isinstance(r, (list, tuple)) else [int(r) % nd]
    return out


def _positions(shape: Sequence[int], axis: int, batch: int) -> int:
    """Positions per sample a linear map is applied at: the output size per leading index over its width."""
    return max(1, _prod(shape) // max(1, int(shape[0]) if shape else 1) // max(1, int(shape[axis])))


def _const(fn: Callable[[Tensor], Tensor], d: Dead) -> Dead:
    if d is None:
        return None
    try:
        with torch.no_grad():
            v = float(fn(torch.full((1,), d, dtype=torch.float64)).reshape(-1)[0])
    except Exception:  # an op that cannot take a float64 scalar: unknown, which is safe
        return None
    return v if math.isfinite(v) else None


def _unary(x: Any, fn: Callable[[Tensor], Tensor], name: str | None) -> Chan:
    if not isinstance(x, Chan):
        raise _Refuse("element-wise function of an untraced value with traced arguments")
    chain = [(name, c[1]) if (name is not None and c is not None and c[0] == "identity") else
             (c if name == "identity" else None) for c in x.chain]
    values = {d: _const(fn, d) for d in set(x.dead)}  # one evaluation per distinct dead value
    return Chan(x.axis, list(x.slots), [values[d] for d in x.dead], chain)


def _zero_kept(x: Any) -> Chan:
    if not isinstance(x, Chan):
        raise _Refuse("channel-wise op of an untraced value with traced arguments")
    return Chan(x.axis, list(x.slots), [0.0 if d == 0.0 else None for d in x.dead], [None] * len(x.slots))


def _combine(kind: str, d1: Dead, d2: Dead, flip: bool) -> Dead:
    if kind == "mul":
        if d1 == 0.0 or d2 == 0.0:
            return 0.0
        return d1 * d2 if d1 is not None and d2 is not None else None
    if d1 is None or d2 is None:
        return None
    if kind == "add":
        return d1 + d2
    if kind == "sub":
        return d2 - d1 if flip else d1 - d2
    if kind == "div":
        return d1 / d2 if d2 != 0 else None
    return None
