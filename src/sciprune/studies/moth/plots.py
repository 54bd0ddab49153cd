"""The ensemble's figures, made from the recorded rows and the saved optimum weights only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sciprune.files import atomic_write_with
from sciprune.studies.moth.analysis import loss_curve, optimum_rows, optimum_weights
from sciprune.studies.moth.data import INPUT_LABELS, INPUTS


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    return path


def _pct(s: float) -> str:
    return f"{100 * s:g}"


def plot_optimal_histogram(rows: list[dict[str, Any]], threshold: float, levels: list[float], path: Path) -> Path:
    best = optimum_rows(rows, threshold)
    counts = [sum(1 for r in best.values() if r is not None and float(r["sparsity"]) == s) for s in levels]
    none = sum(1 for r in best.values() if r is None)
    fig = Figure(figsize=(9, 3.8))
    ax = fig.subplots()
    labels = [_pct(s) for s in levels] + ["none"]
    ax.bar(range(len(labels)), counts + [none], color=["tab:blue"] * len(levels) + ["tab:gray"])
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("optimal sparsity (% of weights removed per layer)")
    ax.set_ylabel("members")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Sparsest capable network of each member (test MSE ≤ {threshold:g}); {len(best)} members")
    return _save(fig, path)


def plot_loss_vs_sparsity(rows: list[dict[str, Any]], threshold: float, path: Path) -> Path:
    curve = loss_curve(rows)
    levels = list(curve)
    x = np.arange(len(levels))

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if curve[s][key] is None else curve[s][key] for s in levels], dtype=float)

    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    ax.fill_between(x, series("min"), series("max"), color="tab:blue", alpha=0.12, label="min–max")
    ax.fill_between(x, series("q25"), series("q75"), color="tab:blue", alpha=0.3, label="25–75 %")
    ax.plot(x, series("median"), "o-", color="tab:blue", label="median")
    ax.axhline(threshold, color="tab:red", ls="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xticks(x, [_pct(s) for s in levels])
    ax.set_xlabel("sparsity (% of weights removed per layer)")
    ax.set_ylabel("test MSE (scaled units)")
    ax.set_title(f"Test loss against sparsity across {len({r['member'] for r in rows})} members")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_layer_density(rows: list[dict[str, Any]], threshold: float, path: Path) -> Path:
    passing = [r for r in optimum_rows(rows, threshold).values() if r is not None]
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    if passing:
        dens = 100 * np.array([[float(v) for v in str(r["layer_density"]).split(";")] for r in passing])
        n = dens.shape[1]
        names = [f"layer {i + 1}" for i in range(n - 1)] + ["output"]
        ax.bar(range(n), dens.mean(axis=0), yerr=dens.std(axis=0), capsize=4, color="tab:green")
        ax.set_xticks(range(n), names)
        ax.set_title(f"Non-zero weights per layer at each member's optimum ({len(passing)} members)")
    else:
        ax.text(0.5, 0.5, f"no member passes the threshold {threshold:g}", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("Non-zero weights per layer at the optimum")
    ax.set_ylabel("non-zero weights (%, mean ± std)")
    return _save(fig, path)


def plot_connectivity(rows: list[dict[str, Any]], threshold: float, path: Path) -> Path:
    passing = [r for r in optimum_rows(rows, threshold).values() if r is not None]
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    if passing:
        c = 100 * np.array([[float(r[f"conn_{n}"]) for n in INPUTS] for r in passing])
        med = np.median(c, axis=0)
        lo, hi = np.quantile(c, 0.25, axis=0), np.quantile(c, 0.75, axis=0)
        ax.bar(range(len(INPUTS)), med, yerr=[med - lo, hi - med], capsize=4, color="tab:purple")
        ax.set_title(f"First-layer connectivity per input at the optimum ({len(passing)} members)")
    else:
        ax.text(0.5, 0.5, f"no member passes the threshold {threshold:g}", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("First-layer connectivity per input at the optimum")
    ax.set_xticks(range(len(INPUTS)), list(INPUT_LABELS))
    ax.set_ylabel("hidden units reached (%, median, IQR)")
    return _save(fig, path)


def plot_weight_histograms(run_dir: Path, path: Path) -> Path | None:
    layers = optimum_weights(run_dir)
    if not layers or not any(len(v) for v in layers):
        return None
    n = len(layers)
    fig = Figure(figsize=(3.0 * n, 3.2))
    axes = np.atleast_1d(fig.subplots(1, n))
    for i, (ax, parts) in enumerate(zip(axes, layers)):
        w = np.concatenate(parts) if parts else np.zeros(0)
        if w.size:
            lim = float(np.quantile(np.abs(w), 0.995)) * 1.1
            ax.hist(w, bins=60, range=(-lim, lim), color="tab:orange")
        ax.set_title(f"{'output' if i == n - 1 else f'layer {i + 1}'} ({w.size} weights)", fontsize=9)
        ax.set_xlabel("weight")
    axes[0].set_ylabel("count (all members)")
    fig.suptitle("Surviving weights at each member's optimum", y=1.04)
    return _save(fig, path)
