"""A user's network: built by their factory ``pkg.module:function``, optionally loaded with weights,
checked against their samples.

**This imports and runs the user's code** (the factory's module and the factory itself), as
``python -c "from pkg.module import function; function(**kwargs)"`` would; the current folder is on
the import path for it. Everything that can go wrong there is one :class:`InputError` line: a module
that does not import, a missing or non-callable name, a factory that raises or returns something
other than an ``nn.Module``, a weights file that is not a state dict of this network, a network
that fails on the samples or whose output shape is not the targets'.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from sciprune.core import load_checkpoint
from sciprune.errors import InputError
from sciprune.studies.prune.samples import Samples
from sciprune.validate import input_file, safetensors_header


def _detail(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def cwd_on_path() -> Iterator[None]:
    """The current folder first on ``sys.path`` for the import (as ``python -m`` has it)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def factory_of(spec: str) -> Callable[..., Any]:
    """The callable ``pkg.module:function`` names (imports the module: runs its top-level code)."""
    module_name, _, attr = spec.partition(":")
    try:
        with cwd_on_path():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise InputError(f"--model {spec!r}: no module named {err.name!r} (from the current folder "
                             f"{os.getcwd()!r} or the installed packages); expected pkg.module:function") from None
        raise InputError(f"--model {spec!r}: importing {module_name!r} failed ({_detail(err)}); fix the module or install what it imports") from None
    except Exception as err:  # noqa: BLE001 - a user's module may fail in any way
        raise InputError(f"--model {spec!r}: importing {module_name!r} failed ({_detail(err)}); fix the module") from None
    fn = getattr(module, attr, None)
    if fn is None:
        names = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InputError(f"--model {spec!r}: module {module_name!r} has no attribute {attr!r}; "
                         f"expected a function that returns the network (callables there: {shown or 'none'})")
    if not callable(fn):
        raise InputError(f"--model {spec!r}: {attr!r} is a {type(fn).__name__}, not callable; "
                         "expected a function (or class) that returns an nn.Module")
    return fn  # type: ignore[no-any-return]


def build(spec: str, kwargs: dict[str, Any]) -> nn.Module:
    """``factory(**kwargs)``, checked to be an ``nn.Module`` with at least one floating-point parameter."""
    fn = factory_of(spec)
    try:
        net = fn(**kwargs)
    except Exception as err:  # noqa: BLE001 - the user's factory may fail in any way
        raise InputError(f"--model {spec!r}: calling it with --model-kwargs {kwargs!r} raised {_detail(err)}; "
                         "expected it to return the network") from None
    if not isinstance(net, nn.Module):
        raise InputError(f"--model {spec!r} returned a {type(net).__name__}; expected a torch.nn.Module")
    floats = [p for p in net.parameters() if p.is_floating_point()]
    if not floats:
        raise InputError(f"--model {spec!r} returned a {type(net).__name__} without floating-point parameters; "
                         "expected a network with weights to prune")
    return net


def load_weights(net: nn.Module, path: str) -> None:
    """Load a state dict (safetensors, or torch.save read with ``weights_only``) into ``net``, strictly."""
    file = input_file(path, "weights file", "a state dict of the network (safetensors or torch.save)")
    if file.read_bytes()[8:9] == b"{":
        safetensors_header(file, "weights file")
    state = load_checkpoint(file).tensors
    state = {k: v for k, v in state.items() if not k.endswith("_mask")}
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = ([f"lacks {', '.join(missing[:3])}" + (", ..." if len(missing) > 3 else "")] if missing else []) + \
                ([f"has unknown {', '.join(extra[:3])}" + (", ..." if len(extra) > 3 else "")] if extra else [])
        raise InputError(f"weights file {path!r} {' and '.join(parts)}; expected the state dict of the network "
                         f"the factory builds ({len(expected)} tensors: {', '.join(list(expected)[:3])}, ...)")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise InputError(f"weights file {path!r}: {k} has shape {tuple(state[k].shape)}; the network's is "
                             f"{tuple(v.shape)} (other --model-kwargs?)")
        if v.is_floating_point() and not torch.isfinite(state[k]).all():
            raise InputError(f"weights file {path!r}: {k} holds NaN or infinite values; expected finite weights")
    with torch.no_grad():
        net.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected})


def dtype_of(net: nn.Module) -> torch.dtype:
    return next(p.dtype for p in net.parameters() if p.is_floating_point())


def check_forward(net: nn.Module, samples: Samples, spec: str) -> None:
    """Run ``net`` on a few samples: it must not fail and its output must have the targets' shape."""
    probe = samples.head(4).to(torch.device("cpu"), dtype_of(net))
    shapes = ", ".join(f"{n} {tuple(x.shape)}" for n, x in zip(probe.names, probe.inputs))
    how = "net((" + ", ".join(probe.names) + ",))" if probe.packing == "tuple" else "net(" + ", ".join(probe.names) + ")"
    try:
        with torch.no_grad():
            out = probe.call(net.eval())
    except Exception as err:  # noqa: BLE001 - the user's forward may fail in any way
        other = "args" if probe.packing == "tuple" else "tuple"
        raise InputError(f"--model {spec!r}: {how} on {shapes} raised {_detail(err)}; expected the inputs the network "
                         f"takes (check the data's shapes, or --inputs {other})") from None
    if not isinstance(out, torch.Tensor):
        raise InputError(f"--model {spec!r}: {how} returned a {type(out).__name__}; expected one tensor")
    if tuple(out.shape) != tuple(probe.y.shape):
        raise InputError(f"--model {spec!r}: {how} on {shapes} gives shape {tuple(out.shape)} but y has "
                         f"{tuple(probe.y.shape)} for these samples; expected outputs shaped like y")


def user_network(spec: str, kwargs: dict[str, Any], weights: str | None, samples: Samples) -> nn.Module:
    """The user's network, built, loaded and checked against ``samples`` (in eval mode, on the CPU)."""
    net = build(spec, kwargs)
    if weights is not None:
        load_weights(net, weights)
    check_forward(net, samples, spec)
    return net.eval()


