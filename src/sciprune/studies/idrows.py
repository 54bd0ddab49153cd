"""Enough samples for an ID method: checked when a config is read, not when a cascade reaches the ID.

An ID keeps a group's neurons by a column interpolative decomposition of its activation matrix, one row
per sample (and per position and read point of a traced group), so it keeps at most as many neurons as
the matrix has rows. A method that keeps ``k`` neurons of a group at some sparsity of the schedule
needs ``k`` rows (:func:`sciprune.core.widest_kept`); fewer is refused with the field to raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sciprune.core import PruningUnits, chain_units, resolve_method, widest_kept


def chain_shapes(sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a chain of linear maps ``layers.i`` of widths ``sizes`` (weights ``(out, in)``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        shapes[f"layers.{i}.weight"], shapes[f"layers.{i}.bias"] = (b, a), (b,)
    return shapes


def chain_of(sizes: Sequence[int], activation: str) -> tuple[PruningUnits, dict[str, tuple[int, ...]]]:
    """The units and parameter shapes of an MLP of widths ``sizes`` (hidden layers ``activation``)."""
    return chain_units(sizes, [activation] * (len(sizes) - 2) + ["identity"]), chain_shapes(sizes)


def id_rows_problem(rows: int, rows_are: str, expected: str, units: PruningUnits,
                    shapes: Mapping[str, Sequence[int]], methods: Sequence[str], sparsities: Sequence[float], *,
                    width: str | None = None) -> str | None:
    """Why ``rows`` activation rows (``rows_are``: what gives them) are too few for an ID method of
    ``methods`` on ``sparsities``, or ``None``. ``expected`` is the fix, formatted with ``k`` (the rows
    needed); ``width``: the kept-width rule the study imposes."""
    for name in methods:
        method = resolve_method(name)
        if not method.is_id:
            continue
        group, k, s = widest_kept(units, sparsities, width or method.width, shapes=shapes)
        if k > rows:
            return (f"method {name!r} keeps {k} neurons of group {group!r} at sparsity {s}, but its ID sees "
                    f"{rows} activation rows ({rows_are}), and an ID keeps at most as many neurons as it has "
                    f"rows; expected {expected.format(k=k)}")
    return None
