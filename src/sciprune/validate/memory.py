"""Sizes: a run whose estimated peak memory exceeds a limit is refused with the estimate named.

The limit is this machine's physical memory unless a config sets ``memory_limit`` (bytes, or text
such as ``"8GB"`` / ``"512 MiB"``; :func:`parse_bytes`). Estimates (:func:`peak`) add what lives for
the whole run (parameters with their optimizer state) to the largest transient (a batch's activations,
a data grid, a solver's state); each study's config states its terms. ``benchmarks/bench_memory.py``
checks the estimates against measured peak RSS (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import os
import re

from sciprune.errors import InputError


def physical_memory() -> int:
    """Bytes of RAM of this machine (2**40 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value: object, what: str = "memory_limit") -> int:
    """A byte count from ``value``: a positive number of bytes, or text ``"8GB"``, ``"512 MiB"``, ``"1e9"``."""
    if isinstance(value, bool):
        raise InputError(f"field {what!r} got {value!r}: expected a number of bytes or a size such as '8GB'")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        m = _SIZE.match(str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise InputError(f"field {what!r} got {value!r}: expected a number of bytes or a size such as '8GB' or '512MiB'")
        number, unit = float(m.group(1)), m.group(2).lower()
    nbytes = number * _UNITS[unit]
    if not math.isfinite(nbytes) or not 1 <= nbytes <= 2**60:
        raise InputError(f"field {what!r} got {value!r}: expected a size between 1 byte and 1 EiB")
    return int(nbytes)


def memory(nbytes: float, what: str, *, fix: str, limit: int | None = None) -> None:
    """Refuse a run whose estimated allocation ``nbytes`` exceeds ``limit`` (default: this machine's memory)."""
    have = physical_memory() if limit is None else limit
    if not math.isfinite(nbytes) or nbytes > have:
        where = f"this machine has {format_bytes(have)}" if limit is None else f"the limit is memory_limit={format_bytes(have)}"
        raise InputError(f"{what} needs about {format_bytes(nbytes)} of memory; {where}. {fix}")


#: a run's working set beyond its imports that no config field sizes (plots, report, allocator caches,
#: thread pools): measured 40-140 MB by ``benchmarks/bench_memory.py``
RUN_OVERHEAD = 100e6


def peak(resident: dict[str, float], transient: dict[str, float]) -> tuple[float, str]:
    """Estimated peak bytes: :data:`RUN_OVERHEAD`, everything ``resident`` and the largest ``transient``
    term; and the name of the largest term of the sum (for the refusal to name)."""
    worst = max(transient, key=lambda k: transient[k]) if transient else None
    terms = dict(resident)
    if worst is not None:
        terms[worst] = transient[worst]
    total = RUN_OVERHEAD + float(sum(terms.values()))
    return total, max(terms, key=lambda k: terms[k]) if terms else "the run's fixed working set"


def mlp_params(sizes: list[int]) -> int:
    """Weights and biases of a dense MLP with layer widths ``sizes``."""
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
