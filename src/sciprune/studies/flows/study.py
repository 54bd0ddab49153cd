"""``sciprune flows``: Sparse flows (WT / FT / ID pruning of neural ODEs and CNFs), rebuilt."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from sciprune.files import atomic_write_with, read_csv
from sciprune.htmlreport import table
from sciprune.studies.base import Study
from sciprune.studies.flows.analysis import read_analysis
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.plots import curves, dense_stat, plot_cost, plot_grids, plot_metric, plot_modes
from sciprune.studies.flows.protocol import run
from sciprune.studies.flows.tasks import Task, tasks

NLL_MARGIN = 0.02  # nats: the goal "no worse than dense + 0.02"
ACC_MARGIN = 1.0   # points: the goal "within 1 point of dense"


def _num(x: float) -> float | None:
    return round(float(x), 5) if np.isfinite(x) else None


def _task_summary(cfg: FlowsConfig, rows: list[dict[str, Any]], task: Task, run_dir: Path) -> dict[str, Any]:
    metric, better_low = ("nll", True) if task.kind == "density" else ("accuracy", False)
    mean0, std0 = dense_stat(rows, task.name, metric)
    out: dict[str, Any] = {"metric": metric, "dense_mean": _num(mean0), "dense_std": _num(std0), "methods": {}}
    for method, (s, mean, std) in curves(rows, task.name, metric).items():
        within = [float(si) for si, m in zip(s, mean)
                  if (m <= mean0 + NLL_MARGIN if better_low else m >= mean0 - ACC_MARGIN)]
        best = int(np.argmin(mean) if better_low else np.argmax(mean))
        out["methods"][method] = {
            "largest_ratio_within_goal": max(within) if within else None,
            "best_ratio": float(s[best]), "best_mean": _num(mean[best]),
            "mean": {f"{si:g}": _num(m) for si, m in zip(s, mean)},
            "std": {f"{si:g}": _num(d) for si, d in zip(s, std)},
        }
    bad = [r for r in rows if r["task"] == task.name and r.get("status") not in ("ok", None)]
    out["failed_stages"] = [{k: r.get(k) for k in ("method", "seed", "stage", "sparsity", "status", "failed_nfe")} for r in bad]
    arrays = read_analysis(run_dir, task)
    extra: dict[str, dict[str, Any]] = {}
    for key, arr in arrays.items():
        if key.endswith("|hessian"):
            extra.setdefault("hessian", {})[key.rsplit("|", 1)[0]] = {"lambda_max": _num(arr[0]), "trace": _num(arr[1])}
        if key.endswith("|modes_captured"):
            i = list(arrays["thresholds"]).index(2.0) if 2.0 in list(arrays["thresholds"]) else 0
            share = arrays[key.replace("modes_captured", "mode_share")]
            extra.setdefault("modes_at_2std", {})[key.rsplit("|", 1)[0]] = {
                "modes_captured": int(arr[i]), "high_quality_pct": _num(100 * share[i])}
    out.update(extra)
    return out


def summarize(cfg: FlowsConfig, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Per task: dense mean, per-method curves (mean / std over networks), the largest prune ratio
    meeting the goal (mean NLL <= dense + 0.02 nats, or accuracy >= dense - 1 point), failures,
    Hessian and mode statistics of the analysed networks."""
    return {"nets": cfg.nets, "tasks": {t.key: _task_summary(cfg, rows, t, run_dir) for t in tasks(cfg)}}


def write_results(cfg: FlowsConfig, rows: list[dict[str, Any]], path: Path) -> Path:
    """``results.npz``: per task, ``loss``, ``metric``, ``size``, ``flops``, ``nfe`` of shape
    ``[nets, ratios, reps, methods]`` (the reference's layout; NaN where a stage failed). ``loss``
    is the test NLL per Hutchinson repetition (densities) or the cross-entropy (classifiers);
    ``metric`` is -NLL or accuracy; ``size`` and ``flops`` are relative to the dense network."""
    methods = list(cfg.prune.methods)
    ratios = list(cfg.prune.sparsities)
    seeds = [cfg.seed + n for n in range(cfg.nets)]
    arrays: dict[str, np.ndarray] = {"ratios": np.array(ratios), "methods": np.array(methods), "seeds": np.array(seeds)}
    for task in tasks(cfg):
        reps = cfg.densities.nll_reps if task.kind == "density" else 1
        shape = (len(seeds), len(ratios), reps, len(methods))
        a = {k: np.full(shape, np.nan) for k in ("loss", "metric", "size", "flops", "nfe")}
        dense = {r["seed"]: r for r in rows if r["task"] == task.name and r["method"] == "dense" and r.get("status") == "ok"}
        for r in rows:
            if r["task"] != task.name or r["method"] not in methods or r.get("status") != "ok" or r["seed"] not in dense:
                continue
            idx = (seeds.index(r["seed"]), int(r["stage"]), slice(None), methods.index(r["method"]))
            d = dense[r["seed"]]
            if task.kind == "density":
                vals = np.array([float(v) for v in str(r["nll_reps"]).split(";")])
                a["loss"][idx], a["metric"][idx] = vals, -vals
            else:
                a["loss"][idx], a["metric"][idx] = r["loss"], r["accuracy"]
            a["size"][idx] = r["params_nnz"] / d["params_nnz"]
            a["flops"][idx] = r["flops"] / d["flops"]
            a["nfe"][idx] = r["nfe"]
        arrays.update({f"{task.key}/{k}": v for k, v in a.items()})
    atomic_write_with(path, lambda tmp: _savez(tmp, arrays))
    return path


