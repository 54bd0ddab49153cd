r"""Channel groups traced from a network's own graph (``torch.fx``), never guessed.

:func:`trace_channels` traces ``model`` symbolically, runs it once on the example inputs to learn every
value's shape, and follows each *channel* (one position along a value's feature axis) through the
graph. Channels and parameter positions are elements of one union-find:

* a ``Linear``/``Conv`` output channel ``o`` is a new channel joined with its weight row ``W[o]`` and
  bias ``b[o]`` (the *incoming* and *attached* slices of its unit);
* an input channel ``i`` of a ``Linear``/``Conv`` is joined with its column ``W[:, i]`` (*outgoing*);
* element-wise functions keep channels; ``a + b``, ``a - b``, ``a * b`` of two feature tensors join
  their channels position by position (a residual stream, a gate, DeepONet's branch·trunk product);
* ``cat`` concatenates index maps, ``chunk`` joins position ``j`` of every chunk (so the chunks stay
  equal), ``flatten``/``reshape`` map a channel to several positions where the feature axis is
  provable, ``permute``/``transpose``/``unsqueeze`` move the axis, ``sum``/``einsum`` over the feature
  axis are *sinks*; ``BatchNorm`` attaches its affine entries and running statistics.

A union-find class is one *unit*: every slice of every parameter that lives and dies with it.
Removing it is exact when nothing else reads it: every reader is a column (masked with the unit) or a
sink where the unit's value once its slices are zero (its *dead value*, propagated as a constant) is
exactly 0. Anything else **blocks** the class, with the node and the reason: a network output, an
unknown op, ``LayerNorm`` (it normalises over the features: removing one changes all others), a
per-channel tensor that is not a module parameter (an input, a parameter used outside a module), a
hard-coded size (``h[:, :16]``, ``split([16, 16])``, ``view(B, 32)``) that would not follow
compaction, a grouped convolution. A graph ``torch.fx`` cannot trace (data-dependent control flow)
blocks every channel; weights stay prunable.

The fold rule (:mod:`sciprune.core._fold`) needs the constant a removed unit emits: a unit with one
producer read only through one named activation :math:`\sigma` (``Linear -> tanh -> Linear``) gets
``activation = σ`` and its ``Linear`` readers name their bias in ``fold_into``; any other unit gets
no ``fold_into`` and ``activation`` ``"identity"`` when its dead value is 0 at every reader, else
:data:`sciprune.core._fold.OPAQUE` (compaction then removes it only when nothing reads it).
"""

from __future__ import annotations

import copy
import inspect
import linecache
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.fx as fx
from torch import Tensor, nn
from torch.fx.passes.shape_prop import ShapeProp

from sciprune.core._fold import OPAQUE
from sciprune.core._traceops import CONVS, TCONVS, Blocked, Dead, Walk
from sciprune.core._units import NeuronGroup, PruningUnits, Slice, WeightUnit
from sciprune.errors import InputError

__all__ = ["Blocked", "Read", "TraceResult", "fx_graph", "map_tensors", "tensors_of", "trace_channels"]


@dataclass(frozen=True)
class Read:
    """A unit read by a linear consumer: positions ``index`` (``(size, k)``) along ``axis`` of the
    value of fx node ``node`` (used by ID pruning to collect activations)."""

    node: str
    axis: int
    index: Tensor


@dataclass
class TraceResult:
    """What :func:`trace_channels` found (``prefix`` is prepended to every parameter name)."""

    units: PruningUnits
    blocked: dict[str, list[Blocked]]              # group name -> reasons (non-prunable groups)
    unowned: list[Blocked]                         # reasons that touched no parameter (inputs, ...)
    buffers: dict[str, list[tuple[str, int, Tensor]]]  # group -> (buffer, axis, index) cut with it
    reads: dict[str, list[Read]]                   # group -> where its linear consumers read it
    sinks: dict[str, list[str]]                    # group -> non-linear readers (sums, products)
    flop_sites: list[tuple[str, int]]              # (module, positions per sample) of every linear map call
    error: str | None = None                       # fx could not trace: every channel blocked
    graph: fx.GraphModule | None = None



