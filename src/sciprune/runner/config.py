"""Configs at the boundary: YAML in, a validated, frozen study config out (or one clear error line)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import typing

import yaml
from pydantic import BaseModel, ValidationError

from sciprune.errors import InputError
from sciprune.runner.study import available_studies, get_study, study_package
from sciprune.studies.base import StudyConfig
from sciprune.validate import closest, finite_floats, load_yaml as load_yaml_text, parse_yaml_value, read_text, strict_types

PRESETS = ("demo", "quick", "paper")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing, non-UTF-8 or bad YAML file or a non-mapping is one clear line."""
    source = f"config file {str(path)!r}"
    data = load_yaml_text(read_text(path, "config file"), source)
    if not isinstance(data, dict):
        raise InputError(f"{source} holds a {type(data).__name__}; expected a mapping of fields")
    return data


def load_preset(study: str, preset: str) -> dict[str, Any]:
    """The preset ``demo`` / ``quick`` / ``paper`` shipped with ``study``."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    text = resources.files(study_package(study)).joinpath("presets", f"{preset}.yaml").read_text()
    data = load_yaml_text(text, f"preset {study}/{preset}") or {}
    data.setdefault("study", study)
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``config``."""
    out = _deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override {item!r} is not of the form field=value (e.g. train.epochs=5)")
        value = parse_yaml_value(raw, f"override {key.strip()!r}")
        node = out
        parts = key.strip().split(".")
        if any(not p for p in parts):
            raise InputError(f"override {item!r}: {key.strip()!r} has an empty field name; expected e.g. train.epochs=5")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(f"override {item!r}: field {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


def validate(config: dict[str, Any], given: Collection[str] = ()) -> StudyConfig:
    """The study config for ``config``; every problem is reported with its field, value and expectation.

    Stricter than pydantic's lax mode: ``true`` is not a number, ``1e29`` not an integer, and no float
    field takes ``inf`` / ``nan`` (see :mod:`sciprune.validate`). ``given``: the dotted fields the user
    set by a flag or ``--set`` (:func:`given_fields`); one the config does not read
    (:meth:`~sciprune.studies.base.StudyConfig.unused_fields`) is refused, as it would do nothing.
    """
    if not isinstance(config, dict):
        raise InputError(f"config holds a {type(config).__name__}; expected a mapping of fields")
    study = config.get("study")
    if study is None:
        raise InputError(f"config has no 'study' field; expected one of {', '.join(available_studies())}")
    if not isinstance(study, str) or study not in available_studies():
        raise InputError(f"unknown study {study!r}; {closest(str(study), available_studies())}")
    model = get_study(study).config
    strict_types(model, config)
    try:
        cfg = model.model_validate(config)
    except ValidationError as err:
        raise InputError("invalid config: " + "; ".join(_describe(model, e) for e in err.errors())) from None
    finite_floats(cfg)
    for name, why in cfg.unused_fields().items():
        if any(g == name or g.startswith(name + ".") for g in given):  # the field, or a key inside a mapping field
            raise InputError(f"{name}={_field(cfg, name)!r} is given but {why}, so it would do nothing; drop it")
    return cfg


def given_fields(flags: Iterable[str], overrides: Iterable[str]) -> set[str]:
    """The dotted fields a command line sets: its flags' fields, and each ``--set`` key (every leaf of a
    section it sets as a mapping)."""
    given = set(flags)
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            value = parse_yaml_value(raw, f"override {key.strip()!r}")
        except InputError:
            value = None  # apply_overrides reports it
        given |= _leaves(key.strip(), value)
    return given


def _leaves(path: str, value: Any) -> set[str]:
    if isinstance(value, dict) and value:
        return {leaf for k, v in value.items() for leaf in _leaves(f"{path}.{k}", v)}
    return {path}


def _field(cfg: BaseModel, name: str) -> Any:
    value: Any = cfg
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at ``loc`` (the parent of an unknown field)."""
    for part in loc:
        info = model.model_fields.get(str(part))
        sub = next((a for a in typing.get_args(info.annotation) or (info.annotation,)
                    if isinstance(a, type) and issubclass(a, BaseModel)), None) if info else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _describe(model: type[BaseModel], e: Any) -> str:
    loc = ".".join(str(p) for p in e["loc"])
    msg = " ".join(str(e["msg"]).removeprefix("Value error, ").split())
    if e["type"] == "extra_forbidden":
        valid = [f for f in _fields_at(model, tuple(e["loc"][:-1])) if f != "study" or len(e["loc"]) > 1]
        return f"unknown field {loc!r}; {closest(str(e['loc'][-1]), valid)}" if valid else f"unknown field {loc!r}"
    if not loc:  # a check across fields: its message names them
        return msg
    shown = repr(e.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"field {loc!r} got {shown}: {msg}"


def dump_config(cfg: StudyConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` holds; ``sciprune run`` replays it)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
