"""Plots of an AMR run, made from its results directory alone.

* ``error_vs_dofs.png``: true RMSE and max error against DOFs (log-log), the run beside uniform
  refinement (the run's baseline rows).
* ``final_mesh.png``: the last mesh over its P1 field (2-D), or over the slice through the middle
  of the last axis (3-D: for a space-time mesh, the middle time).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter
from matplotlib.tri import Triangulation

from sciprune.files import atomic_write_with
from sciprune.studies.base import Rows
from sciprune.studies.amr.config import AMRConfig


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    return path


class DistinctFormatter(Formatter):
    """Tick labels with the fewest significant digits (at least ``digits``) that keep the visible
    labels of one axis distinct (a log axis spanning less than a decade otherwise prints 1.8, 1.8).
    ``only_within_a_decade``: label only when the axis spans less than a decade (for minor ticks,
    which then carry the only labels; over several decades they would crowd the decades' labels)."""

    def __init__(self, digits: int = 2, *, only_within_a_decade: bool = False) -> None:
        self.digits = digits
        self.only_within_a_decade = only_within_a_decade

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.{self.digits}g}"

    def format_ticks(self, values: Any) -> list[str]:
        if self.only_within_a_decade and self.axis is not None:
            lo, hi = sorted(self.axis.get_view_interval())
            if lo > 0 and hi / lo >= 10:  # the decades are labelled: minor labels would only crowd them
                return ["" for _ in values]
        labels = [f"{v:.{self.digits}g}" for v in values]
        for digits in range(self.digits, 10):
            labels = [f"{v:.{digits}g}" for v in values]
            if len(set(labels)) == len(labels):
                break
        return labels


def _label(cfg: AMRConfig) -> str:
    """The INR's name for titles: a built-in name, or a checkpoint's file name (not its path)."""
    return Path(cfg.inr).name


