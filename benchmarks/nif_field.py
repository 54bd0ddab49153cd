r"""Write a gridded 2-D, two-component test field for ``sciprune nif`` (rows in random order).

A vortex drifting across the unit square over time plus a steady shear layer: with stream function

.. math:: \psi(x, y; t) = e^{-((x - x_0(t))^2 + (y - y_0(t))^2) / s^2} + 0.3\,\tanh\big(8 (y - 0.5)\big)\,\sin(2\pi x),

:math:`x_0 = 0.25 + 0.5 t`, :math:`y_0 = 0.5 + 0.15 \sin(2\pi t)`, :math:`s = 0.12`, the velocity
:math:`(u, v) = (\partial_y\psi, -\partial_x\psi)` (exact derivatives) on an ``side × side`` grid of
``[0, 1)²`` at ``snapshots`` times in ``[0, 1]``. A travelling vortex needs many POD modes (each
snapshot's vortex sits elsewhere), which is where a NIF can win at equal storage.

The array ``data`` has columns ``[t | x y | u v]`` and ``snapshots · side²`` rows, shuffled with a
fixed seed (``sciprune nif`` finds the grid in any row order)::

    python benchmarks/nif_field.py field.npz --side 80 --snapshots 16     # 102,400 rows
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def field(side: int, snapshots: int) -> np.ndarray:
    """The ``(snapshots · side², 5)`` float64 array ``[t, x, y, u, v]``, p-major (unshuffled)."""
    t = np.linspace(0.0, 1.0, snapshots)
    g = np.arange(side) / side
    T, X, Y = np.meshgrid(t, g, g, indexing="ij")
    x0, y0, s = 0.25 + 0.5 * T, 0.5 + 0.15 * np.sin(2 * np.pi * T), 0.12
    blob = np.exp(-((X - x0) ** 2 + (Y - y0) ** 2) / s**2)
    th = np.tanh(8 * (Y - 0.5))
    u = blob * (-2 * (Y - y0) / s**2) + 0.3 * 8 * (1 - th**2) * np.sin(2 * np.pi * X)
    v = -(blob * (-2 * (X - x0) / s**2) + 0.3 * th * 2 * np.pi * np.cos(2 * np.pi * X))
    return np.stack([T, X, Y, u, v], axis=-1).reshape(-1, 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the .npz to write (must not exist)")
    ap.add_argument("--side", type=int, default=80, help="grid points per side")
    ap.add_argument("--snapshots", type=int, default=16, help="times in [0, 1]")
    ap.add_argument("--seed", type=int, default=0, help="seed of the row order")
    a = ap.parse_args()
    if a.out.exists():
        raise SystemExit(f"{a.out} exists; choose another name")
    data = field(a.side, a.snapshots)
    data = data[np.random.default_rng(a.seed).permutation(data.shape[0])]
    np.savez(a.out, data=data)
    print(f"{a.out}: {data.shape[0]:,} rows [t | x y | u v]")


if __name__ == "__main__":
    main()