def tensors_of(x: Any) -> list[Tensor]:
    """The tensors of a (nested) tuple/list of tensors, in order."""
    if isinstance(x, Tensor):
        return [x]
    return [t for v in x for t in tensors_of(v)] if isinstance(x, (list, tuple)) else []


def map_tensors(fn: Callable[[Tensor], Tensor], x: Any) -> Any:
    """``x`` with ``fn`` applied to every tensor of its (nested) tuples/lists."""
    if isinstance(x, Tensor):
        return fn(x)
    return type(x)(map_tensors(fn, v) for v in x) if isinstance(x, (list, tuple)) else x


def _user_frame() -> str:
    """``File "...", line N, in f`` and the code of the innermost frame outside torch and this tracer
    (cheap: torch's own ``record_stack_traces`` symbolises through ``torch._inductor``, seconds to import)."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if "/torch/" not in name and "/sciprune/core/" not in name:
            code = linecache.getline(name, f.f_lineno).strip()
            return f'File "{name}", line {f.f_lineno}, in {f.f_code.co_name}\n    {code}'
        f = f.f_back  # type: ignore[assignment]
    return ""


TracerT = TypeVar("TracerT", bound=fx.Tracer)


def _with_source(base: type[TracerT]) -> type[TracerT]:
    """``base`` recording each node's user source line in ``node.meta["stack_trace"]``."""

    class Recording(base):  # type: ignore[valid-type,misc]
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            # a user's subclass of Linear/Conv/BatchNorm that keeps torch's forward (only its init
            # differs) is that layer: a leaf, like torch's own
            for cls in (nn.Linear, *CONVS, *TCONVS, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
                if isinstance(m, cls) and type(m).forward is cls.forward:
                    return True
            return bool(super().is_leaf_module(m, qualname))

        def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
            node = super().create_node(*args, **kwargs)
            node.meta["stack_trace"] = _user_frame()
            return node

    return Recording


def fx_graph(model: nn.Module, example_inputs: tuple[Any, ...] = ()) -> fx.GraphModule:
    """``model``'s graph from ``torch.fx`` symbolic tracing, with source lines recorded.

    Where plain symbolic tracing fails on control flow that depends only on *shapes* (``if t.dim() ==
    0``), the graph is traced again with ``torch.fx``'s meta tracer, which knows every shape from
    ``example_inputs``: that graph is specialised to those shapes (enough to find the units, which
    :class:`~sciprune.core._traced.Traced` checks again after every compaction). Control flow on
    *values* fails both ways and is reported.
    """
    try:
        return fx.GraphModule(model, _with_source(fx.Tracer)().trace(model))
    except Exception as first:  # fx raises many types for untraceable code
        if not example_inputs:
            raise
        from torch.fx.experimental.meta_tracer import MetaTracer

        names = [n for n, p in inspect.signature(model.forward).parameters.items()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(names) < len(example_inputs):
            raise first from None
        meta = _with_source(MetaTracer)()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not compute metadata": shapes come from ShapeProp
            try:  # a copy on the meta device, so every module's output shape is known while tracing
                graph = meta.trace(copy.deepcopy(model).to("meta"), meta_args={n: map_tensors(lambda t: t.to("meta"), x)
                                                   for n, x in zip(names, example_inputs)})
            except Exception:
                raise first from None
        return fx.GraphModule(model, graph)


def trace_channels(model: nn.Module, example_inputs: tuple[Any, ...], prefix: str = "") -> TraceResult:
    """The pruning units of ``model`` traced from its graph (see the module docstring).

    ``prefix`` is prepended to every parameter name (``"module."`` inside :class:`Traced`). The model is
    run once on ``example_inputs`` in eval mode (its training flag is restored; nothing is updated).
    """
    weights = tuple(
        WeightUnit(f"{prefix}{name}.weight" if name else f"{prefix}weight", layer=name)
        for name, m in model.named_modules() if isinstance(m, (nn.Linear, *CONVS, *TCONVS))
    )
    try:
        gm = fx_graph(model, example_inputs)
    except Exception as err:  # fx raises many types for untraceable code (control flow on values, ...)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        user = [f for f in traceback.extract_tb(err.__traceback__)
                if "/torch/" not in f.filename and "/sciprune/core/" not in f.filename]
        where = f'"{user[-1].filename}", line {user[-1].lineno}, in {user[-1].name}: {user[-1].line}' if user else ""
        return TraceResult(PruningUnits(weights, ()), {},
                           [Blocked(f"torch.fx cannot trace the model ({first})", "control flow" if where else "", where)],
                           {}, {}, {}, [], error=first)
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*example_inputs)
    except Exception as err:  # the user's inputs do not fit the user's model
        cause = err.__cause__ or err
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        shapes = [tuple(x.shape) for x in tensors_of(example_inputs)]
        raise InputError(f"{type(model).__name__} fails on example inputs of shapes {shapes} ({first}); "
                         "expected inputs the model accepts") from None
    finally:
        for m, t in flags:
            m.training = t
    given = tensors_of(example_inputs)
    batch = int(given[0].shape[0]) if given and given[0].dim() else 1
    an = Walk(model, gm, prefix, batch)
    an.run()
    return _assemble(an, weights, gm)


