"""The nif data: the traveling wave against the upstream files, the PDE solvers, user files, normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sciprune.errors import InputError
from sciprune.studies.nif.data import FieldData, normaliser, split, traveling_wave, user_file, wave
from sciprune.studies.nif.pod import pod_at, pod_curve
from sciprune.studies.nif.solvers import kuramoto_sivashinsky, navier_stokes_2d, random_vorticity

ANCHORS = Path(__file__).resolve().parents[3].parent / "shared" / "anchors" / "nif"


@pytest.mark.parametrize(("omega", "name"), [(4.0, "traveling_wave.npz"), (400.0, "traveling_wave_high_freq.npz")])
def test_wave_equals_the_upstream_file_exactly(omega, name):
    path = ANCHORS / name
    if not path.exists():
        pytest.skip("../shared/anchors/nif is absent (a user's clone)")
    ref = np.load(path)["data"]
    ours = traveling_wave(omega)
    assert ours.dtype == ref.dtype == np.float32
    assert np.array_equal(ours, ref)


def test_wave_formula_and_minmax_statistics():
    a = traveling_wave(400.0)
    assert a.shape == (2000, 3)
    assert np.abs(a[:, 2]).max() == pytest.approx(0.88685, abs=1e-5)
    norm = normaliser(wave(400.0), "minmax")
    assert np.allclose(norm.in_centre, [45.0, 0.4975]) and np.allclose(norm.in_scale, [45.0, 0.4975])
    assert np.abs(traveling_wave(4.0)[:, 2]).max() == pytest.approx(0.05357, abs=1e-5)


def test_ks_small_amplitude_is_the_exact_linear_solution():
    x = 2 * np.pi * np.arange(64) / 64
    nu, eps, t = 0.5, 1e-7, np.array([0.0, 1.0, 2.0])
    u = kuramoto_sivashinsky(eps * np.cos(2 * x), nu, 0.01, t)
    exact = eps * np.exp((4 - 16 * nu) * t)[:, None] * np.cos(2 * x)  # L(k) = k² - ν k⁴
    assert np.abs(u - exact).max() < 1e-12 * eps  # docs/nif.md: 1e-12 of the initial amplitude (measured 3.2e-13)


def test_ks_etdrk4_is_fourth_order_in_time():
    x = 2 * np.pi * np.arange(64) / 64
    u0 = -np.sin(x) + 2 * np.cos(2 * x) + 3 * np.cos(3 * x) - 4 * np.sin(4 * x)
    t = np.array([0.5])
    ref = kuramoto_sivashinsky(u0, 0.2, 1 / 2048, t)
    errs = [np.abs(kuramoto_sivashinsky(u0, 0.2, dt, t) - ref).max() for dt in (1 / 64, 1 / 128, 1 / 256)]
    orders = [np.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert min(orders) > 3.5, (errs, orders)


def test_navier_stokes_reproduces_the_taylor_green_decay():
    n, nu = 32, 0.05
    g = 2 * np.pi * np.arange(n) / n
    X, Y = np.meshgrid(g, g, indexing="ij")
    t = np.array([0.0, 0.5, 1.0])
    # Taylor-Green, and a mixture of modes with one |k|² (=5): the advection vanishes, ω decays as e^{-ν|k|²t}
    for k2, shape in ((2, 2 * np.sin(X) * np.sin(Y)), (5, np.sin(2 * X) * np.sin(Y) + 0.7 * np.cos(X) * np.cos(2 * Y))):
        w = navier_stokes_2d(torch.from_numpy(shape), nu, 0.01, t).numpy()
        for i, ti in enumerate(t):
            assert np.abs(w[i] - shape * np.exp(-nu * k2 * ti)).max() < 1e-10
    # a field that is not steady does change beyond viscous decay (the advection term is live)
    mixed = np.sin(X) * np.sin(Y) + 0.5 * np.cos(3 * X) * np.cos(Y)
    w = navier_stokes_2d(torch.from_numpy(mixed), 0.0, 0.01, np.array([1.0])).numpy()
    assert np.abs(w[0] - mixed).max() > 1e-2


def test_decaying_turbulence_needs_many_pod_modes():
    rng = np.random.default_rng(0)
    w0 = random_vorticity(32, 4.0, 1.0, rng)
    w = navier_stokes_2d(w0, 1e-3, 0.05, np.linspace(0, 4, 12)).numpy()
    assert np.isfinite(w).all()
    curve = pod_curve(w.reshape(-1, 1), (12, 32, 32))
    assert curve[2]["rel_l2"] > 0.05  # three modes leave more than 5 % of the field
    assert curve[-1]["rel_l2"] < 1e-10
    assert pod_at(curve, curve[1]["stored"])["rank"] == 2 and pod_at(curve, 10) is None


def _write(path: Path, arr: np.ndarray) -> Path:
    if path.suffix == ".npz":
        np.savez(path, data=arr)
    else:
        path.write_text("t,x,y,u,w\n" + "\n".join(",".join(f"{v:.17g}" for v in row) for row in arr))
    return path


def _table(n=50):
    rng = np.random.default_rng(1)
    return np.column_stack([rng.integers(0, 5, n), rng.random(n), rng.random(n), rng.normal(size=n), 1 + rng.random(n)])


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_user_file_reads_declared_columns(tmp_path, suffix):
    arr = _table()
    d = user_file(str(_write(tmp_path / f"d{suffix}", arr)), 1, 2, 1, True)
    assert d.p.shape == (50, 1) and d.x.shape == (50, 2) and d.u.shape == (50, 1)
    assert np.allclose(d.w, arr[:, 4])
    sp = split(d, "standard", 0.2, 0, torch.float64)
    assert sp.train_w is not None and float(sp.train_w.mean()) == pytest.approx(1.0, rel=0.2)
    assert sp.train_in.shape[0] == 40 and sp.test_in.shape[0] == 10


@pytest.mark.parametrize(("edit", "message"), [
    (lambda a: a[:, :4], r"has 4 columns; the declared layout .* needs 5"),
    (lambda a: np.where(np.arange(5) == 2, np.nan, a), r"column 2 holds NaN"),
    (lambda a: np.where(np.arange(5) == 1, 0.5, a), r"column 1 is constant"),
])
def test_bad_user_files_are_refused_in_one_line(tmp_path, edit, message):
    path = _write(tmp_path / "bad.npz", edit(_table()))
    with pytest.raises(InputError, match=message) as err:
        user_file(str(path), 1, 2, 1, True)
    assert "\n" not in str(err.value)


def test_minmax_targets_follow_the_spec():
    d = FieldData("t", np.arange(4.0)[:, None], np.arange(4.0)[:, None] * 2, np.array([[1.0], [-3.0], [2.0], [0.0]]))
    norm = normaliser(d, "minmax")
    z = norm.targets(d.u)
    assert np.allclose(z[:, 0], (d.u[:, 0] - 0.0) / 3.0)
    assert np.allclose(norm.inputs(d.p, d.x)[[0, -1]], [[-1, -1], [1, 1]])
    assert np.allclose(norm.physical(z), d.u)
