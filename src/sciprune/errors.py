"""The one exception type for bad user input.

Anything a user can get wrong (a config field, a data file, a checkpoint, a mesh, a CLI flag) raises
:class:`InputError` with a single line that says what was wrong, the value received and what is
expected. The CLI prints that line and exits with status 2; internal errors keep their traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. ``str(err)`` is one line: what, the value received, what is expected."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def expect(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds (never ``assert``)."""
    if not condition:
        raise InputError(message)
