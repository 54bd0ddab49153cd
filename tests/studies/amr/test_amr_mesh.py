"""MFEM side: refinement records, hanging-node values, P1 interpolation and the true RMSE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sciprune.nn.mlp import MLP

mfem = pytest.importorskip("mfem.ser")
pytestmark = pytest.mark.mfem

from sciprune.studies.amr.evaluate import TrueError  # noqa: E402
from sciprune.studies.amr.inr import INR  # noqa: E402
from sciprune.studies.amr.interp import BoxLocator, box_values, find_points, reference_values  # noqa: E402
from sciprune.studies.amr.meshing import AMRMesh, load_mesh  # noqa: E402


def _nc_mesh(spec: str, seed: int = 0, rounds: int = 3) -> AMRMesh:
    """A mesh refined irregularly (random flags), so that it has hanging vertices of several levels."""
    amr = AMRMesh(load_mesh(spec))
    rng = np.random.default_rng(seed)
    for it in range(rounds):
        flags = rng.random(amr.ne) < 0.3
        flags[0] = True
        amr.refine(flags, it)
    return amr


def _multilinear_inr(dim: int) -> tuple[INR, np.ndarray]:
    """f(x) = sum_S c_S prod_{d in S} x_d (multilinear): exact in P1 on boxes, hanging vertices included."""
    coef = np.array([0.3, -1.2, 0.7, 2.1, -0.4, 0.9, 1.3, -0.8][: 2**dim])
    mlp = MLP([dim, 1], "identity", generator=None, dtype=torch.float64)  # placeholder, evaluation overridden below

    class Multilinear(INR):
        def __call__(self, x):  # type: ignore[override]
            x = torch.as_tensor(x, dtype=torch.float64)
            out = torch.zeros(x.shape[:-1], dtype=torch.float64)
            for c, a in enumerate(coef):
                term = torch.full_like(out, float(a))
                for d in range(dim):
                    if c >> d & 1:
                        term = term * x[..., d]
                out = out + term
            return out.unsqueeze(-1)

    return Multilinear("multilinear", "", mlp, None, "square", 0), coef


def _set_from(amr: AMRMesh, inr: INR) -> np.ndarray:
    raw = inr(amr.vertices())[:, 0].numpy()
    return amr.set_values(raw)


@pytest.mark.parametrize("spec", ["square", "cube"])
def test_levels_are_stored_and_match_geometry(spec: str) -> None:
    amr = _nc_mesh(spec, rounds=3)
    corners = amr.corners()
    size = corners.max(axis=1) - corners.min(axis=1)
    root_size = 1.0 / (4 if spec == "square" else 2)
    np.testing.assert_allclose(size, (root_size / 2.0**amr.level)[:, None] * np.ones(amr.dim), rtol=1e-12)
    assert set(np.unique(amr.born)) <= {-1, 0, 1, 2}
    assert np.all((amr.born == -1) == (amr.level == 0))
    assert amr.dofs > amr.true_dofs  # there are hanging vertices


@pytest.mark.parametrize("spec", ["square", "cube"])
def test_hanging_values_are_the_interpolation_of_their_parents(spec: str) -> None:
    amr = _nc_mesh(spec)
    f = lambda x: np.sin(3 * x[:, 0]) + x[:, 1] ** 2 + np.cos(2 * x[:, -1])  # noqa: E731
    V = amr.vertices()
    u = amr.set_values(f(V))
    changed = np.flatnonzero(np.abs(u - f(V)) > 1e-12)
    assert len(changed) == amr.dofs - amr.true_dofs > 0  # exactly the hanging vertices were constrained
    # every element's multilinear interpolant, evaluated at every vertex on its closure, equals u there
    corners, vals = amr.corners(), u[amr.element_vertices()]
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    checked = 0
    for v in changed:
        inside = np.flatnonzero(np.all((V[v] >= lo - 1e-12) & (V[v] <= hi + 1e-12), axis=1))
        got = box_values(corners, vals, inside, np.repeat(V[v][None], len(inside), axis=0))
        np.testing.assert_allclose(got, u[v], atol=1e-12)
        checked += len(inside)
    assert checked > len(changed)  # a hanging vertex touches a coarse element and its fine neighbours


@pytest.mark.parametrize("spec", ["square", "cube"])
def test_rmse_of_a_multilinear_function_is_zero(spec: str) -> None:
    amr = _nc_mesh(spec)
    inr, _ = _multilinear_inr(amr.dim)
    err = TrueError(AMRMesh(load_mesh(spec)), inr, lambda x: x, 0, seed=0, n_points=4096)
    _set_from(amr, inr)
    rmse, max_err = err(amr)
    assert rmse < 1e-13 and max_err < 1e-12


@pytest.mark.parametrize("spec", ["square", "cube"])
def test_vectorised_interpolant_matches_mfem_getvalue(spec: str) -> None:
    amr = _nc_mesh(spec, seed=3)
    f = lambda x: np.sin(5 * x[:, 0]) * np.cos(3 * x[:, 1]) + x[:, -1] ** 3  # noqa: E731
    u = amr.set_values(f(amr.vertices()))
    pts = np.random.default_rng(1).random((300, amr.dim))
    corners = amr.corners()
    locator = BoxLocator(AMRMesh(load_mesh(spec)).corners(), pts)
    elem = locator.locate(corners.min(axis=1), corners.max(axis=1), amr.level, amr.root)
    assert elem is not None and np.all(elem >= 0)
    fast = box_values(corners, u[amr.element_vertices()], elem, pts)
    ids, xi = find_points(amr.mesh, pts)
    general = reference_values(u[amr.element_vertices()], ids, xi)
    brute = []
    for e, p in zip(ids, xi):  # MFEM itself, at the reference point FindPoints returned
        ip = mfem.IntegrationPoint()
        ip.Set3(*p) if amr.dim == 3 else ip.Set2(*p)
        brute.append(amr.gf.GetValue(int(e), ip))
    np.testing.assert_allclose(fast, brute, atol=1e-12)
    np.testing.assert_allclose(general, brute, atol=1e-12)


def test_true_error_equals_brute_force_rmse() -> None:
    amr = _nc_mesh("square", seed=5)
    mlp = MLP([2, 16, 1], "tanh", generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    inr = INR("tanh", "", mlp, None, "square", 0)
    err = TrueError(AMRMesh(load_mesh("square")), inr, lambda x: x, 0, seed=7, n_points=2000)
    u = _set_from(amr, inr)
    rmse, max_err = err(amr)
    ids, xi = find_points(amr.mesh, err.points)
    diffs = []
    for p, e, r in zip(err.points, ids, xi):
        ip = mfem.IntegrationPoint()
        ip.Set2(*r)
        diffs.append(inr(p[None])[0, 0].item() - amr.gf.GetValue(int(e), ip))
    diffs = np.array(diffs)
    assert rmse == pytest.approx(np.sqrt(np.mean(diffs**2)), rel=1e-10)
    assert max_err == pytest.approx(np.abs(diffs).max(), rel=1e-10)
    assert u.shape == (amr.dofs,)


def test_vertex_values_cover_all_vertices_after_refinement() -> None:
    from sciprune.studies.amr.evaluate import VertexValues

    amr = AMRMesh(load_mesh("square:2"))
    mlp = MLP([2, 8, 1], "tanh", generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    inr = INR("t", "", mlp, None, "square", 0)
    values = VertexValues(inr, lambda x: x, 0)
    for it in range(3):
        raw = values(amr)
        np.testing.assert_allclose(raw, inr(amr.vertices())[:, 0].numpy(), rtol=1e-14, atol=0)
        amr.refine(np.arange(amr.ne) % 3 == 0, it)


SKEWED = """MFEM mesh v1.0