def _savez(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def plot(cfg: FlowsConfig, rows: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    plots = run_dir / "plots"
    write_results(cfg, rows, run_dir / "results.npz")
    out: list[Path] = []
    dens = [t for t in tasks(cfg) if t.kind == "density"]
    clas = [t for t in tasks(cfg) if t.kind == "classifier"]
    if dens:
        names = [t.name for t in dens]
        out.append(plot_metric(rows, names, "nll", "test NLL (nats)", plots / "nll_vs_ratio.png",
                               title=f"CNF test NLL vs prune ratio (mean ± std over {cfg.nets} nets)"))
        out.append(plot_cost(rows, names, plots / "cnf_cost_vs_ratio.png"))
    if clas:
        names = [t.name for t in clas]
        out.append(plot_metric(rows, names, "accuracy", "test accuracy (%)", plots / "accuracy_vs_ratio.png",
                               title=f"Neural ODE classifiers: accuracy vs prune ratio (mean ± std over {cfg.nets} nets)"))
        out.append(plot_cost(rows, names, plots / "node_cost_vs_ratio.png"))
    for t in dens + clas:
        arrays = read_analysis(run_dir, t)
        if not arrays:
            continue
        if t.kind == "density":
            made = [plot_grids(arrays, "density", plots / f"{t.name}_density.png", title=f"{t.name}: model density p(x)"),
                    plot_grids(arrays, "density", plots / f"{t.name}_samples.png", title=f"{t.name}: samples", samples=True),
                    plot_modes(arrays, plots / f"{t.name}_modes.png", title=f"{t.name}: mode statistics")]
        else:
            made = [plot_grids(arrays, "proba", plots / f"{t.name}_boundary.png", title=f"{t.name}: decision boundary (P(class 1))")]
        out.extend(p for p in made if p is not None)
    return out


def describe(cfg: FlowsConfig, rows: list[dict[str, Any]], run_dir: Path) -> str:
    """Headline table per task and method, failures, Hessian / modes, and timing.csv."""
    s = summarize(cfg, rows, run_dir)
    lines = [f"<p>{cfg.nets} independently trained networks per data set; cascade over {len(cfg.prune.sparsities)} "
             "prune ratios with learning-rate rewinding. Goal: the largest prune ratio whose mean is within "
             f"{NLL_MARGIN} nats (NLL) or {ACC_MARGIN} point (accuracy) of the dense mean.</p>"]
    table_rows = []
    for key, t in s["tasks"].items():
        for method, m in t["methods"].items():
            table_rows.append({"task": key, "metric": t["metric"], "dense": t["dense_mean"], "method": method,
                               "largest ratio within goal": m["largest_ratio_within_goal"],
                               "best ratio": m["best_ratio"], "best mean": m["best_mean"]})
    lines.append(table(table_rows))
    for key, t in s["tasks"].items():
        if t.get("hessian"):
            lines.append(f"<h3>{html.escape(key)}: Hessian of the training NLL (unpruned parameters)</h3>")
            lines.append(table([{"network": k, **v} for k, v in t["hessian"].items()]))
        if t.get("modes_at_2std"):
            lines.append(f"<h3>{html.escape(key)}: modes within 2 std-devs</h3>")
            lines.append(table([{"network": k, **v} for k, v in t["modes_at_2std"].items()]))
        if t["failed_stages"]:
            lines.append(f"<h3>{html.escape(key)}: failed or diverged stages</h3>" + table(t["failed_stages"]))
    timing = run_dir / "timing.csv"
    if timing.exists():
        lines.append("<h3>Measured time per solve (timing.csv: one thread on the CPU, see its device column; shared machine)</h3>" + table(read_csv(timing)))
    return "\n".join(lines)


STUDY = Study(name="flows", title="Sparse flows: pruning neural ODEs and continuous normalizing flows",
              config=FlowsConfig, run=run, summarize=summarize, plot=plot, describe=describe)
