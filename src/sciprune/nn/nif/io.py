r"""Building and loading NIF models, from an ``arch`` or from a sciprune checkpoint.

``arch = {"class": "NIF" | "NIFMultiScale" | "NIFLastLayer", "shape": {...}, "parameter": {...}}``
(a model's ``arch`` property). Importing this module registers the three classes with ``core.io``,
so ``core.io.build_model`` rebuilds them too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sciprune.core import register_family
from sciprune.errors import InputError
from sciprune.nn.nif.models import NIF, NIFLastLayer, NIFMultiScale


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
    from sciprune.core import load_checkpoint
    from sciprune.core import load_state_dict

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
