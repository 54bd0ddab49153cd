"""A user's samples: an ``.npz`` of inputs and targets, checked, split into training and held-out parts.

The convention:

* ``y``: the targets, one row per sample (``y[i]`` is what the network should output for sample ``i``);
* ``x`` (a network with one input) **or** ``x0, x1, ...`` (several inputs, numbered from 0 in the
  order the network takes them), each with one row per sample;
* an input named in ``shared`` is passed whole to every call instead of being split by sample (the
  trunk points of a Cartesian-product DeepONet: ``x0`` is ``(samples, m)``, ``x1`` ``(points, d)`` and
  ``y`` ``(samples, points)``).

Every other array name, a missing ``y``, arrays of different sample counts, non-numeric or
non-finite values are refused with one line. How the inputs reach the network (``net(x0, x1)`` or
``net((x0, x1))``) is the config's ``inputs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sciprune.errors import InputError
from sciprune.validate import input_file, memory, reading

EXPECTED = "an .npz with y and x (one input) or x0, x1, ... (several inputs)"
MAX_INPUTS = 4


@dataclass(frozen=True)
class Samples:
    """Inputs (per-sample or shared) and targets; ``call`` applies a network to them."""

    names: tuple[str, ...]        # the input arrays in call order
    inputs: tuple[Tensor, ...]    # per-sample arrays have ``n`` rows; shared ones are whole
    shared: tuple[bool, ...]
    y: Tensor
    packing: str                  # "args" | "tuple"

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: Tensor) -> "Samples":
        """The samples at ``index`` (shared inputs stay whole)."""
        xs = tuple(x if s else x[index] for x, s in zip(self.inputs, self.shared))
        return Samples(self.names, xs, self.shared, self.y[index], self.packing)

    def head(self, k: int) -> "Samples":
        return self.take(torch.arange(min(k, self.n)))

    def to(self, device: torch.device, dtype: torch.dtype) -> "Samples":
        return Samples(self.names, tuple(x.to(device, dtype) for x in self.inputs), self.shared,
                       self.y.to(device, dtype), self.packing)

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional arguments of one call: ``(x0, x1, ...)``, or ``((x0, x1, ...),)`` for ``tuple``."""
        return (self.inputs,) if self.packing == "tuple" else self.inputs

    def call(self, net: nn.Module) -> Tensor:
        return net(*self.args)


@dataclass(frozen=True)
class Split:
    train: Samples
    test: Samples


def _names(keys: list[str], path: str) -> list[str]:
    """The input names of an archive (``x`` or ``x0..xk``), every other name refused."""
    numbered = sorted((k for k in keys if re.fullmatch(r"x\d+", k)), key=lambda k: int(k[1:]))
    others = sorted(k for k in keys if k not in ("x", "y") and k not in numbered)
    if others:
        raise InputError(f"data file {path!r} holds arrays named {', '.join(others)}; expected only y and x, "
                         "or y and x0, x1, ... (rename or remove the others)")
    if "y" not in keys:
        raise InputError(f"data file {path!r} has no array y (the targets); expected {EXPECTED}")
    if "x" in keys and numbered:
        raise InputError(f"data file {path!r} holds both x and {numbered[0]}; expected x alone (one input) or x0, x1, ...")
    if "x" in keys:
        return ["x"]
    if not numbered:
        raise InputError(f"data file {path!r} has no inputs (x, or x0, x1, ...); expected {EXPECTED}")
    if len(numbered) > MAX_INPUTS:
        raise InputError(f"data file {path!r} holds {len(numbered)} inputs; expected at most {MAX_INPUTS} (x0..x{MAX_INPUTS - 1})")
    if numbered != [f"x{i}" for i in range(len(numbered))]:
        raise InputError(f"data file {path!r} numbers its inputs {', '.join(numbered)}; expected x0, x1, ... without gaps")
    return numbered


def _array(raw: Any, name: str, path: str) -> Tensor:
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "fiub" or raw.dtype.kind == "b":
        kind = getattr(raw, "dtype", type(raw).__name__)
        raise InputError(f"data file {path!r}: array {name} has dtype {kind}; expected real numbers (float or int)")
    if raw.ndim == 0 or raw.shape[0] == 0:
        raise InputError(f"data file {path!r}: array {name} has shape {tuple(raw.shape)}; expected at least one row")
    values = raw.astype(np.float64, copy=False)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise InputError(f"data file {path!r}: array {name} holds {bad} NaN or infinite values; expected finite numbers")
    return torch.from_numpy(np.ascontiguousarray(values))


def load_samples(path: str, *, shared: list[str], packing: str) -> Samples:
    """The checked samples of ``path`` (float64; the caller casts to the network's dtype)."""
    file = input_file(path, "data file", EXPECTED)
    memory(2.0 * file.stat().st_size, f"data file {path!r} ({file.stat().st_size} bytes)", fix="Use fewer samples.")
    with reading("data file", path, EXPECTED):
        with np.load(file, allow_pickle=False) as archive:
            keys = list(archive.files)
            names = _names(keys, path)
            arrays = {k: _array(archive[k], k, path) for k in [*names, "y"]}
    unknown = [s for s in shared if s not in names]
    if unknown:
        raise InputError(f"--shared names {unknown[0]}, which data file {path!r} does not hold; its inputs are {', '.join(names)}")
    if len(shared) == len(names):
        raise InputError(f"--shared names every input ({', '.join(names)}); expected at least one input split by sample")
    y = arrays["y"]
    for k in names:
        if k not in shared and arrays[k].shape[0] != y.shape[0]:
            hint = " (pass --shared " + k + " if it is passed whole, like trunk points)" if len(names) > 1 else ""
            raise InputError(f"data file {path!r}: {k} has {arrays[k].shape[0]} rows but y has {y.shape[0]}; "
                             f"expected one row per sample in both{hint}")
    return Samples(tuple(names), tuple(arrays[k] for k in names), tuple(k in shared for k in names), y, packing)


def split(samples: Samples, test_fraction: float, generator: torch.Generator) -> Split:
    """A random held-out split: ``round(test_fraction * n)`` samples (at least one on each side)."""
    n = samples.n
    n_test = round(test_fraction * n)
    if n_test < 1 or n - n_test < 1:
        raise InputError(f"the data has {n} samples; a test_fraction of {test_fraction} leaves {n - n_test} for training "
                         f"and {n_test} held out; expected at least one on each side (more samples, or another test_fraction)")
    order = torch.randperm(n, generator=generator)
    return Split(samples.take(order[n_test:].sort().values), samples.take(order[:n_test].sort().values))
