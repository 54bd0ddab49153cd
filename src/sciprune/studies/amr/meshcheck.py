"""Mesh-file validation: an MFEM mesh file checked token by token *before* MFEM reads it.

MFEM trusts its input: a vertex id past the ``vertices`` section, or an element with the wrong
number of vertices, crashes the process instead of raising. :func:`check_mesh_file` reads the file
the way MFEM's ``>>`` does (whitespace-separated tokens, ``#`` comments) and refuses, in one
InputError line, anything that would make MFEM abort; what MFEM checks itself is left to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sciprune.errors import InputError
from sciprune.validate import input_file, read_text

#: vertices of each MFEM geometry: POINT, SEGMENT, TRIANGLE, SQUARE, TETRAHEDRON, CUBE, PRISM, PYRAMID
GEOMETRY_VERTICES = {0: 1, 1: 2, 2: 3, 3: 4, 4: 4, 5: 8, 6: 6, 7: 5}
GEOMETRY_DIM = {0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 3, 7: 3}
MAX_MESH_BYTES = 1 << 30
MAX_MESH_ITEMS = 50_000_000


def check_mesh_file(spec: str) -> Path:
    """Validate an MFEM mesh file *before* MFEM reads it (a bad vertex id crashes MFEM itself).

    Every file: exists, is a regular file of at most 1 GiB, is text (UTF-8). An ``MFEM mesh v1.x``
    file: ``dimension`` in 1..3; every element / boundary line is ``attr geom v_1 .. v_k`` with
    ``k`` the vertex count of ``geom`` and every ``v_i`` a vertex of the ``vertices`` section; vertex
    coordinates are finite numbers, ``sdim`` per line. An ``MFEM NC mesh`` file must end with
    ``mfem_mesh_end`` (a truncated one does not). Missing sections and other formats are left to
    MFEM's own checks (which raise, not crash).
    """
    expected = "an MFEM mesh file, or square[:N] / cube[:N]"
    path = input_file(spec, "mesh file", expected)
    if path.stat().st_size > MAX_MESH_BYTES:
        raise InputError(f"mesh file {spec!r} is {path.stat().st_size} bytes; expected at most {MAX_MESH_BYTES}")
    text = read_text(path, "mesh file", max_bytes=MAX_MESH_BYTES)
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"mesh file {spec!r} is empty; expected {expected}")
    if lines[0].startswith("MFEM NC mesh"):
        if lines[-1] != "mfem_mesh_end":
            raise InputError(f"mesh file {spec!r} is an MFEM NC mesh without its closing 'mfem_mesh_end' line "
                             "(truncated?); expected a complete mesh file")
        return path
    if lines[0] in ("MFEM mesh v1.0", "MFEM mesh v1.1"):
        _check_v1(text, spec)
    return path


class _Tokens:
    """The whitespace-separated tokens of a mesh file, read the way MFEM's ``>>`` reads them."""

    def __init__(self, text: str, spec: str) -> None:
        self.items = [t for ln in text.splitlines() for t in ln.split("#", 1)[0].split()]
        self.i = 0
        self.spec = spec

    def next(self, what: str) -> str:
        if self.i >= len(self.items):
            raise InputError(f"mesh file {self.spec!r} ends where {what} was expected (truncated?)")
        self.i += 1
        return self.items[self.i - 1]

    def int(self, what: str, lo: int = 0, hi: int = MAX_MESH_ITEMS) -> int:
        tok = self.next(what)
        try:
            v = int(tok)
        except ValueError:
            raise InputError(f"mesh file {self.spec!r}: {what} is {tok[:30]!r}; expected an integer") from None
        if not lo <= v <= hi:
            raise InputError(f"mesh file {self.spec!r}: {what} is {v}; expected an integer in [{lo}, {hi}]")
        return v

    def keyword(self, word: str) -> None:
        tok = self.next(f"the section '{word}'")
        if tok != word:
            raise InputError(f"mesh file {self.spec!r}: found {tok[:30]!r} where the section '{word}' was expected; "
                             "expected the sections dimension, elements, boundary, vertices in that order")


def _check_v1(text: str, spec: str) -> None:
    """The element / vertex consistency of an ``MFEM mesh v1.0 / v1.1`` file (see :func:`check_mesh_file`)."""
    tok = _Tokens(text, spec)
    tok.i = 3  # "MFEM", "mesh", "v1.x"
    tok.keyword("dimension")
    dim = tok.int("the dimension", 1, 3)
    largest = -1
    for section, want in (("elements", dim), ("boundary", dim - 1)):
        tok.keyword(section)
        for j in range(tok.int(f"the number of {section}")):
            tok.int(f"the attribute of {section} {j}", -(2**31), 2**31 - 1)
            geom = tok.int(f"the geometry of {section} {j}", 0, 7)
            if GEOMETRY_DIM[geom] != want:
                raise InputError(f"mesh file {spec!r}: {section} {j} has geometry {geom} of dimension "
                                 f"{GEOMETRY_DIM[geom]}; expected dimension {want} in a {dim}-D mesh")
            ids = [tok.int(f"a vertex of {section} {j}", 0, MAX_MESH_ITEMS) for _ in range(GEOMETRY_VERTICES[geom])]
            if len(set(ids)) != len(ids):
                raise InputError(f"mesh file {spec!r}: {section} {j} has vertices {ids}, one repeated; "
                                 "expected distinct vertices (a degenerate element)")
            if max(ids) > largest:
                largest, where = max(ids), f"{section} {j}"
    tok.keyword("vertices")
    n_vertices = tok.int("the number of vertices")
    if largest >= n_vertices:
        raise InputError(f"mesh file {spec!r}: {where} names vertex {largest}, but the mesh has {n_vertices} vertices; "
                         f"expected vertex ids 0..{n_vertices - 1}")
    if tok.i < len(tok.items) and tok.items[tok.i] == "nodes":
        return  # curved mesh: MFEM reads the nodes (and _check_mesh refuses high order)
    sdim = tok.int("the space dimension of the vertices", 1, 3)
    coords = [tok.next(f"vertex coordinates ({n_vertices} x {sdim})") for _ in range(n_vertices * sdim)]
    _check_coordinates(coords, n_vertices, sdim, spec)


def _check_coordinates(tokens: list[str], n: int, sdim: int, spec: str) -> None:
    try:
        coords = np.array([float(t) for t in tokens], dtype=np.float64).reshape(n, sdim)
    except ValueError:
        raise InputError(f"mesh file {spec!r}: a vertex coordinate is not a number; expected {sdim} numbers per vertex") from None
    if coords.size and not np.isfinite(coords).all():
        row = int(np.flatnonzero(~np.isfinite(coords).all(axis=1))[0])
        raise InputError(f"mesh file {spec!r}: vertex {row} has coordinates {coords[row].tolist()}; expected finite numbers")
