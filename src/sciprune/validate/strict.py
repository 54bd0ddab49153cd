"""Strict config types: no ``true`` for a number, no ``1e29`` for an integer, no quoted text (``"5"``)
for a number, no ``1`` / ``0`` / ``"yes"`` for a true/false value, seeds in ``[0, 2**63)``, no
``inf`` / ``nan`` where a finite number is expected, no empty text (a field opts out with
``json_schema_extra={"allow_inf": True}`` / ``{"allow_empty": True}``)."""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from pydantic import BaseModel

from sciprune.errors import InputError


#: seeds feed SHA-256 derivations and numpy / torch generators: non-negative, below 2**63
SEED_LIMIT = 2**63


def seed(value: Any, what: str) -> int:
    """``value`` as a seed: an integer in ``[0, 2**63)`` (one line naming ``what`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise InputError(f"{what} got {value!r}: expected a seed, an integer in [0, 2**63)")
    return value


def workers(value: Any, what: str = "--workers") -> int:
    """``value`` as a number of worker processes: an integer in ``[1, 1024]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
        raise InputError(f"{what} must be an integer in [1, 1024]; got {value!r} (1: in-process)")
    return value


def _unwrap(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _args(ann: Any) -> tuple[Any, ...]:
    ann = _unwrap(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return tuple(_unwrap(a) for a in typing.get_args(ann) if a is not type(None))
    return (ann,)


def _takes_text(args: tuple[Any, ...]) -> bool:
    return any(a is str or a is Any or typing.get_origin(a) is typing.Literal and any(isinstance(v, str) for v in typing.get_args(a))
               for a in args)


def _check_value(ann: Any, value: Any, loc: str) -> None:
    args = _args(ann)
    plain = {a for a in args if isinstance(a, type)}
    if isinstance(value, bool):
        if bool not in plain and plain & {int, float}:
            raise InputError(f"field {loc!r} got {value!r}: expected a number, not a true/false value")
        return
    if bool in plain and not plain & {int, float} and not _takes_text(args) and value is not None:
        raise InputError(f"field {loc!r} got {value!r}: expected true or false")
    if isinstance(value, str) and plain & {int, float} and not _takes_text(args):
        kind = "an integer" if int in plain and float not in plain else "a number"
        raise InputError(f"field {loc!r} got {value!r}: expected {kind}, not text (write it without quotes)")
    if isinstance(value, float) and int in plain and float not in plain:
        raise InputError(f"field {loc!r} got {value!r}: expected an integer (write it without a decimal point or exponent)")
    if isinstance(value, int) and int in plain and (loc == "seed" or loc.endswith((".seed", "_seed"))):
        seed(value, f"field {loc!r}")
    if isinstance(value, dict):
        for a in plain:
            if issubclass(a, BaseModel):
                strict_types(a, value, loc + ".")
                return
    if isinstance(value, list):
        for a in args:
            if typing.get_origin(a) in (list, tuple, set, frozenset):
                inner = typing.get_args(a)
                if len(inner) == 1 or (len(inner) == 2 and inner[1] is Ellipsis):
                    for i, v in enumerate(value):
                        _check_value(inner[0], v, f"{loc}.{i}")
                return


def strict_types(model: type[BaseModel], data: Any, prefix: str = "") -> None:
    """Refuse what pydantic's lax mode would coerce silently: ``true`` for a number, ``1e29`` for an integer."""
    if not isinstance(data, dict):
        return
    for name, info in model.model_fields.items():
        if name in data:
            _check_value(info.annotation, data[name], prefix + name)


def finite_floats(cfg: BaseModel, prefix: str = "") -> None:
    """Refuse ``inf`` / ``nan`` in any float field of a validated config (unless the field allows infinities
    with ``json_schema_extra={"allow_inf": True}``) and the empty string in any text field (unless
    ``{"allow_empty": True}``)."""
    for name, info in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        loc = prefix + name
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, BaseModel):
                finite_floats(v, loc + ".")
            elif isinstance(v, float) and not math.isfinite(v):
                if math.isnan(v) or not extra.get("allow_inf"):
                    raise InputError(f"field {loc!r} got {v!r}: expected a finite number")
            elif isinstance(v, str) and not v.strip() and not extra.get("allow_empty"):
                raise InputError(f"field {loc!r} got {v!r}: expected a non-empty value (leave the field out for its default)")