@dataclass
class _Unit:
    pos: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    bufs: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    blocked: list[Blocked] = field(default_factory=list)
    reads: list[tuple[str, int, int, Dead, tuple[str, int] | None, str | None]] = field(default_factory=list)
    sinks: list[str] = field(default_factory=list)
    producers: set[int] = field(default_factory=set)
    biases: set[str | None] = field(default_factory=set)
    slots: list[int] = field(default_factory=list)


def _assemble(an: Walk, weights: tuple[WeightUnit, ...], gm: fx.GraphModule) -> TraceResult:
    units: dict[Any, _Unit] = {}

    def unit(key: Any) -> _Unit:
        root = an.find(key)
        u = units.get(root)
        if u is None:
            u = units[root] = _Unit()
        return u

    for (param, axis, p) in an.positions:
        unit(("p", param, axis, p)).pos.setdefault((param, axis), []).append(p)
    for buf, axis, p, s in an.buffers:
        unit(("s", s)).bufs.setdefault((buf, axis), []).append(p)
    for s, why in an.blocks:
        u = unit(("s", s))
        if why not in u.blocked:
            u.blocked.append(why)
    for s, node, axis, p, dead, chain, fold in an.reads:
        unit(("s", s)).reads.append((node, axis, p, dead, chain, fold))
    for s, where in an.sinks:
        unit(("s", s)).sinks.append(where)
    for s, call in an.producers.items():
        u = unit(("s", s))
        u.producers.add(call)
        u.slots.append(s)
        u.biases.add(an.producer_bias[s])
    unowned = list(an.unowned)
    for u in units.values():
        if not any(an.roles[k][0] == "in" for k in u.pos):
            if u.pos:
                u.blocked.append(Blocked("no layer produces these channels (a network input, or a norm's output)", "", ""))
            else:
                unowned.extend(b for b in u.blocked if b not in unowned)
    # group units that touch the same tensors the same way
    sigs: dict[tuple[Any, ...], list[_Unit]] = {}
    for u in units.values():
        if not u.pos:
            continue
        act, fold_ok = _activation(an, u)
        sig = tuple(sorted((an.roles[k][0], k[0], k[1], len(ps), an.roles[k][1] if fold_ok else None)
                           for k, ps in u.pos.items()))
        bsig = tuple(sorted((k[0], k[1], len(ps)) for k, ps in u.bufs.items()))
        sigs.setdefault((sig, bsig, act, bool(u.blocked), tuple(sorted(_read_sig(u)))), []).append(u)
    groups: list[NeuronGroup] = []
    blocked: dict[str, list[Blocked]] = {}
    buffers: dict[str, list[tuple[str, int, Tensor]]] = {}
    reads: dict[str, list[Read]] = {}
    sinks: dict[str, list[str]] = {}
    taken: set[str] = set()
    for (sig, bsig, act, is_blocked, rsig), us in sorted(sigs.items(), key=lambda kv: _order(kv[1])):
        us.sort(key=lambda u: min(min(ps) for ps in u.pos.values()))
        name = _group_name(an, sig, taken)
        inc: list[Slice] = []
        out: list[Slice] = []
        att: list[Slice] = []
        for role, param, axis, k, fold in sig:
            idx = torch.tensor([sorted(u.pos[(param, axis)]) for u in us], dtype=torch.long).reshape(len(us), k)
            (inc if role == "in" else out if role == "out" else att).append(Slice(param, axis, idx, fold_into=fold))
        if inc:  # a class with no producer (columns reading a norm's output, ...) is only reported
            groups.append(NeuronGroup(name, len(us), tuple(inc), tuple(out), tuple(att), activation=act,
                                      prunable=not is_blocked))
        if is_blocked:
            blocked[name] = [b for u in us for b in u.blocked]
            blocked[name] = list(dict.fromkeys(blocked[name]))
        buffers[name] = [(b, axis, torch.tensor([sorted(u.bufs[(b, axis)]) for u in us], dtype=torch.long).reshape(len(us), k))
                         for b, axis, k in bsig]
        reads[name] = [Read(node, axis, torch.tensor([sorted(p for (n2, a2, p, *_) in u.reads if (n2, a2) == (node, axis)) for u in us],
                                                     dtype=torch.long).reshape(len(us), -1))
                       for node, axis in rsig]
        sinks[name] = sorted({w for u in us for w in u.sinks})
    return TraceResult(PruningUnits(weights, tuple(groups)), blocked, unowned, buffers, reads, sinks, an.flop_sites, graph=gm)


