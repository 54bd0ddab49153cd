"""The moth model and its integrator against a direct 4×4 solve and scipy's Radau at rtol 1e-11."""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp

from sciprune.studies.moth.integrator import integrate
from sciprune.studies.moth.physics import Constants, rhs
from sciprune.studies.moth.sampling import draw
from sciprune.studies.moth.simulate import HORIZON, JAC_COLS

K = Constants()


def rhs_direct(y: np.ndarray, u: np.ndarray) -> np.ndarray:
    """dy/dt by assembling M(q) and b(q, q̇, u) as written in the spec and solving M q̈ = b (one sample)."""
    d = K.derived
    m1, m2, L1, L2, L3, I1, I2 = (d[k] for k in ("m1", "m2", "L1", "L2", "L3", "I1", "I2"))
    _, xd, _, yd, th, thd, ph, phd = y
    F, al, tau = u
    v = np.hypot(xd, yd)
    cd = [24 / re + 6 / (1 + np.sqrt(re)) + 0.4 for re in (K.rho_air * v * 2 * d[b] / K.mu_air for b in ("bh", "bb"))]
    kd = 0.5 * K.rho_air * (cd[0] * d["Sh"] + cd[1] * d["Sa"])
    S = K.K * (ph - th - np.pi - K.beta_r) + K.c * (phd - thd)
    st, ct, sp, cp = np.sin(th), np.cos(th), np.sin(ph), np.cos(ph)
    M = np.array([[m1 + m2, 0, -m1 * L1 * st, -m2 * L2 * sp], [0, m1 + m2, m1 * L1 * ct, m2 * L2 * cp],
                  [-m1 * L1 * st, m1 * L1 * ct, I1 + m1 * L1**2, 0], [-m2 * L2 * sp, m2 * L2 * cp, 0, I2 + m2 * L2**2]])
    b = np.array([F * np.cos(al + th) - kd * abs(xd) * xd + m1 * L1 * ct * thd**2 + m2 * L2 * cp * phd**2,
                  F * np.sin(al + th) - kd * abs(yd) * yd + m1 * L1 * st * thd**2 + m2 * L2 * sp * phd**2 - (m1 + m2) * K.g,
                  tau - m1 * K.g * L1 * ct + S + F * L3 * np.sin(al), -tau - m2 * K.g * L2 * cp - S])
    a = np.linalg.solve(M, b)
    return np.array([xd, a[0], yd, a[1], thd, a[2], phd, a[3]])


def test_constants_match_the_spec():
    d = K.derived
    assert np.isclose(d["m1"], 0.848230, atol=1e-6) and np.isclose(d["m2"], 1.790708, atol=1e-6)
    assert np.isclose(d["I1"], 0.179825, atol=1e-6) and np.isclose(d["I2"], 1.494346, atol=1e-6)


def test_closed_form_rhs_matches_the_direct_solve():
    y0, u = draw(3, 0, 200)
    y = y0 + np.random.default_rng(0).normal(size=y0.shape) * [5, 300, 5, 300, 2, 50, 2, 50]
    ours = rhs(torch.from_numpy(y), torch.from_numpy(u), K).numpy()
    ref = np.stack([rhs_direct(a, b) for a, b in zip(y, u)])
    assert np.abs(ours - ref).max() <= 1e-12 * np.abs(ref).max()


def test_rodas4_matches_radau_at_rtol_1e_11_on_100_samples():
    """Each sample solved on its own by scipy's Radau (rtol 1e-11) with the direct-solve right-hand side."""
    n = 100
    y0, u = draw(7, 1000, 1000 + n)
    want = np.stack([
        solve_ivp(lambda _t, z, c=c: rhs_direct(z, c), (0.0, HORIZON), y, method="Radau", rtol=1e-11, atol=1e-11).y[:, -1]
        for y, c in zip(y0, u)
    ])
    got = integrate(lambda y, c: rhs(y, c, K), torch.from_numpy(y0), torch.from_numpy(u), HORIZON, cols=JAC_COLS)
    assert bool(got.ok.all())
    span = want.max(axis=0) - want.min(axis=0)
    assert (np.abs(got.y.numpy() - want).max(axis=0) / span).max() <= 1e-6


def test_a_sample_that_cannot_converge_is_reported():
    y0, u = draw(0, 0, 64)
    y0[5, 1] = np.nan  # a broken sample among good ones
    got = integrate(lambda y, c: rhs(y, c, K), torch.from_numpy(y0), torch.from_numpy(u), HORIZON, cols=JAC_COLS)
    assert not bool(got.ok[5]) and int(got.ok.sum()) == 63