dimension
2

elements
4
1 3 0 1 4 3
1 3 1 2 5 4
1 3 3 4 7 6
1 3 4 5 8 7

boundary
0

vertices
9
2
0 0
0.5 0
1 0
0 0.5
0.6 0.55
1 0.5
0 1
0.5 1
1 1
"""


def test_mesh_files_boxes_elsewhere_and_skewed_quads(tmp_path: Path) -> None:
    from tests.studies.amr.conftest import run_study

    box = tmp_path / "box.mesh"
    m = mfem.Mesh.MakeCartesian2D(2, 3, mfem.Element.QUADRILATERAL, False, 4.0, 3.0, False)
    m.Save(str(box))
    amr = AMRMesh(load_mesh(str(box)))
    mlp = MLP([2, 8, 1], "tanh", generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    inr = INR("t", "", mlp, None, "square", 0)
    err = TrueError(amr, inr, lambda x: x, 0, seed=0, n_points=2048)
    assert err.locator is not None and np.all(err.locator.proot >= 0)
    skewed = tmp_path / "skewed.mesh"
    skewed.write_text(SKEWED)
    amr = AMRMesh(load_mesh(str(skewed)))
    err = TrueError(amr, inr, lambda x: x, 0, seed=0, n_points=2048)
    assert err.locator is None  # not axis-aligned boxes: FindPoints path
    _, rows = run_study(tmp_path / "run", inr="corner", mesh=str(skewed), max_it=3, rmse_points=2048,
                        uniform_baseline=False)
    assert rows[-1]["rmse"] < rows[0]["rmse"] and rows[-1]["dofs"] > rows[1]["dofs"]
