"""Implicit neural representations (INRs) for the AMR study: loading, saving, evaluating.

An INR here is ``f(x) = MLP(phi(x))`` with ``phi`` the identity or Fourier features
``[cos(2 pi x G), sin(2 pi x G)]``. Sources (:func:`resolve_inr`):

* a built-in name: ``corner``, ``front``, ``spacetime`` (small safetensors files shipped in
  ``studies/amr/data``, trained by ``python -m sciprune.studies.amr.train_builtin``);
* ``hos``: the PruningAMR reference checkpoint ``high_oscillation_small_lists.ckpt`` under
  ``../shared/anchors/pruningamr`` (next to the repository), when present;
* a path: a sciprune MLP checkpoint (:func:`save_mlp` / :func:`load_mlp`: safetensors, the
  architecture in the metadata) or a PruningAMR-format torch file (:mod:`.legacy`).

Evaluation is always float64 (a float64 copy of the weights), batched.
"""

from __future__ import annotations

import copy
import math
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciprune.core import load_model_and_meta, save_checkpoint
from sciprune.errors import InputError
from sciprune.validate import input_file, reading, safetensors_header
from sciprune.nn.mlp import MLP

DATA = Path(__file__).parent / "data"
BUILTIN = ("corner", "front", "spacetime")
HOS = "anchors/pruningamr/high_oscillation_small_lists.ckpt"
_EVAL_CHUNK = 1 << 15


def save_mlp(path: str | Path, mlp: MLP, *, meta: dict[str, Any] | None = None) -> None:
    """Write ``mlp`` as a sciprune checkpoint (:func:`sciprune.core._io.save_checkpoint`)."""
    save_checkpoint(path, mlp, meta=meta)


