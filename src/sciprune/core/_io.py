"""Checkpoints that load without executing code.

* **Model checkpoints** are safetensors files: the state dict (masks included, as ``*_mask``
  tensors) plus JSON metadata under the key ``"sciprune"`` (the architecture, so the model can be
  rebuilt, and whatever the caller adds).
* **Run state** (optimizer state, stage records) is written with ``torch.save`` and read back with
  ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only.
* A pickle with arbitrary objects is refused unless the caller passes ``trust_pickle=True``.

Every reader turns a missing, truncated or foreign file into one :class:`InputError` line.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.errors import InputError
from sciprune.core._atomic import atomic_write_with

META_KEY = "sciprune"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its tensors and its metadata."""

    tensors: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    format: str = "safetensors"


def save_checkpoint(path: str | Path, model: nn.Module, *, meta: dict[str, Any] | None = None) -> None:
    """Write ``model.state_dict()`` (with masks) and metadata to a safetensors file, atomically.

    A tensor the state dict holds under several names (a module shared by two owners: a CNF's field is
    also its dynamics' field) is written once per name, as copies: safetensors refuses entries that
    share memory, and loading sets every name, so the owners stay equal. The metadata's
    ``shared_tensors`` maps each later name to the first (:func:`shared_names`), so a reader counts the
    tensor once."""
    from safetensors.torch import save_file

    info = dict(meta or {})
    arch = getattr(model, "arch", None)
    if arch is not None:
        info.setdefault("arch", arch)
    state = model.state_dict()
    if shared := shared_names(state):
        info["shared_tensors"] = shared
    tensors = {k: (v.detach().clone() if k in shared else v.detach()).contiguous().cpu() for k, v in state.items()}
    atomic_write_with(path, lambda tmp: save_file(tensors, tmp, metadata={META_KEY: json.dumps(info)}))


def shared_names(state: dict[str, Tensor]) -> dict[str, str]:
    """``{name: first name}`` for every entry of ``state`` that is the same tensor as an earlier entry
    (the same memory, shape and strides: a module held under two names)."""
    first: dict[tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype], str] = {}
    shared = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), int(t.storage_offset()), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() and key in first:
            shared[name] = first[key]
        else:
            first.setdefault(key, name)
    return shared


def _kind(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} does not exist; expected a file written by sciprune or torch.save")
    head = path.read_bytes()[:16]
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    # safetensors: an 8-byte little-endian header length, then the JSON header. Test it before the
    # pickle magic: a header length whose low byte is 0x80 starts with a pickle's first byte.
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    raise InputError(
        f"checkpoint {str(path)!r} is neither a safetensors nor a torch file (starts with {head[:8]!r}); "
        "expected a file written by sciprune or torch.save"
    )


