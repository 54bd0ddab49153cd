r"""``Traced``: any ``nn.Module`` as a :class:`~sciprune.core._units.Prunable`, through its traced graph.

``Traced(model, example_inputs)`` wraps a user's network (``.module``); ``forward`` calls it unchanged.
Its units come from :func:`sciprune.core._trace.trace_channels` (parameter names carry the prefix
``module.``), so :func:`~sciprune.core._pruning.prune`, :func:`~sciprune.core._compact.compact`,
:func:`~sciprune.core._count.count_params`, :func:`~sciprune.core._count.network_stats`,
:func:`~sciprune.core._io.save_checkpoint` and :func:`~sciprune.core._io.load_model` work on it through
the same paths as on a shipped family.

* :meth:`Traced.compact_units` cuts every parameter and mask along the removed units
  (:func:`sciprune.core._shrink.compact_state`, constants folded), cuts ``BatchNorm`` running statistics
  with them, and puts the smaller tensors into a deep copy of the model, updating ``in_features``,
  ``out_channels``, ``num_features``, ...; the copy is traced again.
* :meth:`Traced.flops`: :math:`\sum (2\,\mathrm{nnz}(W) + \mathrm{nnz}(b))\, P` over every call of a
  ``Linear``/``Conv``, where :math:`P` is the number of positions the map is applied at per leading
  index of its output (1 for a ``Linear`` on ``(batch, features)``, the output's spatial size for a
  convolution), read from the example inputs.
* :attr:`Traced.arch`: ``{"class": "Traced", "factory": "pkg.mod:fn", "factory_kwargs": {...},
  "inputs": [[shape, dtype], ...], "widths": {group: size}}``. The ``"Traced"`` builder of
  :mod:`sciprune.core._io` calls the factory, traces its model on zeros of the stored input shapes,
  shrinks every group to its stored width and returns it for the safetensors state to be loaded: no
  pickle is ever read. Without a factory a traced model can be saved, not rebuilt.
"""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.core._io import register_family
from sciprune.core._masks import load_state_dict
from sciprune.core._trace import TraceResult, map_tensors, tensors_of, trace_channels
from sciprune.core._units import PruningUnits
from sciprune.errors import InputError

PREFIX = "module."


