"""Explicit randomness: every generator is derived from a root seed and a path of keys.

Library code never draws from global RNG state. A run derives one generator per purpose
(``derive_seed(root, "train", stage)``), so a resumed run draws exactly the numbers an uninterrupted
one would, whatever the number of workers. A user's network may draw from the global stream itself
(``nn.Dropout``); a training epoch runs it inside :func:`global_stream_from`, which seeds that stream
from the epoch's generator and gives the caller's state back afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

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


@contextmanager
def global_stream_from(generator: torch.Generator, devices: Iterable[torch.device] = ()) -> Iterator[None]:
    """Inside the block, the global random stream (what ``nn.Dropout`` and a user's ``torch.rand`` draw
    from) is seeded with ``derive_seed(generator.initial_seed(), "global")``; afterwards the caller's
    state is back (:func:`torch.random.fork_rng`; ``devices``: the CUDA devices whose streams are
    forked too). ``generator`` itself is not drawn from."""
    with torch.random.fork_rng(devices=[d for d in devices if d.type == "cuda"]):
        torch.manual_seed(derive_seed(generator.initial_seed(), "global"))
        yield