def _read_sig(u: _Unit) -> set[tuple[str, int]]:
    return {(node, axis) for node, axis, *_ in u.reads}


def _order(us: list[_Unit]) -> tuple[int, ...]:
    return (min((s for u in us for s in u.slots), default=1 << 60), min(min(ps) for u in us for ps in u.pos.values()))


def _activation(an: Walk, u: _Unit) -> tuple[str, bool]:
    """The group's ``activation`` and whether its readers may fold its constant (module docstring)."""
    chains = {r[4] for r in u.reads}
    atts = {k[0] for k in u.pos if an.roles[k][0] == "att"}
    if (len(u.producers) == 1 and not u.sinks and not u.bufs and len(chains) == 1 and None not in chains
            and atts <= {b for b in u.biases if b is not None}):
        ch = next(iter(chains))
        assert ch is not None
        return ch[0], True
    deads = [r[3] for r in u.reads]
    return ("identity" if all(d == 0.0 for d in deads) else OPAQUE), False


def _group_name(an: Walk, sig: tuple[Any, ...], taken: set[str]) -> str:
    mods: list[str] = []
    readers: list[str] = []
    for role, param, *_ in sig:
        m = param[len(an.prefix):].rpartition(".")[0] or "self"
        bucket = mods if role == "in" else readers if role == "out" else []
        if m not in bucket:
            bucket.append(m)
    mods.sort(key=lambda m: an.order.get(m, 1 << 30))
    if mods:
        base = "+".join(mods[:3]) + (f"+{len(mods) - 3}" if len(mods) > 3 else "")
    else:
        base = "inputs of " + "+".join(readers)
    name, i = base, 2
    while name in taken:
        name, i = f"{base}#{i}", i + 1
    taken.add(name)
    return name
