"""The exceptions of the click that Typer runs on: Typer >= 0.2x ships its own reduced copy
(``typer._click``), older ones use ``click``. The CLI catches usage errors from whichever it is."""

from __future__ import annotations

from types import ModuleType


def click_exceptions() -> ModuleType:
    """The ``exceptions`` module of Typer's click (``UsageError``, ``NoArgsIsHelpError``, ...)."""
    try:
        from typer._click import exceptions  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions  # type: ignore[no-redef]
    return exceptions
