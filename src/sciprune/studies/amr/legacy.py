"""PruningAMR-format checkpoints, loaded without executing arbitrary pickled code.

Such a file is a ``torch.save``'d dict with ``weights_list`` (``(out, in)`` tensors, often an
``nn.ParameterList``), ``bias_list``, ``act_list`` (activation modules, one per layer, the output
layer included, usually ``nn.Identity``) and optionally ``gauss`` (a Fourier-feature matrix
``G`` (d_in, F): the network then sees ``[cos(2 pi x G), sin(2 pi x G)]``; empty = none).

It is read with ``torch.load(weights_only=True)`` inside ``torch.serialization.safe_globals`` with
an explicit allowlist: the two containers and the activation modules below. Anything else in the
pickle (a custom class, a function) is refused with one line.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sciprune.errors import InputError

#: activation module -> sciprune activation name (see ``sciprune.nn.mlp.ACTIVATIONS``).
SUPPORTED: dict[type[nn.Module], str] = {
    nn.Identity: "identity",
    nn.ReLU: "relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.SiLU: "silu",
    nn.GELU: "gelu",
    nn.Softplus: "softplus",
    nn.ELU: "elu",
}
#: allowlisted but not supported: loading works, and the error names the activation.
_KNOWN_OTHER: tuple[type[nn.Module], ...] = (
    nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.ReLU6, nn.SELU, nn.CELU, nn.Mish, nn.Softsign,
    nn.Tanhshrink, nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid, nn.Softmax,
)
ALLOWLIST: list[Any] = [nn.ParameterList, nn.ModuleList, *SUPPORTED, *_KNOWN_OTHER]


def is_safetensors(path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length ``n``, then ``n`` bytes of JSON."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    return head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size


def is_torch_file(path: Path) -> bool:
    """A torch checkpoint (zip, or a legacy pickle: first byte 0x80). A safetensors file whose
    header length happens to start with the byte 0x80 is not one."""
    if is_safetensors(path):
        return False
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def load_pruningamr(path: str | Path) -> tuple[list[Tensor], list[Tensor], list[str], Tensor | None]:
    """``(weights, biases, activation names, gauss or None)`` of a PruningAMR-format checkpoint."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(ALLOWLIST):
            # bytes, not the path: torch.load hands any path named *.safetensors to safetensors
            obj = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        detail = next((ln for ln in first if "Unsupported global" in ln or "GLOBAL" in ln), first[0] if first else "")
        raise InputError(
            f"checkpoint {str(path)!r} is not an allowlisted INR pickle ({detail.strip()[:160]}); "
            "expected a PruningAMR dict of weights_list/bias_list/act_list or a sciprune safetensors file"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise InputError(f"checkpoint {str(path)!r} could not be read ({type(err).__name__}); expected a torch.save file") from None
    return _parse(obj, path)


def _tensor_list(obj: Any, key: str, path: Path) -> list[Tensor]:
    items = list(obj) if isinstance(obj, (list, tuple, nn.ParameterList)) else None
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise InputError(f"checkpoint {str(path)!r}: {key!r} must be a non-empty list of tensors; got {type(obj).__name__}")
    return [t.detach().clone() for t in items]


def _parse(obj: Any, path: Path) -> tuple[list[Tensor], list[Tensor], list[str], Tensor | None]:
    if not isinstance(obj, dict) or not {"weights_list", "bias_list", "act_list"} <= set(obj):
        have = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise InputError(
            f"checkpoint {str(path)!r} holds {have}; expected a PruningAMR dict with weights_list, bias_list and act_list"
        )
    weights = _tensor_list(obj["weights_list"], "weights_list", path)
    biases = _tensor_list(obj["bias_list"], "bias_list", path)
    acts_raw = list(obj["act_list"]) if isinstance(obj["act_list"], (list, tuple, nn.ModuleList)) else None
    if acts_raw is None:
        raise InputError(f"checkpoint {str(path)!r}: 'act_list' must be a list of activation modules")
    acts: list[str] = []
    for i, act in enumerate(acts_raw):
        name = SUPPORTED.get(type(act)) if isinstance(act, nn.Module) else (act if isinstance(act, str) else None)
        if name is None:
            kind = type(act).__name__ if not isinstance(act, str) else act
            raise InputError(
                f"checkpoint {str(path)!r}: unknown activation {kind!r} in act_list[{i}]; "
                f"expected one of {', '.join(c.__name__ for c in SUPPORTED)}"
            )
        acts.append(name)
    if not (len(weights) == len(biases) == len(acts)):
        raise InputError(
            f"checkpoint {str(path)!r}: {len(weights)} weights, {len(biases)} biases and {len(acts)} activations; "
            "expected one of each per layer"
        )
    for i, (w, b) in enumerate(zip(weights, biases)):
        prev = weights[i - 1].shape[0] if i else None
        if w.dim() != 2 or b.shape != (w.shape[0],) or (prev is not None and w.shape[1] != prev):
            raise InputError(
                f"checkpoint {str(path)!r}: layer {i} has weight {tuple(w.shape)} and bias {tuple(b.shape)}; "
                "expected (out, in) weights chained layer to layer and (out,) biases"
            )
    gauss = obj.get("gauss")
    if isinstance(gauss, Tensor) and gauss.numel() > 0:
        if gauss.dim() != 2 or 2 * gauss.shape[1] != weights[0].shape[1]:
            raise InputError(
                f"checkpoint {str(path)!r}: gauss {tuple(gauss.shape)} does not give the "
                f"{weights[0].shape[1]} input features of layer 0; expected (d_in, {weights[0].shape[1] // 2})"
            )
        return weights, biases, acts, gauss.detach().clone()
    return weights, biases, acts, None
