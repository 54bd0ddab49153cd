"""MFEM meshes for the AMR study: loading, refinement bookkeeping and P1 vertex values.

:class:`AMRMesh` wraps an ``mfem.Mesh`` of quadrilaterals (2-D) or hexahedra (3-D) in
nonconforming (NC) mode, an order-1 H1 space and a grid function ``u_h``. It keeps, per element,

* ``level``: how many times the element's ancestors were split (0 for an initial element);
* ``born``: the iteration whose refinement created it (``-1`` for an initial element);
* ``root``: the initial element it descends from,

carried through every refinement with MFEM's coarse-to-fine table, never inferred from areas.

P1 values: ``u_h`` holds one value per vertex (``u_h[j] = f(v_j)``); hanging vertices are then
overwritten by the interpolation of their parent edge / face (:meth:`AMRMesh.set_values`, via
``SetTrueVector``/``SetFromTrueVector``, i.e. ``u = P R u``), so ``u_h`` is continuous.

Element geometry comes out in bulk (no per-element Python calls): the vertex ids of all elements
in *lexicographic reference order* (corner ``c = sum_d b_d 2^d`` sits at reference point
``xi = (b_0, b_1[, b_2])``) are read by applying the space's element restriction to the vector
``0..N-1``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sciprune.errors import InputError
from sciprune.studies.amr.meshcheck import MAX_MESH_BYTES, check_mesh_file
from sciprune.validate import read_text

_NAMED = re.compile(r"^(square|cube)(?::(\d+))?$")


def mfem_module() -> Any:
    """``mfem.ser`` (PyMFEM), imported lazily with an install hint."""
    try:
        import mfem.ser as mfem
    except ImportError:  # pragma: no cover - PyMFEM is a declared dependency
        raise InputError("the AMR study needs PyMFEM; install it with `pip install mfem`") from None
    return mfem


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Redirect the C-level stderr (where MFEM prints its aborts) into a list of lines."""
    box: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box.extend(tmp.read().decode(errors="replace").splitlines())


