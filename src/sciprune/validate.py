"""One input-validation layer: every command and study checks what a user hands it through here.

Each check raises :class:`~sciprune.errors.InputError` with one line: what was wrong, the value
received, what is expected and, where there is one, what to do. The checks:

* **paths** (:func:`input_file`, :func:`input_dir`, :func:`output_dir`): the empty string, a path
  under ``/proc`` / ``/sys`` / ``/dev``, a path below a regular file, a directory where a file is
  expected (and the reverse), a missing or unreadable file;
* **text** (:func:`read_text`): bounded size, UTF-8 (the offending byte offset is named);
* **YAML** (:func:`load_yaml`): duplicate keys refused, aliases bounded (a "billion laughs" document
  expands to at most :data:`MAX_YAML_VALUES` values), size bounded, ``1e-3`` read as a number;
* **strict config types** (:func:`strict_types`, :func:`finite_floats`): no ``true`` for a number, no
  ``1e29`` for an integer, no ``inf`` / ``nan`` where a finite number is expected, no empty text (a
  field opts out with ``json_schema_extra={"allow_inf": True}`` / ``{"allow_empty": True}``);
* **sizes** (:func:`memory`): an allocation estimated beyond the machine's memory is refused with the
  estimate named;
* **addresses** (:func:`scheduler_address`);
* **names** (:func:`closest`): an unknown name lists the valid ones with a closest-match suggestion;
* **foreign files** (:func:`reading`, :func:`safetensors_header`): any exception raised while parsing
  a user's file becomes one InputError line.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
import socket
import struct
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from sciprune.errors import InputError

MAX_TEXT_BYTES = 1 << 20  # configs: 1 MiB
MAX_YAML_VALUES = 100_000  # values after alias expansion
SYSTEM_DIRS = ("/proc", "/sys", "/dev")


# -- names ---------------------------------------------------------------------------------------
def closest(name: str, valid: Iterable[str]) -> str:
    """``"; expected one of a, b, c (did you mean 'b'?)"`` for an unknown ``name``."""
    valid = list(valid)
    match = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {match[0]!r}?)" if match else ""
    return f"expected one of {', '.join(valid)}{hint}"


# -- paths ---------------------------------------------------------------------------------------
def _path(raw: str | os.PathLike[str], what: str) -> Path:
    text = os.fspath(raw)
    if not text.strip():
        raise InputError(f"{what} is the empty string; expected a path")
    if "\0" in text:
        raise InputError(f"{what} {text!r} contains a NUL character; expected a path")
    path = Path(text).expanduser()
    resolved = path.resolve(strict=False)
    if any(resolved == Path(d) or Path(d) in resolved.parents for d in SYSTEM_DIRS):
        raise InputError(f"{what} {text!r} lies under /{resolved.parts[1]}, a system folder; expected a path of your own")
    return path


def _below_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that is a regular file (so ``path`` cannot exist), if any."""
    for parent in reversed(path.absolute().parents):
        if parent.is_file():
            return parent
    return None


def input_file(raw: str | os.PathLike[str], what: str, expected: str = "a file") -> Path:
    """``raw`` as the path of an existing, readable regular file."""
    path = _path(raw, what)
    if path.is_dir():
        raise InputError(f"{what} {str(raw)!r} is a directory; expected {expected}")
    if not path.exists():
        blocker = _below_file(path)
        if blocker is not None:
            raise InputError(f"{what} {str(raw)!r} cannot exist: {str(blocker)!r} is a file, not a folder; expected {expected}")
        raise InputError(f"{what} {str(raw)!r} does not exist; expected {expected}")
    if not path.is_file():
        raise InputError(f"{what} {str(raw)!r} is not a regular file (a device, pipe or socket); expected {expected}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {str(raw)!r} cannot be read (permission denied); expected {expected} you may read")
    return path


def input_dir(raw: str | os.PathLike[str], what: str, expected: str = "a folder") -> Path:
    """``raw`` as the path of an existing, readable directory."""
    path = _path(raw, what)
    if path.is_file():
        raise InputError(f"{what} {str(raw)!r} is a file; expected {expected}")
    if not path.is_dir():
        blocker = _below_file(path)
        if blocker is not None:
            raise InputError(f"{what} {str(raw)!r} cannot exist: {str(blocker)!r} is a file, not a folder; expected {expected}")
        raise InputError(f"{what} {str(raw)!r} does not exist; expected {expected}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{what} {str(raw)!r} cannot be read (permission denied); expected {expected} you may read")
    return path