def torch_load(path: str | Path, *, trust_pickle: bool = False, safe_globals: list[Any] | None = None) -> Any:
    """``torch.load`` that refuses arbitrary pickles.

    Loads with ``weights_only=True`` (plus the classes in ``safe_globals``); a file that needs other
    classes is refused with a clear line unless ``trust_pickle`` (only for files you made yourself).
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "safetensors":
        raise InputError(f"{str(path)!r} is a safetensors file; expected a torch.save file here")
    try:
        if trust_pickle:
            return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(list(safe_globals or [])), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on foreign pickle protocols
            # bytes, not the path: torch.load hands any path named *.safetensors to safetensors
            return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in first or "Unsupported global" in str(err):
            raise InputError(
                f"checkpoint {str(path)!r} contains pickled Python objects that could run code; refusing to load it. "
                "Expected tensors only; if you trust its source, pass --trust-pickle"
            ) from None
        raise InputError(f"checkpoint {str(path)!r} is corrupt ({first}); expected an intact torch.save file") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"checkpoint {str(path)!r} is corrupt or truncated ({first}); expected an intact torch.save file") from None


def load_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Checkpoint:
    """Read a safetensors checkpoint, or a torch file holding a state dict (possibly under ``state_dict``)."""
    path = Path(path)
    kind = _kind(path)
    if kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                raw = (f.metadata() or {}).get(META_KEY, "{}")
            meta = json.loads(raw)
        except (SafetensorError, json.JSONDecodeError, OSError, ValueError) as err:
            raise InputError(f"checkpoint {str(path)!r} is corrupt or truncated ({err}); expected an intact safetensors file") from None
        return Checkpoint(tensors, meta, "safetensors")
    obj = torch_load(path, trust_pickle=trust_pickle)
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and isinstance(obj.get("state"), dict) and isinstance(obj.get("arch"), dict):
        meta, obj = {"arch": obj["arch"]}, obj["state"]  # a cascade stage (stage_NNN.pt / dense.pt)
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = {k: v for k, v in obj.items() if k != "state_dict" and isinstance(v, str | int | float | list | dict)}
        obj = obj["state_dict"]
    else:
        meta = {}
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}; expected a state dict of tensors")
    return Checkpoint(dict(obj), meta, kind)


Builder = Callable[..., nn.Module]  # builder(arch, *, dtype) -> an un-initialised model of that arch
_FAMILIES: dict[str, Builder] = {}


def register_family(name: str, builder: Builder) -> Builder:
    """Make ``arch["class"] == name`` loadable: ``builder(arch, dtype=...)`` returns the model
    (weights are loaded afterwards). Registering the same builder twice is harmless; another
    builder under a taken name is refused."""
    old = _FAMILIES.get(name)
    if old is not None and old is not builder and getattr(old, "__qualname__", None) != getattr(builder, "__qualname__", 1):
        raise ValueError(f"network family {name!r} is already registered")
    _FAMILIES[name] = builder
    return builder


def registered_families() -> list[str]:
    return sorted(_FAMILIES)


def build_model(arch: dict[str, Any], *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A model of ``arch`` from its registered family's builder (weights as the builder leaves them)."""
    name = arch.get("class")
    builder = _FAMILIES.get(str(name))
    if builder is None:
        raise InputError(
            f"unknown network family {name!r}; registered families are {', '.join(registered_families()) or 'none'} "
            "(import the module that defines it, or see sciprune.core._io.register_family)"
        )
    return builder(arch, dtype=dtype)


def load_model(path: str | Path, *, trust_pickle: bool = False) -> nn.Module:
    """Rebuild the model a sciprune checkpoint describes (its ``arch`` metadata), masks included, in eval
    mode (as :func:`~sciprune.core._cascade.load_network`): a batch norm layer in train mode would move
    its running statistics on the first forward pass, even under ``no_grad``. Call ``.train()`` to train on."""
    return load_model_and_meta(path, trust_pickle=trust_pickle)[0]


def load_model_and_meta(path: str | Path, *, trust_pickle: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_model` plus the checkpoint's metadata. The model keeps the stored dtype; eval mode."""
    from sciprune.core._masks import load_state_dict

    ckpt = load_checkpoint(path, trust_pickle=trust_pickle)
    arch = ckpt.meta.get("arch")
    if not isinstance(arch, dict):
        raise InputError(f"checkpoint {str(path)!r} has no architecture metadata; expected one written by sciprune.save_checkpoint")
    floats = [t.dtype for t in ckpt.tensors.values() if t.is_floating_point()]
    model = build_model(arch, dtype=floats[0] if floats else torch.float32)
    try:
        load_state_dict(model, ckpt.tensors)
    except RuntimeError as err:
        raise InputError(f"checkpoint {str(path)!r} does not match its architecture {arch}: {str(err).splitlines()[0]}") from None
    return model.eval(), ckpt.meta


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write run state (tensors, numbers, strings, lists, dicts) for :func:`load_state`, atomically."""
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))


class RunState(dict[str, Any]):
    """Run state read back: a missing entry is one :class:`InputError` line naming the file (a damaged
    checkpoint), not a ``KeyError``."""

    def __init__(self, path: str | Path, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.path = str(path)

    def __missing__(self, key: str) -> Any:
        raise InputError(f"run state {self.path!r} has no {key!r} entry (it holds {', '.join(map(repr, list(self)[:6])) or 'nothing'}); "
                         "expected a checkpoint written by sciprune: the results folder is damaged, re-run into a new --out")


def load_state(path: str | Path) -> dict[str, Any]:
    """Read run state written by :func:`save_state` (``weights_only``: no code runs)."""
    obj = torch_load(path)
    if not isinstance(obj, dict):
        raise InputError(f"run state {str(path)!r} holds a {type(obj).__name__}; expected a dict")
    return RunState(path, obj)
