"""Explicit randomness: every generator is derived from a root seed and a path of keys.

Library code never touches global RNG state. A run derives one generator per purpose
(``derive_seed(root, "train", stage)``), so a resumed run draws exactly the numbers an uninterrupted
one would, whatever the number of workers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

Key = int | str


def derive_seed(root: int, *keys: Key) -> int:
    """A 63-bit seed that depends only on ``root`` and ``keys`` (stable across runs and machines)."""
    h = hashlib.sha256(repr((int(root), *keys)).encode())
    return int.from_bytes(h.digest()[:8], "little") >> 1


def torch_generator(root: int, *keys: Key, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with ``derive_seed(root, *keys)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(root, *keys))
    return g


def numpy_generator(root: int, *keys: Key) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` seeded with ``derive_seed(root, *keys)``."""
    return np.random.default_rng(derive_seed(root, *keys))
