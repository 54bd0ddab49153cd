"""Plots of the nif study, made from ``metrics.csv`` rows and the saved fields (``fields/*.npy``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sciprune.errors import InputError  # noqa: E402
from sciprune.files import atomic_write_with, read_result_array  # noqa: E402

COLORS = {"l2": "tab:red", "id": "tab:green", "nif": "black", "pod": "tab:blue"}
LABELS = {"l2": "pNIF-L2 (node norm)", "id": "pNIF-ID (interpolative decomposition)", "nif": "NIF (dense)", "pod": "POD / truncated SVD"}
OTHER = ("tab:purple", "tab:orange", "tab:brown", "tab:olive", "tab:cyan")


def pruned_methods(rows: list[dict[str, Any]]) -> list[str]:
    """The pruning methods in ``rows`` (every method but the dense ``nif`` and ``pod``), first-seen order."""
    return list(dict.fromkeys(str(r["method"]) for r in rows if r["method"] not in ("nif", "pod")))


def _color(method: str, rows: list[dict[str, Any]]) -> str:
    extra = [m for m in pruned_methods(rows) if m not in COLORS]
    return COLORS.get(method) or OTHER[extra.index(method) % len(OTHER)]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def error_vs_sparsity(rows: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    dense = [_f(r["rel_l2"]) for r in rows if r["method"] == "nif" and r["variant"] == "dense"]
    control = {int(r["stage"]): _f(r["rel_l2"]) for r in rows if r["method"] == "nif" and r["variant"] == "same_epochs"}
    stage_sp = {int(r["stage"]): _f(r["sparsity"]) for r in rows if r["method"] not in ("nif", "pod") and r["variant"] == "retrained"}
    if control and stage_sp:
        ks = sorted(k for k in control if k in stage_sp)
        ax.plot([stage_sp[k] for k in ks], [control[k] for k in ks], ":", marker="s", ms=3, color="gray",
                label="dense NIF retrained as long as that stage (nothing removed)")
    for method in pruned_methods(rows):
        for variant, style in (("oneshot", "--"), ("retrained", "-")):
            rs = [r for r in rows if r["method"] == method and r["variant"] == variant]
            if rs:
                ax.plot([_f(r["sparsity"]) for r in rs], [_f(r["rel_l2"]) for r in rs], style, marker="o", ms=4,
                        color=_color(method, rows), label=f"{LABELS.get(method, method)}, {variant}")
    if dense:
        ax.axhline(dense[0], color="black", lw=1, label="dense NIF")
        ax.axhline(1.1 * dense[0], color="black", lw=1, ls=":", label="1.1 × dense")
    ax.set_yscale("log")
    ax.set_xlabel("fraction of ShapeNet hidden nodes removed")
    ax.set_ylabel("relative L2 error (evaluation rows)")
    ax.set_title("Error against node sparsity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)  # below: the curves stay visible
    fig.subplots_adjust(bottom=0.33)
    return _save(fig, path)


def error_vs_storage(rows: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    pod = [r for r in rows if r["method"] == "pod"]
    pod = [r for r in pod if _f(r["rel_l2"]) > 0]  # a full-rank SVD is exact: no point on a log axis
    if pod:
        ax.plot([_f(r["compression"]) * 100 for r in pod], [_f(r["rel_l2"]) for r in pod], "-", marker=".",
                color=COLORS["pod"], label=LABELS["pod"] + " (rank 1, 2, …)")
    for method in pruned_methods(rows):
        rs = [r for r in rows if r["method"] == method and r["variant"] == "retrained"] or \
             [r for r in rows if r["method"] == method]
        if rs:
            ax.plot([_f(r["compression"]) * 100 for r in rs], [_f(r["rel_l2"]) for r in rs], "o-", ms=4,
                    color=_color(method, rows), label=f"{LABELS.get(method, method)}, {rs[0]['variant']}")
    for r in rows:
        if r["method"] == "nif" and r["variant"] == "dense":
            ax.plot([_f(r["compression"]) * 100], [_f(r["rel_l2"])], "k*", ms=12, label=LABELS["nif"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stored numbers, % of the data array")
    ax.set_ylabel("relative L2 error (NIF: evaluation rows; POD: all)")
    ax.set_title("Error against storage (compacted models)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def pick_pruned(rows: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    """The stage of ``method`` with the most nodes removed whose error is at most 1.1 × dense (else the sparsest)."""
    dense = [_f(r["rel_l2"]) for r in rows if r["method"] == "nif" and r["variant"] == "dense"]
    rs = [r for r in rows if r["method"] == method and r["variant"] == "retrained"] or [r for r in rows if r["method"] == method]
    if not rs:
        return None
    ok = [r for r in rs if dense and _f(r["rel_l2"]) <= 1.1 * dense[0]]
    return (ok or rs)[-1] if ok else rs[len(rs) // 2]


def _field(path: Path, grid: tuple[int, ...]) -> np.ndarray | None:
    """A saved field ``[points, components]`` on ``grid`` (``None`` with a report note when missing)."""
    u = read_result_array(path, "NIF field")
    if u is not None and (u.ndim != 2 or u.shape[0] != math.prod(grid) or u.shape[1] < 1):
        raise InputError(f"NIF field {str(path)!r} is damaged (shape {tuple(u.shape)}); expected ({math.prod(grid)}, k) "
                         "values on the grid of fields/meta.json: re-run into a new --out")
    return u


def _panel(u: np.ndarray, grid: tuple[int, ...], comp: int) -> np.ndarray:
    """The 2-D image of component ``comp``: x-p for a 1-D x; else the last snapshot (middle of any further x axes)."""
    f = u[:, comp].reshape(grid)
    if len(grid) == 2:
        return f
    snap = f[-1]
    while snap.ndim > 2:
        snap = snap[..., snap.shape[-1] // 2]
    return snap.T  # imshow: rows = second x coordinate


def reconstructions(rows: list[dict[str, Any]], run_dir: Path, grid: tuple[int, ...], extent: dict[str, Any], path: Path) -> Path | None:
    """Truth, dense and the L2-/ID-pruned stage :func:`pick_pruned` chooses, one row of panels per component (at most 3)."""
    fields = run_dir / "fields"
    truth = _field(fields / "truth.npy", grid)
    if truth is None:
        return None
    panels = [("truth", truth)]
    dense = _field(fields / "dense.npy", grid)
    if dense is not None:
        panels.append(("dense NIF", dense))
    for method in pruned_methods(rows)[:3]:
        r = pick_pruned(rows, method)
        if r is not None:
            u = _field(fields / f"{method}-{r['variant']}_s{_f(r['sparsity']):.2f}.npy", grid)
            if u is not None:
                panels.append((f"{method.upper()} {r['variant']}, {_f(r['sparsity']):.0%} nodes removed\nrel. L2 {_f(r['rel_l2']):.3g}", u))
    n_u = min(3, panels[0][1].shape[1])
    names = (extent.get("columns") or [])[-panels[0][1].shape[1]:] or [f"u{j}" for j in range(n_u)]
    axes_lv = extent.get("axes")
    if len(grid) == 2:
        box = None
    elif axes_lv:
        box = (axes_lv[0][0], axes_lv[0][-1], axes_lv[1][0], axes_lv[1][-1])
    else:
        box = (0, 2 * np.pi, 0, 2 * np.pi)
    fig, axes = plt.subplots(n_u, len(panels), figsize=(3.4 * len(panels), 3.0 * n_u), squeeze=False)
    for c in range(n_u):
        vmax = float(np.nanmax(np.abs(panels[0][1][:, c])))
        for i, (title, u) in enumerate(panels):
            ax = axes[c, i]
            img = _panel(u, grid, c)
            if box is None:
                im = ax.imshow(img, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
                ax.set_xlabel("x (grid index)")
                if i == 0:
                    ax.set_ylabel(f"{names[c]}: snapshot (p)")
            else:
                im = ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=box)
                ax.set_xlabel("x")
                if i == 0:
                    ax.set_ylabel(f"{names[c]}: y (last snapshot)")
            if c == 0:
                ax.set_title(title, fontsize=8)
        fig.colorbar(im, ax=axes[c].tolist(), shrink=0.8, label=names[c])
    return _save(fig, path)