def error_vs_dofs_figure(cfg: AMRConfig, rows: Rows) -> Figure:
    runs = [r for r in rows if r.get("role") == "run"]
    base = [r for r in rows if r.get("role") == "baseline"]
    fig = Figure(figsize=(10, 4.2))
    for ax, key, label in zip(fig.subplots(1, 2), ("rmse", "max_error"), ("true RMSE", "max error")):
        if base:
            ax.plot([r["dofs"] for r in base], [r[key] for r in base], "s--", color="0.45", label="uniform refinement")
        if runs:
            name = {"bulk": "bulk AMR", "pruning": "PruningAMR", "basic": "BasicAMR", "uniform": "uniform"}[cfg.mode]
            ax.plot([r["true_dofs"] for r in runs], [r[key] for r in runs], "o-", color="C0", label=f"{name} (true DOFs)")
            if any(r["dofs"] != r["true_dofs"] for r in runs):
                ax.plot([r["dofs"] for r in runs], [r[key] for r in runs], "o:", color="C0", alpha=0.45,
                        label=f"{name} (all DOFs)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(DistinctFormatter(3))
        ax.yaxis.set_minor_formatter(DistinctFormatter(2, only_within_a_decade=True))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlabel("degrees of freedom")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    eps = cfg.surrogate_epsilon if cfg.indicator == "interpolation" else cfg.epsilon
    what = {"bulk": f"bulk, θ={cfg.fraction:g}, {cfg.indicator}" + ("" if eps is None else f", ε={eps:g}"),
            "pruning": f"pruning, T={cfg.threshold}, P={cfg.prop_threshold}, ε={cfg.epsilon}",
            "basic": f"basic, T={cfg.threshold}", "uniform": "uniform"}[cfg.mode]
    fig.suptitle(f"{_label(cfg)}: error of the mesh interpolant against DOFs ({what})", fontsize=10)
    return fig


def plot_error_vs_dofs(cfg: AMRConfig, rows: Rows, path: Path) -> Path:
    return _save(error_vs_dofs_figure(cfg, rows), path)


def _load(run_dir: Path, it: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(corners (NE, C, d), corner values (NE, C), d)`` of ``it_<it>.mesh`` / ``.gf``."""
    from sciprune.studies.amr.meshing import mfem_module, read_iteration

    mfem = mfem_module()
    mesh, gf = read_iteration(run_dir, it)
    fes = gf.FESpace()
    restriction = fes.GetElementRestriction(mfem.ElementDofOrdering_LEXICOGRAPHIC)
    dim = mesh.Dimension()
    ids_in = mfem.Vector(np.arange(fes.GetNDofs(), dtype=np.float64))
    ids_out = mfem.Vector(restriction.Height())
    restriction.Mult(ids_in, ids_out)
    E = np.rint(ids_out.GetDataArray()).astype(np.int64).reshape(mesh.GetNE(), 2**dim)
    V = np.array(mesh.GetVertexArray(), dtype=np.float64).reshape(-1, dim)
    u = np.array(gf.GetDataArray(), dtype=np.float64)
    return V[E], u[E], dim


def _slice(corners: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The hexes cut by the plane through the middle of the last axis, as quads with values."""
    z = corners[..., 2]
    z0 = 0.5 * (z.min() + z.max())
    lo, hi = z.min(axis=1), z.max(axis=1)
    keep = (lo <= z0) & ((z0 < hi) | (hi == z.max()))
    c, v, lo, hi = corners[keep], vals[keep], lo[keep], hi[keep]
    t = ((z0 - lo) / (hi - lo))[:, None]
    quad_c = (1 - t)[..., None] * c[:, :4, :2] + t[..., None] * c[:, 4:, :2]
    quad_v = (1 - t) * v[:, :4] + t * v[:, 4:]
    return quad_c, quad_v, float(z0)


def _bilinear_triangulation(corners: np.ndarray, vals: np.ndarray) -> tuple[Triangulation, np.ndarray]:
    """Each quad split into ``s x s`` bilinear sub-quads (2 triangles each) so that Gouraud shading
    shows the bilinear interpolant, not the two-triangle artefact; ``s`` shrinks for large meshes."""
    from sciprune.studies.amr.interp import corner_weights

    s = 6 if len(corners) <= 4000 else 3 if len(corners) <= 40000 else 1
    g = np.linspace(0.0, 1.0, s + 1)
    xi = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).reshape(-1, 2)  # (s+1)^2, x fastest
    w = corner_weights(xi)
    pts = np.einsum("pc,ecd->epd", w, corners).reshape(-1, 2)
    v = np.einsum("pc,ec->ep", w, vals).reshape(-1)
    i, j = np.meshgrid(np.arange(s), np.arange(s), indexing="xy")
    a = (j * (s + 1) + i).reshape(-1)
    local = np.concatenate([np.stack([a, a + 1, a + s + 2], 1), np.stack([a, a + s + 2, a + s + 1], 1)])
    tris = (np.arange(len(corners))[:, None, None] * (s + 1) ** 2 + local[None]).reshape(-1, 3)
    return Triangulation(pts[:, 0], pts[:, 1], tris), v


def plot_final_mesh(cfg: AMRConfig, run_dir: Path, it: int, path: Path) -> Path:
    return _save(final_mesh_figure(cfg, run_dir, it), path)


def final_mesh_figure(cfg: AMRConfig, run_dir: Path, it: int) -> Figure:
    corners, vals, dim = _load(run_dir, it)
    title = f"{_label(cfg)}: mesh after iteration {it} ({len(corners)} elements) over its P1 field"
    labels = ("x", "y")
    labels3 = ("x", "y", "t" if cfg.inr == "spacetime" else "z")
    if dim == 3:
        corners, vals, z0 = _slice(corners, vals)
        title += f"; slice through the middle of the third axis ({labels3[2]} = {z0:.3g})"
    tri = _bilinear_triangulation(corners, vals)
    outline = corners[:, [0, 1, 3, 2, 0], :]
    segs = list(np.stack([outline[:, :-1], outline[:, 1:]], axis=2).reshape(-1, 2, 2))
    size = (corners.max(axis=1) - corners.min(axis=1)).max(axis=1)
    centres = corners.mean(axis=1)
    refined = centres[size < size.max() * 0.999]
    lo_all, hi_all = corners.reshape(-1, 2).min(axis=0), corners.reshape(-1, 2).max(axis=0)
    span = (hi_all - lo_all).max()
    if len(refined):  # robust zoom on where the mesh was refined: median centre, 90th-percentile spread
        mid = np.median(refined, axis=0)
        half = float(np.quantile(np.abs(refined - mid).max(axis=1), 0.9)) + 2 * size.min()
    else:
        mid, half = 0.5 * (lo_all + hi_all), 0.5 * span
    half = min(max(half, 4 * size.min()), 0.5 * span)
    mid = np.clip(mid, lo_all + half, hi_all - half)
    fig = Figure(figsize=(12.5, 5.6))
    axes = fig.subplots(1, 2)
    for ax, zoom in zip(axes, (False, True)):
        tpc: Any = ax.tripcolor(tri[0], tri[1], shading="gouraud", cmap="viridis")
        ax.add_collection(LineCollection(segs, colors="k", linewidths=0.3 if not zoom else 0.5, alpha=0.7))
        ax.set_aspect("equal")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        if zoom:
            ax.set_xlim(mid[0] - half, mid[0] + half)
            ax.set_ylim(mid[1] - half, mid[1] + half)
            ax.set_title(f"zoom on the refined region (smallest element {size.min():.3g})", fontsize=9)
        else:
            ax.set_title("whole domain", fontsize=9)
    fig.colorbar(tpc, ax=list(axes), label=f"u_h (INR output {cfg.component})", shrink=0.85)
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=10)
    return fig
