"""Plots of ``sciprune prune``, made from the ``metrics.csv`` rows alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sciprune.files import atomic_write_with  # noqa: E402

COLORS = {"weight": "tab:blue", "neuron": "tab:red", "id": "tab:green"}
STYLES = {"weight": "o-", "neuron": "s-", "id": "^--"}  # neuron and ID have equal sizes: both stay visible
LABELS = {"weight": "weight (magnitude)", "neuron": "neuron (L2)", "id": "ID (with correction)"}


def series(rows: list[dict[str, Any]], metric: str) -> dict[str, tuple[list[float], list[float]]]:
    """method -> (sparsities, values) of ``metric``; diverged (``None``) values are left out."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        if r["method"] == "dense" or r.get(metric) is None:
            continue
        xs, ys = out.setdefault(str(r["method"]), ([], []))
        xs.append(float(r["sparsity"]))
        ys.append(float(r[metric]))
    return out


def plot_error(rows: list[dict[str, Any]], path: Path) -> Path:
    """Held-out relative error (left, log scale) and the compacted network's non-zero parameters (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    dense = next((r for r in rows if r["method"] == "dense"), None)
    for i, (metric, label) in enumerate((("rel_error", "held-out relative L2 error"),
                                         ("compact_nnz", "non-zero parameters after compaction"))):
        ax = axes[i]
        for method, (xs, ys) in series(rows, metric).items():
            ax.plot(xs, ys, STYLES.get(method, "o-"), ms=4, color=COLORS.get(method), label=LABELS.get(method, method))
        if dense is not None and dense.get(metric) is not None:
            ax.axhline(float(dense[metric]), color="gray", ls=":", lw=1, label="dense")
        positive = [y for _, ys in series(rows, metric).values() for y in ys if y > 0]
        if metric == "rel_error" and positive:
            ax.set_yscale("log")
        ax.set_xlabel("sparsity (weights for weight; neurons per group for neuron / id)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("sciprune prune: held-out error and size against sparsity")
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path