def _nested_tensors(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(_nested_tensors(v) for v in x)


def as_inputs(example_inputs: Any) -> tuple[Any, ...]:
    """``example_inputs`` as the tuple of positional arguments of ``forward`` (one tensor is one input;
    an argument may itself be a tuple of tensors, as DeepXDE's operator networks take); anything else
    is refused."""
    xs = (example_inputs,) if isinstance(example_inputs, Tensor) else example_inputs
    if not isinstance(xs, (tuple, list)) or not xs or not all(_nested_tensors(x) for x in xs):
        raise InputError(f"example_inputs must be a tensor or a tuple of tensors (or of tuples of tensors); "
                         f"got {type(example_inputs).__name__}")
    return tuple(map_tensors(lambda t: t.detach(), x) for x in xs)


def on_device_of(model: nn.Module, xs: tuple[Any, ...]) -> tuple[Any, ...]:
    """``xs`` on the device of ``model``'s first parameter or buffer (unchanged without any)."""
    ref: Tensor | None = next(iter(model.parameters()), None)
    if ref is None:
        ref = next(iter(model.buffers()), None)
    if ref is None:
        return xs
    device = ref.device
    return tuple(map_tensors(lambda t: t.to(device), x) for x in xs)


def _spec(x: Any) -> Any:
    """JSON-able shapes and dtypes of (nested) example inputs."""
    if isinstance(x, Tensor):
        return [list(x.shape), str(x.dtype).removeprefix("torch.")]
    return {"seq": [_spec(v) for v in x]}


def _zeros(spec: Any, dtype: torch.dtype | None = None) -> Any:
    """Zeros of the shapes :func:`_spec` recorded."""
    if isinstance(spec, dict):
        return tuple(_zeros(v, dtype) for v in spec.get("seq", []))
    shape, dt = spec
    stored = getattr(torch, str(dt), None)
    if not isinstance(stored, torch.dtype):
        raise InputError(f"checkpoint input dtype {dt!r} is not a torch dtype")
    return torch.zeros([int(d) for d in shape], dtype=dtype if (dtype is not None and stored.is_floating_point) else stored)


class Traced(nn.Module):
    """A user's network with pruning units traced from its graph (see the module docstring)."""

    def __init__(self, model: nn.Module, example_inputs: Any, *,
                 factory: str | None = None, factory_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise InputError(f"Traced needs an nn.Module; got {type(model).__name__}")
        if isinstance(model, Traced):
            raise InputError("the model is already Traced; pass its .module to trace it again")
        self.module = model
        self.example_inputs = as_inputs(example_inputs)
        if factory is not None and (not isinstance(factory, str) or factory.count(":") != 1):
            raise InputError(f"factory must be 'package.module:function'; got {factory!r}")
        try:
            json.dumps(dict(factory_kwargs or {}))
        except (TypeError, ValueError):
            raise InputError(f"factory_kwargs must be JSON-able (numbers, strings, lists, dicts); got {factory_kwargs!r}") from None
        self.factory = factory
        self.factory_kwargs = dict(factory_kwargs or {})
        self.trace: TraceResult = trace_channels(model, on_device_of(model, self.example_inputs), PREFIX)
        self.training = model.training  # the wrapper follows the model's mode (not its submodules')

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def pruning_units(self) -> PruningUnits:
        return self.trace.units

    @property
    def arch(self) -> dict[str, object]:
        return {
            "class": "Traced",
            "factory": self.factory,
            "factory_kwargs": dict(self.factory_kwargs),
            "inputs": [_spec(x) for x in self.example_inputs],
            "widths": {g.name: g.size for g in self.trace.units.groups},
        }

    def flops(self) -> int:
        total = 0
        for name, positions in self.trace.flop_sites:
            m = self.module.get_submodule(name)
            w = m.get_parameter("weight").detach()
            b = getattr(m, "bias", None)
            total += (2 * int((w != 0).sum()) + (int((b.detach() != 0).sum()) if b is not None else 0)) * positions
        return total

    def compact_units(self, keep: dict[str, Tensor]) -> Traced:
        """A new ``Traced`` around a physically smaller copy of the model keeping, for each named group,
        the units ``keep[name]`` (``(1, k)`` sorted indices).

        The removed units must be removable (:func:`sciprune.core._shrink.removable`), so the smaller
        network computes what this one does: that is checked on the example inputs, and a difference
        (a construct the tracer did not see) is refused rather than returned.
        """
        small = self.shrunk(keep)
        err = relative_difference(small, self, on_device_of(self.module, self.example_inputs))
        tol = 1e-9 if tensors_of(self.example_inputs)[0].dtype == torch.float64 else 1e-4
        if not err <= tol:
            raise InputError(
                f"compacting the traced {type(self.module).__name__} changed its outputs on the example inputs "
                f"(relative difference {err:.2e} > {tol:.0e}); its code does something the tracer did not see "
                "(e.g. a branch on a feature width): keep it masked, do not compact it"
            )
        return small

    def shrunk(self, keep: dict[str, Tensor]) -> Traced:
        """:meth:`compact_units` without the check (the ``"Traced"`` builder shrinks fresh weights)."""
        from sciprune.core._shrink import compact_state

        sd = compact_state(self, keep, self.trace.units)
        for name, bufs in self.trace.buffers.items():
            if name not in keep:
                continue
            g = next(g for g in self.trace.units.groups if g.name == name)
            drop = torch.ones(g.size, dtype=torch.bool)
            drop[keep[name].reshape(-1).cpu()] = False
            for buf, axis, index in bufs:
                stay = torch.ones(sd[buf].shape[axis], dtype=torch.bool)
                stay[index[drop].reshape(-1)] = False
                sd[buf] = sd[buf].index_select(axis, stay.nonzero().flatten().to(sd[buf].device))
        small = copy.deepcopy(self.module)
        resize(small, {k.removeprefix(PREFIX): v for k, v in sd.items()})
        out = Traced(small, self.example_inputs, factory=self.factory, factory_kwargs=self.factory_kwargs)
        load_state_dict(out, sd)
        return out


def _flat(out: Any) -> Tensor:
    if isinstance(out, Tensor):
        return out.detach().reshape(-1)
    if isinstance(out, (list, tuple)):
        return torch.cat([_flat(o) for o in out]) if out else torch.zeros(0)
    if isinstance(out, dict):
        return _flat(list(out.values()))
    raise InputError(f"a traced model must return tensors (or tuples/dicts of them); got {type(out).__name__}")


def relative_difference(a: nn.Module, b: nn.Module, xs: tuple[Any, ...]) -> float:
    """``max |a(xs) - b(xs)| / (1 + max |b(xs)|)``, both in eval mode (training flags restored)."""
    flags = [(m, m.training) for net in (a, b) for m in net.modules()]
    try:
        a.eval(), b.eval()
        with torch.no_grad():
            ya, yb = _flat(a(*xs)), _flat(b(*xs))
    finally:
        for m, t in flags:
            m.training = t
    if ya.shape != yb.shape:
        return float("inf")
    return float((ya - yb).abs().max()) / (1.0 + float(yb.abs().max())) if ya.numel() else 0.0


def resize(model: nn.Module, state: dict[str, Tensor]) -> None:
    """Give every parameter and buffer of ``model`` the shape it has in ``state`` (values are loaded
    later) and update the modules' width attributes (``in_features``, ``out_channels``, ...)."""
    for mod_name, m in model.named_modules():
        pre = f"{mod_name}." if mod_name else ""
        for local, p in list(m.named_parameters(recurse=False)):
            new = state.get(pre + local)
            if new is not None and new.shape != p.shape:
                setattr(m, local, nn.Parameter(p.new_empty(new.shape), requires_grad=p.requires_grad))
        for local, b in list(m.named_buffers(recurse=False)):
            new = state.get(pre + local)
            if b is not None and new is not None and new.shape != b.shape:
                m._buffers[local] = b.new_empty(new.shape)
        w = getattr(m, "weight", None)
        if isinstance(m, nn.Linear):
            m.out_features, m.in_features = int(m.weight.shape[0]), int(m.weight.shape[1])
        elif isinstance(m, nn.modules.conv._ConvNd):  # weight (out, in/groups, *k); transposed (in, out/groups, *k)
            a, b = int(m.weight.shape[0]), int(m.weight.shape[1]) * m.groups
            m.in_channels, m.out_channels = (a, b) if m.transposed else (b, a)
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            src = w if isinstance(w, Tensor) else getattr(m, "running_mean", None)
            if isinstance(src, Tensor):
                m.num_features = int(src.shape[0])


def _import_factory(spec: str) -> Any:
    mod, sep, fn = spec.partition(":")
    if not sep or not mod or not fn:
        raise InputError(f"factory {spec!r} is not 'package.module:function'")
    try:
        obj: Any = importlib.import_module(mod)
    except ImportError as err:
        raise InputError(f"factory {spec!r}: cannot import module {mod!r} ({err}); expected an importable module") from None
    for part in fn.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InputError(f"factory {spec!r}: module {mod!r} has no {fn!r}; expected a function returning an nn.Module")
    if not callable(obj):
        raise InputError(f"factory {spec!r} is not callable; expected a function returning an nn.Module")
    return obj


def build_traced(arch: dict[str, Any], *, dtype: torch.dtype = torch.float32) -> Traced:
    """The ``"Traced"`` family builder: factory, trace, shrink to the stored widths (module docstring)."""
    spec = arch.get("factory")
    if not isinstance(spec, str):
        raise InputError("this Traced checkpoint names no factory; save it from Traced(model, inputs, "
                         "factory='package.module:function') to be able to load it")
    model = _import_factory(spec)(**dict(arch.get("factory_kwargs") or {}))
    if not isinstance(model, nn.Module):
        raise InputError(f"factory {spec!r} returned a {type(model).__name__}; expected an nn.Module")
    model = model.to(dtype)
    inputs = tuple(_zeros(spec, dtype) for spec in arch.get("inputs", []))
    net = Traced(model, inputs, factory=spec, factory_kwargs=dict(arch.get("factory_kwargs") or {}))
    widths = dict(arch.get("widths") or {})
    sizes = {g.name: g.size for g in net.trace.units.groups}
    unknown = sorted(set(widths) - set(sizes))
    if unknown:
        raise InputError(f"checkpoint groups {unknown} are not in the model the factory {spec!r} builds "
                         f"(its groups: {sorted(sizes)}); expected the factory the checkpoint was saved with")
    keep = {name: torch.arange(int(w))[None] for name, w in widths.items() if int(w) < sizes[name]}
    return net.shrunk(keep) if keep else net


register_family("Traced", build_traced)
