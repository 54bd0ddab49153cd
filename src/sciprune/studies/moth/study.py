"""``sciprune moth``: Monte Carlo magnitude pruning of inverse-model controllers for moth flight."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sciprune.htmlreport import table
from sciprune.studies.base import Study
from sciprune.studies.moth.analysis import summarize_rows
from sciprune.studies.moth.cli import commands
from sciprune.studies.moth.config import MothConfig
from sciprune.studies.moth.data import INPUT_LABELS, INPUTS, check_data
from sciprune.studies.moth.plan import plan as cost_plan
from sciprune.studies.moth.plots import (plot_connectivity, plot_layer_density, plot_loss_vs_sparsity,
                                         plot_optimal_histogram, plot_weight_histograms)
from sciprune.studies.moth.protocol import read_data_info, run


def summarize(cfg: MothConfig, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Median optimal sparsity, fraction passing, connectivity and layer density at the optimum, data counts."""
    return {**summarize_rows(rows, cfg.threshold), "data": read_data_info(run_dir)}


def plot(cfg: MothConfig, rows: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    plots = run_dir / "plots"
    levels = [0.0, *cfg.schedule]
    out = [
        plot_loss_vs_sparsity(rows, cfg.threshold, plots / "loss_vs_sparsity.png"),
        plot_optimal_histogram(rows, cfg.threshold, levels, plots / "optimal_sparsity.png"),
        plot_layer_density(rows, cfg.threshold, plots / "layer_density.png"),
        plot_connectivity(rows, cfg.threshold, plots / "input_connectivity.png"),
    ]
    hist = plot_weight_histograms(run_dir, plots / "weight_histograms.png")
    return out + ([hist] if hist else [])


def describe(cfg: MothConfig, rows: list[dict[str, Any]], run_dir: Path) -> str:
    s = summarize(cfg, rows, run_dir)
    d = s["data"]
    sizes = "-".join(map(str, [10, *cfg.model.hidden, 7]))
    lines = [f"<p>{s['members']} networks {sizes} ({cfg.model.activation}), trained on {d.get('train', '?')} "
             f"simulated flights ({d.get('failed_integrations', 0)} integrations did not converge and were left out; "
             f"{d.get('dropped_nan', 0)} rows with NaN dropped), pruned {cfg.prune.allocation} by {html.escape(cfg.prune.criterion)} "
             f"(retrain policy {cfg.prune.retrain}). "
             f"Threshold: test MSE ≤ {cfg.threshold:g} (scaled units).</p>"]
    if s["members_passing"] == 0:
        lines.append(f"<p><b>No member passes the threshold.</b> {html.escape(s.get('note', ''))}</p>")
    else:
        lines.append(f"<p><b>{s['members_passing']} of {s['members']}</b> members pass; median optimal sparsity "
                     f"<b>{100 * s['median_optimal_sparsity']:.0f} %</b>; the median test MSE first exceeds the "
                     f"threshold at {s['first_sparsity_with_median_above_threshold']}.</p>")
        conn = s["connectivity_at_optimum"]
        lines.append(table([{"input": lab, "median connectivity %": round(100 * conn[n]["median"], 2),
                             "max %": round(100 * conn[n]["max"], 2)} for n, lab in zip(INPUTS, INPUT_LABELS)]))
    return "\n".join(lines)


STUDY = Study(name="moth", title="MothPruning: Monte Carlo magnitude pruning of a flight controller",
              config=MothConfig, run=run, summarize=summarize, plot=plot, describe=describe, commands=commands,
              columns={"member": "int", "stage": "int", "test_mse": "number"}, methods=lambda cfg: [cfg.prune.criterion],
              check=check_data,
              plan=cost_plan)
