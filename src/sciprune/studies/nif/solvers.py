r"""The PDE solvers behind the generated NIF data sets.

* :func:`kuramoto_sivashinsky`: :math:`u_t + u u_x + u_{xx} + \nu u_{xxxx} = 0` on the periodic
  :math:`x \in [0, 2\pi)`, Fourier pseudo-spectral in x, ETDRK4 in time (Cox & Matthews 2002,
  with the contour-integral coefficients of Kassam & Trefethen 2005), 2/3 de-aliasing of
  :math:`-\tfrac12 \partial_x (u^2)`. Linear symbol :math:`L(k) = k^2 - \nu k^4`.
* :func:`navier_stokes_2d`: incompressible 2-D Navier-Stokes in vorticity form
  :math:`\omega_t + \mathbf u\cdot\nabla\omega = \nu\nabla^2\omega`, :math:`\mathbf u =
  (\psi_y, -\psi_x)`, :math:`\nabla^2\psi = -\omega`, on the periodic box :math:`[0, 2\pi)^2`
  (``torch.fft``); the viscous term is integrated exactly (integrating factor) and the advection
  by classical RK4, 2/3 de-aliasing. Taylor-Green :math:`\omega = 2\sin x\sin y\,e^{-2\nu t}`
  is an exact solution (its advection vanishes), which the tests check.
"""

from __future__ import annotations

import numpy as np
import torch


def etdrk4_coefficients(Lk: np.ndarray, dt: float, contour: int = 32) -> tuple[np.ndarray, ...]:
    """``E, E2, Q, f1, f2, f3`` of ETDRK4 for the diagonal linear symbol ``Lk`` (Kassam-Trefethen)."""
    E, E2 = np.exp(dt * Lk), np.exp(dt * Lk / 2)
    r = np.exp(1j * np.pi * (np.arange(1, contour + 1) - 0.5) / contour)
    LR = dt * Lk[:, None] + r[None, :]
    Q = dt * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
    f1 = dt * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
    f2 = dt * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
    f3 = dt * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))
    return E, E2, Q, f1, f2, f3


def kuramoto_sivashinsky(u0: np.ndarray, nu: float, dt: float, t_out: np.ndarray, *, nonlinear: bool = True) -> np.ndarray:
    """Solve K-S from ``u0`` (``nx`` points on ``[0, 2π)``); returns ``u`` at ``t_out`` (multiples of ``dt``), ``(len(t_out), nx)``."""
    nx = u0.shape[0]
    k = np.fft.rfftfreq(nx, d=1.0 / nx)
    Lk = k**2 - nu * k**4
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(Lk, dt)
    g = -0.5j * k * (k < nx / 3)  # -½ ∂x(·), 2/3 de-aliased
    if not nonlinear:
        g = g * 0.0

    def N(v: np.ndarray) -> np.ndarray:
        return g * np.fft.rfft(np.fft.irfft(v, n=nx) ** 2)

    steps = np.rint(np.asarray(t_out) / dt).astype(int)
    v = np.fft.rfft(u0)
    out = np.empty((len(steps), nx))
    n = 0
    for i, s in enumerate(steps):
        while n < s:
            Nv = N(v)
            a = E2 * v + Q * Nv
            Na = N(a)
            b = E2 * v + Q * Na
            Nb = N(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            Nc = N(c)
            v = E * v + Nv * f1 + 2 * (Na + Nb) * f2 + Nc * f3
            n += 1
        out[i] = np.fft.irfft(v, n=nx)
    return out


def _wavenumbers(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype)
    kr = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype)
    return k[:, None].expand(n, kr.numel()), kr[None, :].expand(n, kr.numel())


def navier_stokes_2d(w0: torch.Tensor, nu: float, dt: float, t_out: np.ndarray) -> torch.Tensor:
    """Vorticity ``w0`` (``n×n`` on ``[0, 2π)²``, float64) advanced to ``t_out``; returns ``(len(t_out), n, n)``."""
    n = w0.shape[0]
    ky, kx = _wavenumbers(n, w0.dtype)
    k2 = kx**2 + ky**2
    inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    keep = ((kx.abs() < n / 3) & (ky.abs() < n / 3)).to(w0.dtype)
    half = torch.exp(-nu * k2 * dt / 2)

    def adv(wh: torch.Tensor) -> torch.Tensor:
        psi = wh * inv  # ∇²ψ = -ω  ->  ψ̂ = ω̂ / k²
        u = torch.fft.irfft2(1j * ky * psi, s=(n, n))
        v = torch.fft.irfft2(-1j * kx * psi, s=(n, n))
        wx = torch.fft.irfft2(1j * kx * wh, s=(n, n))
        wy = torch.fft.irfft2(1j * ky * wh, s=(n, n))
        return -torch.fft.rfft2(u * wx + v * wy) * keep

    steps = np.rint(np.asarray(t_out) / dt).astype(int)
    wh = torch.fft.rfft2(w0)
    out = torch.empty(len(steps), n, n, dtype=w0.dtype)
    s = 0
    for i, target in enumerate(steps):
        while s < target:  # integrating-factor RK4
            k1 = adv(wh)
            k2_ = adv(half * (wh + dt / 2 * k1))
            k3 = adv(half * wh + dt / 2 * k2_)
            k4 = adv(half * half * wh + dt * half * k3)
            wh = half * half * (wh + dt / 6 * k1) + dt / 6 * half * (2 * k2_ + 2 * k3) + dt / 6 * k4
            s += 1
        out[i] = torch.fft.irfft2(wh, s=(n, n))
    return out


def random_vorticity(n: int, k0: float, amplitude: float, rng: np.random.Generator) -> torch.Tensor:
    """A seeded random vorticity field with energy spectrum ``∝ k⁴ exp(-2 (k/k0)²)`` and rms ``amplitude``."""
    ky, kx = _wavenumbers(n, torch.float64)
    k = torch.sqrt(kx**2 + ky**2)
    spec = k**4 * torch.exp(-2.0 * (k / k0) ** 2)
    # vorticity spectrum: |ω̂|² ∝ k² E(k) / k  (2-D shell)
    amp = torch.sqrt(spec * k) * (k > 0)
    phase = torch.from_numpy(rng.uniform(0.0, 2 * np.pi, size=tuple(k.shape)))
    w = torch.fft.irfft2(amp * torch.exp(1j * phase), s=(n, n))
    return w * (amplitude / w.pow(2).mean().sqrt())
