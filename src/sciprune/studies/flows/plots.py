"""Plots of the flows study, made from ``metrics.csv`` rows and ``analysis/<task>.npz`` only."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sciprune.files import atomic_write_with  # noqa: E402

COLORS = {"wt": "tab:red", "ft": "tab:green", "id": "tab:blue"}
LABELS = {"wt": "WT (global magnitude)", "ft": "FT (neuron L1, per layer)", "id": "ID (trajectory states)"}


def _save(fig: Any, path: Path) -> Path:
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return path


def ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok"]


def curves(rows: list[dict[str, Any]], task: str, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """method -> (prune ratios, mean, std over networks) of ``metric`` on ``task`` (completed stages)."""
    groups: dict[tuple[str, float], list[float]] = defaultdict(list)
    for r in ok(rows):
        if r["task"] == task and r["method"] != "dense" and r.get(metric) is not None:
            groups[(r["method"], float(r["sparsity"]))].append(float(r[metric]))
    out: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (method, s), vals in sorted(groups.items()):
        out[method].append((s, float(np.mean(vals)), float(np.std(vals))))
    return {m: tuple(np.array(c) for c in zip(*v)) for m, v in out.items()}  # type: ignore[misc]


def dense_stat(rows: list[dict[str, Any]], task: str, metric: str) -> tuple[float, float]:
    vals = [float(r[metric]) for r in ok(rows) if r["task"] == task and r["method"] == "dense" and r.get(metric) is not None]
    return (float(np.mean(vals)), float(np.std(vals))) if vals else (float("nan"), float("nan"))


def plot_metric(rows: list[dict[str, Any]], tasks: list[str], metric: str, ylabel: str, path: Path, *, title: str) -> Path:
    """``metric`` against prune ratio, one panel per task: mean ± std over networks, dense as a band."""
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mean0, std0 = dense_stat(rows, task, metric)
        ax.axhline(mean0, color="k", lw=1, label="dense")
        ax.axhspan(mean0 - std0, mean0 + std0, color="k", alpha=0.1)
        for method, (s, mean, std) in curves(rows, task, metric).items():
            x = 100 * s
            ax.plot(x, mean, "o-", ms=3, color=COLORS.get(method), label=LABELS.get(method, method))
            ax.fill_between(x, mean - std, mean + std, color=COLORS.get(method), alpha=0.2)
        ax.set_title(task)
        ax.set_xlabel("prune ratio (% of the field's weights)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_cost(rows: list[dict[str, Any]], tasks: list[str], path: Path) -> Path:
    """NFE per solve and FLOPs per solve against prune ratio (mean over networks), one panel per task."""
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.8 * len(tasks), 6.4), squeeze=False, sharex=True)
    for j, task in enumerate(tasks):
        for i, (metric, label) in enumerate((("nfe", "NFE per test solve"), ("flops_nfe", "FLOPs per solve per sample"))):
            ax = axes[i][j]
            ax.axhline(dense_stat(rows, task, metric)[0], color="k", lw=1, label="dense")
            for method, (s, mean, _) in curves(rows, task, metric).items():
                ax.plot(100 * s, mean, "o-", ms=3, color=COLORS.get(method), label=LABELS.get(method, method))
            ax.set_ylabel(label)
            if metric == "flops_nfe":
                ax.set_yscale("log")
                ax.set_xlabel("prune ratio (%)")
            else:
                ax.set_title(task)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def _panels(arrays: dict[str, np.ndarray], key: str) -> list[tuple[str, np.ndarray]]:
    """``(label, array)`` for every saved network with ``key``: dense first, then by method and ratio."""
    found = []
    for k, v in arrays.items():
        method, s, name = k.split("|") if k.count("|") == 2 else ("", "", "")
        if name == key:
            found.append(((method != "dense", method, float(s)), f"{method.upper() if method != 'dense' else 'dense'} {100 * float(s):.0f}%", v))
    return [(label, v) for _, label, v in sorted(found, key=lambda t: t[0])]


def plot_grids(arrays: dict[str, np.ndarray], key: str, path: Path, *, title: str, samples: bool = False) -> Path | None:
    """Heat maps of ``key`` (density or class probability) per saved network, samples overlaid on the side."""
    panels = _panels(arrays, "samples" if samples else key)
    if not panels:
        return None
    lim = float(arrays["lim"])
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (label, v) in zip(axes.flat, panels):
        if samples:
            ax.scatter(v[:, 0], v[:, 1], s=1, alpha=0.4, color="tab:purple")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
        elif key == "proba":
            ax.imshow(v, origin="lower", extent=(-lim, lim, -lim, lim), cmap="coolwarm", vmin=0, vmax=1)
            x, y = arrays["x_test"], arrays["y_test"]
            ax.scatter(x[:, 0], x[:, 1], c=y, s=5, cmap="coolwarm", edgecolors="k", linewidths=0.2)
            ax.contour(np.linspace(-lim, lim, v.shape[0]), np.linspace(-lim, lim, v.shape[0]), v, levels=[0.5], colors="k", linewidths=1)
        else:
            ax.imshow(v, origin="lower", extent=(-lim, lim, -lim, lim), cmap="magma")
        ax.set_title(label, fontsize=9)
        ax.set_aspect("equal")
    fig.suptitle(title)
    return _save(fig, path)


def plot_modes(arrays: dict[str, np.ndarray], path: Path, *, title: str) -> Path | None:
    """Share of high-quality samples and modes captured against the distance threshold."""
    share, captured = _panels(arrays, "mode_share"), _panels(arrays, "modes_captured")
    if not share:
        return None
    t = arrays["thresholds"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (label, v), (_, c) in zip(share, captured):
        axes[0].plot(t, 100 * v, "o-", ms=3, label=label)
        axes[1].plot(t, c, "o-", ms=3, label=label)
    axes[0].set_ylabel("high-quality samples (%)")
    axes[1].set_ylabel("modes captured")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("distance threshold (std-dev multiples)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