def _mfem_message(err: BaseException) -> str:
    """The first informative line of a PyMFEM error (``MFEM abort: ...`` / ``Verification failed``)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and not ln.strip().startswith("...")]
    text = " ".join(lines)
    return text.replace("PyMFEM error (mfem::ErrorException):", "").strip() or type(err).__name__


def named_mesh(spec: str) -> tuple[str, int] | None:
    """``("square", N)`` / ``("cube", N)`` for a built-in mesh spec (N defaulted), else ``None``."""
    named = _NAMED.match(spec.strip())
    if named is None:
        return None
    return named.group(1), int(named.group(2) or (4 if named.group(1) == "square" else 2))


def load_mesh(spec: str) -> Any:
    """The mesh ``spec`` names, as an NC ``mfem.Mesh`` of quads (2-D) or hexes (3-D).

    ``square[:N]`` is the unit square split into ``N x N`` quads (default 4, like the reference's
    ``rectangle.mesh``), ``cube[:N]`` the unit cube into ``N^3`` hexes (default 2); anything else is
    an MFEM-readable mesh file. A missing, unreadable or unsupported mesh is one InputError line.
    """
    mfem = mfem_module()
    named = named_mesh(spec)
    if named:
        shape, n = named
        if not 1 <= n <= 1024:
            raise InputError(f"mesh {spec!r}: N must be in [1, 1024]; got {n}")
        if shape == "square":
            mesh = mfem.Mesh.MakeCartesian2D(n, n, mfem.Element.QUADRILATERAL, False, 1.0, 1.0, False)
        else:
            mesh = mfem.Mesh.MakeCartesian3D(n, n, n, mfem.Element.HEXAHEDRON, 1.0, 1.0, 1.0, False)
    else:
        path = check_mesh_file(spec)
        with _captured_stderr():
            try:
                mesh = mfem.Mesh(str(path), 1, 1)
            except RuntimeError as err:
                raise InputError(f"mesh file {spec!r} could not be read: {_mfem_message(err)}") from None
    with _captured_stderr():
        try:
            _check_mesh(mesh, spec)
            mesh.EnsureNCMesh()
        except RuntimeError as err:
            raise InputError(f"mesh file {spec!r} is not a valid mesh: {_mfem_message(err)}") from None
    return mesh


def _check_mesh(mesh: Any, spec: str) -> None:
    mfem = mfem_module()
    dim, sdim = mesh.Dimension(), mesh.SpaceDimension()
    if dim not in (2, 3) or sdim != dim:
        raise InputError(
            f"mesh {spec!r} has dimension {dim} in a {sdim}-D space; expected a 2-D quad or 3-D hex volume mesh"
        )
    if mesh.GetNE() < 1:
        raise InputError(f"mesh {spec!r} has no elements; expected at least one quad / hex")
    want = mfem.Geometry.SQUARE if dim == 2 else mfem.Geometry.CUBE
    geoms = {mesh.GetElementBaseGeometry(i) for i in range(mesh.GetNE())}
    if geoms != {want}:
        raise InputError(
            f"mesh {spec!r} has elements other than {'quadrilaterals' if dim == 2 else 'hexahedra'}; "
            "expected an all-quad (2-D) or all-hex (3-D) mesh"
        )
    if mesh.GetNodes() is not None and mesh.GetNodalFESpace().GetMaxElementOrder() > 1:
        raise InputError(f"mesh {spec!r} is curved (high-order nodes); expected straight-sided elements")


def read_iteration(run_dir: Path, it: int) -> tuple[Any, Any]:
    """``(mesh, grid function)`` of a results folder's ``it_<it>.mesh`` / ``it_<it>.gf``, checked first.

    The grid function must be an order-1 H1 function with one value per mesh vertex; a truncated or
    foreign pair is one InputError line (never an MFEM abort).
    """
    mfem = mfem_module()
    mesh_path = check_mesh_file(str(run_dir / f"it_{it}.mesh"))
    gf_path = run_dir / f"it_{it}.gf"
    text = read_text(gf_path, "grid function file", max_bytes=MAX_MESH_BYTES)
    head, _, body = text.partition("\n\n")
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        raise InputError(f"grid function file {str(gf_path)!r} holds a value that is not a number; expected MFEM's format") from None
    with _captured_stderr():
        try:
            mesh = mfem.Mesh(str(mesh_path), 1, 1)
        except RuntimeError as err:
            raise InputError(f"mesh file {str(mesh_path)!r} could not be read: {_mfem_message(err)}") from None
    if "FiniteElementCollection: H1_" not in head or "_P1" not in head or len(values) != mesh.GetNV():
        raise InputError(f"grid function file {str(gf_path)!r} holds {len(values)} values ({head.splitlines()[1:2]}); "
                         f"expected an order-1 H1 function with one value per vertex ({mesh.GetNV()}) of {mesh_path.name}")
    with _captured_stderr():
        try:
            gf = mfem.GridFunction(mesh, str(gf_path))
        except RuntimeError as err:
            raise InputError(f"grid function file {str(gf_path)!r} could not be read: {_mfem_message(err)}") from None
    return mesh, gf


class AMRMesh:
    """An NC quad/hex mesh with an H1-P1 grid function and per-element refinement records."""

    def __init__(self, mesh: Any) -> None:
        mfem = mfem_module()
        self.mesh = mesh
        self.dim: int = mesh.Dimension()
        self.fec = mfem.H1_FECollection(1, self.dim)
        self.fes = mfem.FiniteElementSpace(mesh, self.fec)
        self.gf = mfem.GridFunction(self.fes)
        self.gf.Assign(0.0)
        ne = mesh.GetNE()
        self.level = np.zeros(ne, dtype=np.int64)
        self.born = np.full(ne, -1, dtype=np.int64)
        self.root = np.arange(ne, dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def ne(self) -> int:
        return int(self.mesh.GetNE())

    @property
    def dofs(self) -> int:
        """All vertex DOFs (hanging vertices included), ``GetNDofs``."""
        return int(self.fes.GetNDofs())

    @property
    def true_dofs(self) -> int:
        """Independent DOFs (hanging vertices excluded), ``GetTrueVSize``."""
        return int(self.fes.GetTrueVSize())

    # -- geometry in bulk ------------------------------------------------------------------------
    def vertices(self) -> np.ndarray:
        """``(NV, dim)`` float64 vertex coordinates (vertex ``j`` is DOF ``j``)."""
        if "V" not in self._cache:
            self._cache["V"] = np.array(self.mesh.GetVertexArray(), dtype=np.float64).reshape(-1, self.dim)
        return self._cache["V"]

    def element_vertices(self) -> np.ndarray:
        """``(NE, 2^dim)`` int64 vertex ids in lexicographic reference-corner order."""
        if "E" not in self._cache:
            mfem = mfem_module()
            restriction = self.fes.GetElementRestriction(mfem.ElementDofOrdering_LEXICOGRAPHIC)
            ids = mfem.Vector(np.arange(self.fes.GetNDofs(), dtype=np.float64))
            out = mfem.Vector(restriction.Height())
            restriction.Mult(ids, out)
            e = np.rint(out.GetDataArray()).astype(np.int64)
            self._cache["E"] = e.reshape(self.ne, 2**self.dim)
        return self._cache["E"]

    def corners(self) -> np.ndarray:
        """``(NE, 2^dim, dim)`` element corner coordinates in lexicographic reference order."""
        return self.vertices()[self.element_vertices()]

    # -- refinement ------------------------------------------------------------------------------
    def refine(self, flags: np.ndarray, it: int) -> int:
        """Split every flagged element isotropically (NC, unlimited hanging levels); returns the count.

        Children get ``level + 1``, ``born = it`` and their parent's root; untouched elements keep
        their records. The grid function is resized (its values must be set again).
        """
        mfem = mfem_module()
        flags = np.asarray(flags, dtype=bool)
        if flags.shape != (self.ne,):
            raise ValueError(f"flags must have shape ({self.ne},); got {flags.shape}")
        chosen = np.flatnonzero(flags)
        if chosen.size == 0:
            return 0
        self.mesh.GeneralRefinement(mfem.intArray(chosen.astype(np.int32).tolist()), 1, 0)
        table = mfem.Table()
        self.mesh.GetRefinementTransforms().MakeCoarseToFineTable(table)
        new_ne = self.ne
        parent = np.empty(new_ne, dtype=np.int64)
        split = np.zeros(new_ne, dtype=bool)
        for coarse in range(table.Size()):
            fine = table.GetRowList(coarse)
            parent[fine] = coarse
            if len(fine) > 1:
                split[fine] = True
        self.level = self.level[parent] + split
        self.born = np.where(split, it, self.born[parent])
        self.root = self.root[parent]
        self.fes.Update()
        self.gf.Update()
        self._cache.clear()
        return int(chosen.size)

    # -- values ----------------------------------------------------------------------------------
    def set_values(self, values: np.ndarray) -> np.ndarray:
        """Set ``u_h[j] = values[j]``, then constrain hanging vertices (``u = P R u``); returns ``u_h``."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.fes.GetNDofs(),):
            raise ValueError(f"values must have shape ({self.fes.GetNDofs()},); got {values.shape}")
        self.gf.GetDataArray()[:] = values
        self.gf.SetTrueVector()
        self.gf.SetFromTrueVector()
        return self.values()

    def values(self) -> np.ndarray:
        """``(NV,)`` the grid function's (constrained) vertex values, a copy."""
        return np.array(self.gf.GetDataArray(), dtype=np.float64)

    # -- output ----------------------------------------------------------------------------------
    def save(self, out: Path, it: int, *, precision: int = 12) -> None:
        """Write ``it_<it>.mesh`` and ``it_<it>.gf`` (MFEM format, readable by GLVis), atomically."""
        from sciprune.files import atomic_write_with

        atomic_write_with(out / f"it_{it}.mesh", lambda tmp: self.mesh.Save(tmp, precision))
        atomic_write_with(out / f"it_{it}.gf", lambda tmp: self.gf.Save(tmp, precision))


class ParaViewWriter:
    """A ParaView collection with one cycle per iteration (``<out>/paraview/amr/amr.pvd``)."""

    def __init__(self, amr: AMRMesh, out: Path) -> None:
        mfem = mfem_module()
        self._dc = mfem.ParaViewDataCollection("amr", amr.mesh)
        self._dc.SetPrefixPath(str(out / "paraview"))
        self._dc.SetLevelsOfDetail(1)
        self._dc.SetHighOrderOutput(False)
        self._dc.RegisterField("inr", amr.gf)

    def write(self, it: int) -> None:
        self._dc.SetCycle(it)
        self._dc.SetTime(float(it))
        self._dc.Save()
