"""``sciprune prune``: prune your own PyTorch network on your own samples (weight, neuron or ID).

The network comes from your factory (``--model pkg.module:function``: **imported and run**),
optionally loaded with ``--weights``; its pruning units come from its traced graph
(:class:`sciprune.core.Traced`). Samples come from an ``.npz`` (:mod:`.samples`). The results folder
holds ``metrics.csv`` (held-out error against sparsity per method), ``report.html``, ``timing.csv``
(inference speed of the compacted networks) and ``checkpoints/compact/*.safetensors`` (each stage's
compacted network; ``sciprune.core.load_model`` rebuilds it through your factory).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sciprune.files import read_csv
from sciprune.htmlreport import table
from sciprune.studies.base import Study
from sciprune.studies.prune.config import PruneStudyConfig
from sciprune.studies.prune.plots import plot_error, series
from sciprune.studies.prune.protocol import check, run


def summarize(cfg: PruneStudyConfig, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Dense error and, per method, the error and compacted parameters at each sparsity."""
    dense = next((r for r in rows if r["method"] == "dense"), {})
    methods: dict[str, Any] = {}
    errors, params = series(rows, "rel_error"), series(rows, "compact_params")
    for method, (xs, ys) in errors.items():
        px = dict(zip(*params.get(method, ([], []))))
        methods[method] = {f"{x:g}": {"rel_error": y, "compact_params": px.get(x)} for x, y in zip(xs, ys)}
    return {"model": cfg.model, "data": cfg.data, "dense_rel_error": dense.get("rel_error"),
            "dense_params": dense.get("params_total"), "methods": methods}


def plot(cfg: PruneStudyConfig, rows: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    return [plot_error(rows, run_dir / "plots" / "error_vs_sparsity.png")]


def describe(cfg: PruneStudyConfig, rows: list[dict[str, Any]], run_dir: Path) -> str:
    """The table of error, parameters and FLOPs per method and sparsity; the measured speed."""
    keys = ("method", "sparsity", "rel_error", "mse", "compact_params", "compact_nnz", "compact_flops", "compact_rel_diff")
    shown = [{k: r.get(k) for k in keys} for r in rows]
    lines = [f"<p>Network <code>{html.escape(cfg.model)}</code> on "
             f"<code>{html.escape(cfg.data or 'the example samples')}</code>: held-out relative L2 error, "
             "parameters and FLOPs of the compacted network (one forward, one sample), and the largest relative "
             "difference between compacted and masked outputs.</p>", table(shown)]
    timing = run_dir / "timing.csv"
    if timing.exists():
        lines.append("<h3>Compacted networks: measured inference time (timing.csv, one thread)</h3>" + table(read_csv(timing)))
    return "\n".join(lines)


STUDY = Study(name="prune", title="Prune your own network", config=PruneStudyConfig, run=run,
              summarize=summarize, plot=plot, describe=describe, check=check, scheduler=False, workers=False)
