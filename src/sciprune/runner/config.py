"""Configs at the boundary: YAML in, a validated, frozen study config out (or one clear error line)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sciprune.errors import InputError
from sciprune.runner.study import available_studies, get_study
from sciprune.studies.base import StudyConfig

PRESETS = ("demo", "quick", "paper")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, bad YAML or a non-mapping is one clear line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {str(path)!r} does not exist; expected a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {str(path)!r} holds a {type(data).__name__}; expected a mapping of fields")
    return data


def load_preset(study: str, preset: str) -> dict[str, Any]:
    """The preset ``demo`` / ``quick`` / ``paper`` shipped with ``study``."""
    get_study(study)  # validates the study name
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    text = resources.files(f"sciprune.studies.{study}").joinpath("presets", f"{preset}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    data.setdefault("study", study)
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``config``."""
    out = _deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override {item!r} is not of the form field=value (e.g. train.epochs=5)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise InputError(f"override {item!r}: the value {raw!r} is not valid YAML") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(f"override {item!r}: field {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deepcopy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


def validate(config: dict[str, Any]) -> StudyConfig:
    """The study config for ``config``; every problem is reported with its field, value and expectation."""
    study = config.get("study")
    if study is None:
        raise InputError(f"config has no 'study' field; expected one of {', '.join(available_studies())}")
    model = get_study(str(study)).config
    try:
        return model.model_validate(config)
    except ValidationError as err:
        raise InputError("invalid config: " + "; ".join(_describe(e) for e in err.errors())) from None


def _describe(e: Any) -> str:
    loc = ".".join(str(p) for p in e["loc"])
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"unknown field {loc!r}"
    if not loc:  # a check across fields: its message names them
        return msg
    return f"field {loc!r} got {e.get('input')!r}: {msg}"


def dump_config(cfg: StudyConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` holds; ``sciprune run`` replays it)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
