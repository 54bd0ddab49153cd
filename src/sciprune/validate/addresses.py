"""Addresses: a dask.distributed scheduler address, well formed and (optionally) reachable."""

from __future__ import annotations

import re
import socket

from sciprune.errors import InputError

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
