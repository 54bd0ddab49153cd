"""``sciprune classify``: weight vs unit vs ID pruning curves (the Keras_pruning system, rebuilt)."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from sciprune.files import read_csv
from sciprune.htmlreport import table
from sciprune.studies.base import Study
from sciprune.studies.classify.config import ClassifyConfig
from sciprune.studies.classify.data import load_data
from sciprune.studies.classify.plan import plan as cost_plan
from sciprune.studies.classify.plots import curves, plot_curves, plot_heatmaps
from sciprune.studies.classify.protocol import run


def summarize(cfg: ClassifyConfig, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Per method and variant: mean accuracy at each sparsity, and the largest sparsity whose mean
    accuracy is within 1 point of the dense networks' mean."""
    dense = [r["accuracy"] for r in rows if r["method"] == "dense" and r.get("accuracy") is not None]
    dense_acc = float(np.mean(dense)) if dense else float("nan")
    methods: dict[str, Any] = defaultdict(dict)
    for (method, variant), (s, mean, std) in curves(rows, "accuracy").items():
        within = [float(si) for si, m in zip(s, mean) if m >= dense_acc - 1.0]
        methods[method][variant] = {
            "accuracy_mean": {f"{si:g}": round(float(m), 4) for si, m in zip(s, mean)},
            "accuracy_std": {f"{si:g}": round(float(d), 4) for si, d in zip(s, std)},
            "max_sparsity_within_1pt": max(within) if within and dense else None,
        }
    return {"dataset": cfg.data.name, "seeds": cfg.repeats, "dense_accuracy": round(dense_acc, 4),
            "methods": dict(methods)}


def plot(cfg: ClassifyConfig, rows: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    plots = run_dir / "plots"
    out = [plot_curves(rows, plots / "accuracy_loss_vs_sparsity.png", seeds=cfg.repeats, dataset=cfg.data.name)]
    heat = plot_heatmaps(run_dir, list(cfg.prune.methods), plots / "weights_heatmap.png", sparsity=cfg.prune.heatmap_sparsity)
    return out + ([heat] if heat else [])


def describe(cfg: ClassifyConfig, rows: list[dict[str, Any]], run_dir: Path) -> str:
    """The headline: dense accuracy, then mean accuracy per method and variant at every sparsity."""
    s = summarize(cfg, rows, run_dir)
    sparsities = [f"{x:g}" for x in cfg.prune.sparsities]
    table_rows = []
    for method, variants in s["methods"].items():
        for variant, v in variants.items():
            cells = {k: f"{v['accuracy_mean'][k]:.1f} ± {v['accuracy_std'][k]:.1f}" for k in sparsities if k in v["accuracy_mean"]}
            table_rows.append({"method": method, "variant": variant, **cells,
                               "largest k within 1 pt": v["max_sparsity_within_1pt"]})
    lines = [f"<p>MLP {html.escape(str([*cfg.model.hidden]))} on <b>{cfg.data.name}</b>, {cfg.repeats} seeds; "
             f"dense test accuracy {s['dense_accuracy']:.2f} %. Test accuracy (%, mean ± std over seeds) "
             "against sparsity k:</p>", table(table_rows)]
    timing = run_dir / "timing.csv"
    if timing.exists():
        lines.append("<h3>Compacted networks: measured inference time (timing.csv)</h3>" + table(read_csv(timing)))
    return "\n".join(lines)


def check(cfg: ClassifyConfig) -> None:
    """The IDX files (MNIST / Fashion-MNIST), read and checked before the results folder is touched."""
    if cfg.data.name != "digits":
        load_data(cfg.data.name, data_dir=cfg.data.data_dir, seed=cfg.seed, test_fraction=cfg.data.test_fraction,
                  limit_train=cfg.data.limit_train)


STUDY = Study(name="classify", title="Classification: weight vs unit vs ID pruning", config=ClassifyConfig,
              run=run, summarize=summarize, plot=plot, describe=describe, check=check,
              columns={"variant": "text", "stage": "int", "accuracy": "number"},
              methods=lambda cfg: ["dense", *cfg.prune.methods],
              plan=cost_plan)