def output_dir(raw: str | os.PathLike[str], what: str = "--out") -> Path:
    """``raw`` as a directory sciprune may create or write into (its contents are not judged here)."""
    path = _path(raw, what)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {str(raw)!r} is an existing file; expected a results folder (new, or of an earlier run)")
    blocker = _below_file(path)
    if blocker is not None:
        raise InputError(f"{what} {str(raw)!r} cannot be created: {str(blocker)!r} is a file, not a folder")
    existing = next((p for p in [path.absolute(), *path.absolute().parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {str(raw)!r}: {str(existing)!r} is not writable (permission denied); choose another --out")
    return path


# -- text and YAML -------------------------------------------------------------------------------
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


# -- strict config types -------------------------------------------------------------------------
def _args(ann: Any) -> tuple[Any, ...]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(ann) if a is not type(None))
    return (ann,)


def _check_value(ann: Any, value: Any, loc: str) -> None:
    args = _args(ann)
    plain = {a for a in args if isinstance(a, type)}
    if isinstance(value, bool):
        if bool not in plain and plain & {int, float}:
            raise InputError(f"field {loc!r} got {value!r}: expected a number, not a true/false value")
        return
    if isinstance(value, float) and int in plain and float not in plain:
        raise InputError(f"field {loc!r} got {value!r}: expected an integer (write it without a decimal point or exponent)")
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


# -- sizes ---------------------------------------------------------------------------------------
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


# -- addresses -----------------------------------------------------------------------------------
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")


def scheduler_address(raw: str, *, reach: bool = True, timeout: float = 5.0) -> str:
    """A dask.distributed scheduler address ``tcp://host:port`` (also tls, ucx, ws, wss), and, with
    ``reach``, one that accepts a TCP connection (checked before any results folder is touched)."""
    m = _ADDRESS.match(raw.strip())
    if not m or not 0 < int(m.group(3)) < 65536:
        raise InputError(f"--scheduler {raw!r} is not a scheduler address; expected tcp://host:port "
                         "(e.g. tcp://127.0.0.1:8786), or leave it out to run in-process")
    if reach and m.group(1) in ("tcp", "tls"):
        host = m.group(2).strip("[]")
        try:
            socket.create_connection((host, int(m.group(3))), timeout=timeout).close()
        except OSError as err:
            raise InputError(f"cannot reach the dask scheduler {raw!r} ({err.strerror or type(err).__name__}); "
                             "expected the address of a running scheduler (start one with `dask scheduler`)") from None
    return raw.strip()


# -- foreign files -------------------------------------------------------------------------------
@contextlib.contextmanager
def reading(what: str, path: str | os.PathLike[str], expected: str) -> Iterator[None]:
    """Turn any exception raised while parsing the user's file ``path`` into one InputError line."""
    try:
        yield
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{what} {str(path)!r} asks for more memory than this machine has; expected {expected}") from None
    except Exception as err:  # noqa: BLE001 - a foreign file may make any parser fail in any way
        detail = " ".join(str(err).split())[:160] or type(err).__name__
        raise InputError(f"{what} {str(path)!r} could not be read ({type(err).__name__}: {detail}); expected {expected}") from None


_ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def safetensors_header(path: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, Any]:
    """The JSON header of a safetensors file, checked entry by entry against the file's size.

    Layout: 8 bytes little-endian ``N``, ``N`` bytes of JSON (``name -> {dtype, shape,
    data_offsets}`` plus an optional ``__metadata__`` of strings), then the tensor bytes.
    """
    path = input_file(path, what)
    size = path.stat().st_size
    expect = "an intact safetensors file written by sciprune"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise InputError(f"{what} {str(path)!r} is {size} bytes, too short for a safetensors header; expected {expect}")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 << 20):
            raise InputError(f"{what} {str(path)!r} is corrupt or truncated (its first 8 bytes promise a "
                             f"{n}-byte header in a {size}-byte file); expected {expect}")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InputError(f"{what} {str(path)!r} is not a safetensors file (its header is not JSON); expected {expect}") from None
    if not isinstance(header, dict):
        raise InputError(f"{what} {str(path)!r} has a safetensors header of type {type(header).__name__}; expected {expect}")
    body = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
                raise InputError(f"{what} {str(path)!r}: its __metadata__ is not a mapping of strings; expected {expect}")
            continue
        ok = (isinstance(entry, dict) and entry.get("dtype") in _ST_DTYPES and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"]))
        if not ok:
            raise InputError(f"{what} {str(path)!r}: tensor {name!r} has a malformed header entry; expected {expect}")
        begin, end = entry["data_offsets"]
        nbytes = math.prod(entry["shape"]) * _ST_DTYPES[entry["dtype"]]
        if not 0 <= begin <= end <= body or end - begin != nbytes:
            raise InputError(f"{what} {str(path)!r}: tensor {name!r} claims bytes {begin}..{end} of {body} for "
                             f"{nbytes} bytes of data (truncated or corrupt); expected {expect}")
    return header
