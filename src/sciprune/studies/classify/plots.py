"""Plots of the classify study, made from ``metrics.csv`` rows (and the saved heat-map networks)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sciprune.core import load_model
from sciprune.errors import InputError  # noqa: E402
from sciprune.nn.mlp import MLP  # noqa: E402
from sciprune.files import atomic_write_with  # noqa: E402

COLORS = {"weight": "tab:blue", "unit": "tab:red", "id": "tab:green"}
LABELS = {"weight": "weight (magnitude)", "unit": "unit (neuron L2)", "id": "ID (interpolative decomposition)"}


def _x(s: np.ndarray) -> np.ndarray:
    """Sparsity on a ``-log10(1 - s)`` axis, so 0.9, 0.95, 0.97, 0.99 are spread apart."""
    return -np.log10(1.0 - np.asarray(s, dtype=float))


def curves(rows: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(method, variant) -> (sparsities, mean, std over seeds) of ``metric``."""
    groups: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for r in rows:
        if r["method"] != "dense" and r.get(metric) is not None:
            groups[(r["method"], r["variant"], float(r["sparsity"]))].append(float(r[metric]))
    out: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for (method, variant, s), vals in sorted(groups.items()):
        out[(method, variant)].append((s, float(np.mean(vals)), float(np.std(vals))))
    return {k: tuple(np.array(c) for c in zip(*v)) for k, v in out.items()}  # type: ignore[misc]


def _save(fig: Any, path: Path) -> Path:
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def plot_curves(rows: list[dict[str, Any]], path: Path, *, seeds: int, dataset: str) -> Path:
    """Accuracy (top) and test loss (bottom) against sparsity, one column per variant; mean ± 1 std."""
    acc, loss = curves(rows, "accuracy"), curves(rows, "loss")
    variants = [v for v in ("oneshot", "retrained") if any(k[1] == v for k in acc)] or ["oneshot"]  # none: all diverged
    fig, axes = plt.subplots(2, len(variants), figsize=(6.2 * len(variants), 8), squeeze=False, sharex=True)
    dense = [r["accuracy"] for r in rows if r["method"] == "dense" and r.get("accuracy") is not None]
    dense_acc = float(np.mean(dense)) if dense else None  # None: every dense run diverged
    for j, variant in enumerate(variants):
        for i, (data, name) in enumerate(((acc, "test accuracy (%)"), (loss, "test loss (cross-entropy)"))):
            ax = axes[i][j]
            for (method, v), (s, mean, std) in data.items():
                if v != variant:
                    continue
                x = _x(s)
                ax.plot(x, mean, "o-", color=COLORS.get(method), label=LABELS.get(method, method), ms=4)
                ax.fill_between(x, mean - std, mean + std, color=COLORS.get(method), alpha=0.2)
            if i == 0:
                if dense_acc is not None:
                    ax.axhline(dense_acc, color="gray", ls=":", lw=1, label=f"dense ({dense_acc:.1f} %)")
                    ax.axhline(dense_acc - 1, color="gray", ls="--", lw=0.8, label="dense − 1 point")
                ax.set_title(f"{variant}: {'no retraining' if variant == 'oneshot' else 'pruned, then retrained'}")
                ax.set_ylim(0, 101)
                ax.legend(loc="lower left", fontsize=8)
            else:
                ax.set_yscale("log")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ticks = sorted({float(r["sparsity"]) for r in rows if r["method"] != "dense"})
            ax.set_xticks(_x(np.array(ticks)))
            ax.set_xticklabels([f"{t:g}" for t in ticks], rotation=45)
            if i == 1:
                ax.set_xlabel("sparsity (fraction of hidden weights / neurons removed)")
    fig.suptitle(f"{dataset}: accuracy and loss against sparsity (mean ± std over {seeds} seeds)")
    return _save(fig, path)


def plot_heatmaps(run_dir: Path, methods: list[str], path: Path, *, sparsity: float) -> Path | None:
    """|W| of every layer of the first seed's pruned networks at ``sparsity``; zeros are white."""
    nets = []
    for method in methods:
        ckpt = run_dir / "checkpoints" / f"heatmap-{method}.safetensors"
        if ckpt.exists():
            net = load_model(ckpt)
            if not isinstance(net, MLP):
                raise InputError(f"heat-map checkpoint {str(ckpt)!r} holds a {type(net).__name__}; expected the MLP sciprune "
                                 "saved there: delete it and make the report again, or re-run into a new --out")
            nets.append((method, net))
    if not nets:
        return None
    n_layers = max(len(net.linears) for _, net in nets)
    fig, axes = plt.subplots(len(nets), n_layers, figsize=(3.3 * n_layers, 3.4 * len(nets)), squeeze=False,
                             layout="constrained")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    for i, (method, net) in enumerate(nets):
        for j in range(n_layers):
            ax = axes[i][j]
            if j >= len(net.linears):
                ax.axis("off")
                continue
            w = net.linears[j].weight.detach().abs().numpy()
            zeros = float((w == 0).mean())
            im = ax.imshow(np.ma.masked_equal(w, 0.0), aspect="auto", cmap=cmap, interpolation="nearest")
            ax.set_title(f"{method}: layer {j} {w.shape[0]}×{w.shape[1]}\n{zeros:.0%} zero", fontsize=9)
            ax.set_xlabel("input", fontsize=8)
            ax.set_ylabel("neuron", fontsize=8)
            ax.tick_params(labelsize=7)
            fig.colorbar(im, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    fig.suptitle(f"|weights| at sparsity {sparsity:g} (first seed, one-shot; white = pruned; ID nets are smaller)")
    return _save(fig, path)
