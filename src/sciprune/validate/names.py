"""Unknown names: list the valid ones with a closest-match suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, valid: Iterable[str]) -> str:
    """``"; expected one of a, b, c (did you mean 'b'?)"`` for an unknown ``name``."""
    valid = list(valid)
    match = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    return f"expected one of {', '.join(valid)}{hint}"
