"""Sizes: an allocation estimated beyond the machine's memory is refused with the estimate named."""

from __future__ import annotations

import math
import os

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


def memory(nbytes: float, what: str, *, fix: str) -> None:
    """Refuse a run whose estimated allocation ``nbytes`` exceeds this machine's memory."""
    have = physical_memory()
    if not math.isfinite(nbytes) or nbytes > have:
        raise InputError(f"{what} needs about {format_bytes(nbytes)} of memory; this machine has {format_bytes(have)}. {fix}")
