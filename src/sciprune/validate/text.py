"""Text and YAML: bounded size, UTF-8 (the offending byte offset is named); YAML with duplicate keys
refused, aliases bounded (a "billion laughs" document expands to at most :data:`MAX_YAML_VALUES`
values), size bounded, ``1e-3`` read as a number."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from sciprune.errors import InputError
from sciprune.validate.paths import input_file

MAX_TEXT_BYTES = 1 << 20  # configs: 1 MiB
MAX_YAML_VALUES = 100_000  # values after alias expansion


def read_text(path: str | os.PathLike[str], what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of an existing file of at most ``max_bytes``."""
    path = input_file(path, what)
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{what} {str(path)!r} is {size} bytes; expected at most {max_bytes} (a text file)")
    data = path.read_bytes()[: max_bytes + 1]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {str(path)!r} is not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x}); "
                         "expected a UTF-8 text file") from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and reading ``1e-3`` as a number."""

    yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from None
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1}); each key may appear once",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _expanded_values(obj: Any, limit: int) -> int:
    """Values in ``obj`` counted as if every alias were copied; stops (returns > limit) past ``limit``."""
    count, stack = 0, [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def load_yaml(text: str, source: str) -> Any:
    """The document in ``text`` (``source`` names it in errors): safe tags only, bounded, no duplicate keys."""
    if len(text) > MAX_TEXT_BYTES:
        raise InputError(f"{source} is {len(text)} characters; expected at most {MAX_TEXT_BYTES}")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{source} is not valid YAML{where}: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise InputError(f"{source} is nested too deeply; expected a config of a few levels") from None
    if _expanded_values(data, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise InputError(f"{source} expands (through its aliases) to more than {MAX_YAML_VALUES} values; "
                         "expected a config without alias bombs")
    return data


def parse_yaml_value(raw: str, what: str) -> Any:
    """A command-line value read as YAML (``[16, 16]``, ``0.5``, ``text``)."""
    return load_yaml(raw, f"{what} value {raw!r}")