def load_mlp(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """``(mlp, metadata)`` of a sciprune checkpoint; a foreign file is one InputError line."""
    model, meta = load_model_and_meta(path)
    if not isinstance(model, MLP):  # pragma: no cover - load_model_and_meta builds MLPs
        raise InputError(f"checkpoint {str(path)!r} does not hold an MLP")
    return model, meta


@dataclass(frozen=True)
class INR:
    """``f(x) = mlp(phi(x))``, evaluated in float64.

    Attributes:
        name: what ``--inr`` said.
        source: the file it came from.
        mlp: float64 copy of the network (vertex values, true error, BasicAMR).
        fourier: ``G`` (d_in, F) of the Fourier features, or ``None``.
        default_mesh: the mesh used when ``--mesh`` is not given.
        n_params: parameters of the network as stored.
        native: the network in its stored precision (``None``: same as ``mlp``); PruningAMR's ID
            and error check run it, as the reference does (float32 for every shipped INR).
    """

    name: str
    source: str
    mlp: MLP
    fourier: Tensor | None
    default_mesh: str
    n_params: int
    native: MLP | None = None

    @property
    def stored(self) -> MLP:
        """The network in its stored precision."""
        return self.native if self.native is not None else self.mlp

    @property
    def d_in(self) -> int:
        return int(self.fourier.shape[0]) if self.fourier is not None else int(self.mlp.sizes[0])

    @property
    def d_out(self) -> int:
        return int(self.mlp.sizes[-1])

    @property
    def widths(self) -> list[int]:
        return list(self.mlp.sizes[1:-1])

    @property
    def device(self) -> torch.device:
        return self.mlp.linears[0].weight.device

    def to(self, device: torch.device | str) -> INR:
        """The same INR with its networks (and Fourier matrix) on ``device``."""
        def move(m: MLP) -> MLP:
            return copy.deepcopy(m).to(device)

        return replace(self, mlp=move(self.mlp), native=None if self.native is None else move(self.native),
                       fourier=None if self.fourier is None else self.fourier.to(device))

    def features(self, x: Tensor) -> Tensor:
        """``phi(x)``: the network's input for points ``x`` (..., d_in), float64, on the INR's device."""
        x = x.to(device=self.device, dtype=torch.float64)
        if self.fourier is None:
            return x
        z = 2.0 * math.pi * (x @ self.fourier)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        """``f(x)`` for points (..., d_in): (..., d_out) float64 on the CPU (computed on the INR's device),
        in chunks of 32k points."""
        xt = torch.as_tensor(x, dtype=torch.float64)
        flat = xt.reshape(-1, xt.shape[-1])
        with torch.inference_mode():
            out = torch.cat([self.mlp(self.features(c)).cpu() for c in flat.split(_EVAL_CHUNK)]) if len(flat) else flat.new_zeros(0, self.d_out)
        return out.reshape(*xt.shape[:-1], self.d_out)


def shared_dir() -> Path | None:
    """The shared folder next to the repository (``../shared``), or ``$SCIPRUNE_SHARED``."""
    env = os.environ.get("SCIPRUNE_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[4].parent / "shared", Path.cwd().parent / "shared"]
    return next((c for c in candidates if c.is_dir()), None)


def _from_layers(name: str, source: str, weights: list[Tensor], biases: list[Tensor], acts: list[str],
                 fourier: Tensor | None, default_mesh: str | None) -> INR:
    mlp = MLP.from_layers([w.to(torch.float64) for w in weights], [b.to(torch.float64) for b in biases], acts)
    mlp.requires_grad_(False)
    native = None
    if weights[0].dtype != torch.float64:
        native = MLP.from_layers([w.detach() for w in weights], [b.detach() for b in biases], acts)
        native.requires_grad_(False)
    d_in = fourier.shape[0] if fourier is not None else weights[0].shape[1]
    mesh = default_mesh or ("square" if d_in == 2 else "cube")
    n_params = sum(int(w.numel()) + int(b.numel()) for w, b in zip(weights, biases))
    return INR(name, source, mlp, None if fourier is None else fourier.to(torch.float64), mesh, n_params, native)


MAX_INR_PARAMS = 200_000_000
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")  # opens torch's pre-1.6 (non-zip) files


def _check_layers(path: Path, weights: list[Tensor], biases: list[Tensor], fourier: Tensor | None) -> None:
    """Float weights, finite values, a bounded size: an INR checkpoint the AMR loop can evaluate."""
    tensors = [*weights, *biases, *([] if fourier is None else [fourier])]
    bad = next((t for t in tensors if not t.is_floating_point()), None)
    if bad is not None:
        raise InputError(f"INR checkpoint {str(path)!r} holds {bad.dtype} weights; expected floating-point weights "
                         "(float32 or float64)")
    n = sum(int(t.numel()) for t in tensors)
    if n > MAX_INR_PARAMS:
        raise InputError(f"INR checkpoint {str(path)!r} has {n} parameters; expected at most {MAX_INR_PARAMS}")
    for i, t in enumerate(tensors):
        if not torch.isfinite(t).all():
            what = f"layer {i}" if i < len(weights) else ("the Fourier features" if i == len(tensors) - 1 and fourier is not None
                                                          else f"bias {i - len(weights)}")
            raise InputError(f"INR checkpoint {str(path)!r}: {what} holds {int((~torch.isfinite(t)).sum())} NaN or "
                             "infinite values; expected a network with finite weights")


def load_inr_file(path: str | Path, *, name: str | None = None) -> INR:
    """An INR from a sciprune safetensors MLP or a PruningAMR-format torch checkpoint (checked first)."""
    from sciprune.studies.amr.legacy import is_torch_file, load_pruningamr

    expected = f"{', '.join(BUILTIN)}, hos or a checkpoint file (sciprune safetensors or PruningAMR torch file)"
    path = input_file(Path(str(path)).expanduser() if str(path).strip() else str(path), "INR checkpoint", expected)
    label = name or str(path)
    with reading("INR checkpoint", path, expected):
        if is_torch_file(path):
            try:
                weights, biases, acts, gauss = load_pruningamr(path)
            except InputError:
                if zipfile.is_zipfile(path) or _LEGACY_MAGIC not in path.read_bytes()[:32]:
                    raise
                raise InputError(
                    f"INR checkpoint {str(path)!r} is in torch's legacy (non-zip) format, which cannot be read without "
                    "running its pickled code; re-save it with a current torch (torch.save writes the zip format) "
                    "where you trust the file, or use a sciprune safetensors checkpoint") from None
            _check_layers(path, weights, biases, gauss)
            return _from_layers(label, str(path), weights, biases, acts, gauss, None)
        with open(path, "rb") as f:
            if f.read(9)[8:9] == b"{":  # a safetensors file: check its header against the file first
                safetensors_header(path, "INR checkpoint")
        mlp, meta = load_mlp(path)
    state = mlp.state_dict()
    weights = [state[f"layers.{i}.weight"] for i in range(len(mlp.layers))]
    biases = [state[f"layers.{i}.bias"] for i in range(len(mlp.layers))]
    _check_layers(path, weights, biases, None)
    inr_meta = meta.get("inr", {}) if isinstance(meta, dict) and isinstance(meta.get("inr"), dict) else {}
    mesh = inr_meta.get("default_mesh")
    if mesh is not None and not (isinstance(mesh, str) and mesh.strip()):
        raise InputError(f"INR checkpoint {str(path)!r}: metadata inr.default_mesh is {mesh!r}; expected a mesh name or path")
    return _from_layers(label, str(path), weights, biases, list(mlp.activations), None, mesh)


def resolve_inr(spec: str) -> INR:
    """The INR ``--inr`` names: a built-in, ``hos`` or a checkpoint path."""
    if spec in BUILTIN:
        path = DATA / f"{spec}.safetensors"
        if not path.is_file():
            raise InputError(
                f"built-in INR {spec!r} is missing ({path}); train it with `python -m sciprune.studies.amr.train_builtin`"
            )
        return load_inr_file(path, name=spec)
    if spec == "hos":
        shared = shared_dir()
        if shared is None or not (shared / HOS).is_file():
            raise InputError(
                f"INR 'hos' needs ../shared/{HOS} next to the repository (or $SCIPRUNE_SHARED), which was not found; "
                "pass --inr PATH to the checkpoint or use a built-in INR (corner, front, spacetime)"
            )
        return load_inr_file(shared / HOS, name="hos")
    return load_inr_file(spec)


def check_inputs(cfg: Any) -> None:
    """The amr study's inputs, before its results folder is touched: the INR and a mesh file."""
    from sciprune.studies.amr.meshing import load_mesh

    resolve_inr(cfg.inr)
    if cfg.mesh is not None:
        load_mesh(cfg.mesh)  # checked as text first, then read by MFEM
