"""``sciprune inspect``: what a checkpoint holds, layer by layer."""

from __future__ import annotations

import json
from pathlib import Path

from sciprune.core import Checkpoint, MASK_SUFFIX, load_checkpoint, shared_names
from sciprune.errors import InputError
from sciprune.validate import input_file, reading, safetensors_header


def _pruningamr(path: Path) -> Checkpoint | None:
    """A PruningAMR-format INR checkpoint as tensors, or ``None`` if ``path`` is not one."""
    from sciprune.studies.amr.legacy import is_torch_file, load_pruningamr

    if not is_torch_file(path):
        return None
    try:
        weights, biases, acts, gauss = load_pruningamr(path)
    except InputError:
        return None
    tensors = {}
    for i, (w, b) in enumerate(zip(weights, biases)):
        tensors[f"weights_list.{i}"], tensors[f"bias_list.{i}"] = w, b
    if gauss is not None:
        tensors["gauss"] = gauss
    return Checkpoint(tensors, {"arch": {"class": "PruningAMR INR", "activations": acts}}, "pruningamr")


def describe_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> str:
    """A table of every tensor: shape, entries, non-zeros, sparsity, and whether a mask guards it."""
    path = input_file(path, "checkpoint", "a file written by sciprune or torch.save")
    with reading("checkpoint", path, "a file written by sciprune or torch.save"):
        if path.read_bytes()[8:9] == b"{":
            safetensors_header(path)
        try:
            ckpt = load_checkpoint(path, trust_pickle=trust_pickle)
        except InputError:
            legacy = _pruningamr(path)  # an INR checkpoint the amr study reads (allowlisted classes only)
            if legacy is None:
                raise
            ckpt = legacy
    if not isinstance(ckpt.meta, dict):
        raise InputError(f"checkpoint {str(path)!r} has metadata of type {type(ckpt.meta).__name__}; expected a mapping")
    masks = {k[: -len(MASK_SUFFIX)] for k in ckpt.tensors if k.endswith(MASK_SUFFIX)}
    shared = _shared(ckpt)
    rows = [(name, t) for name, t in ckpt.tensors.items() if not name.endswith(MASK_SUFFIX)]
    wide = max([len("tensor"), len("total")] + [len(name) for name, _ in rows])
    tall = max([len("shape")] + [len(str(tuple(t.shape))) for _, t in rows])
    lines = [f"{path}  ({ckpt.format})"]
    if ckpt.meta.get("arch"):
        lines.append(f"architecture: {json.dumps(ckpt.meta['arch'])}")
    header = f"{'tensor':<{wide}} {'shape':<{tall}} {'entries':>9} {'nonzero':>9} {'sparsity':>9}  masked"
    lines += [header, "-" * len(header)]
    total = nnz = 0
    for name, t in rows:
        shape = f"{name:<{wide}} {str(tuple(t.shape)):<{tall}}"
        if name in shared:  # the same tensor under another name: listed, counted once
            lines.append(f"{shape} {'':>9} {'':>9} {'':>9}  (the tensor {shared[name]})")
            continue
        n, z = t.numel(), int((t != 0).sum())
        total, nnz = total + n, nnz + z
        sparsity = 1 - z / n if n else 0.0
        lines.append(f"{shape} {n:>9} {z:>9} {sparsity:>9.2%}  {'yes' if name in masks else ''}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<{wide}} {'':<{tall}} {total:>9} {nnz:>9} {1 - nnz / max(total, 1):>9.2%}")
    if again := sum(name in shared for name, _ in rows):
        lines.append(f"{again} tensors are held under a second name (a module shared by two owners) and counted once")
    return "\n".join(lines)


def _shared(ckpt: Checkpoint) -> dict[str, str]:
    """Names that repeat an earlier tensor: recorded by ``save_checkpoint`` (safetensors holds copies),
    or the same memory in a torch file (``torch.save`` keeps it shared)."""
    recorded = ckpt.meta.get("shared_tensors")
    if isinstance(recorded, dict):
        return {k: v for k, v in recorded.items() if isinstance(k, str) and isinstance(v, str) and v in ckpt.tensors}
    return shared_names(ckpt.tensors)
