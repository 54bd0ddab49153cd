"""``sciprune nif``: Neural Implicit Flow with nodal pruning (pNIF), ID node selection, compaction and POD."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from sciprune.errors import InputError
from sciprune.files import read_csv, read_result_json
from sciprune.htmlreport import table
from sciprune.studies.base import Study
from sciprune.studies.nif.config import NifConfig
from sciprune.studies.nif.plan import plan as cost_plan
from sciprune.studies.nif.plots import error_vs_sparsity, error_vs_storage, pruned_methods, reconstructions
from sciprune.studies.nif.inputs import check
from sciprune.studies.nif.protocol import run


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def summarize(cfg: NifConfig, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """Dense error; per method / variant the largest node sparsity within 1.1 × dense; storage vs POD."""
    dense = next((r for r in rows if r["method"] == "nif" and r["variant"] == "dense"), None)
    control = {int(r["stage"]): _num(r["rel_l2"]) for r in rows if r["method"] == "nif" and r["variant"] == "same_epochs"}
    d_err = _num(dense["rel_l2"]) if dense else None
    pod = [r for r in rows if r["method"] == "pod"]
    meta = _meta(run_dir)
    out: dict[str, Any] = {"data": cfg.data.kind, "family": cfg.model.family,
                           "source": meta.get("source"), "rows": meta.get("rows"), "grid": meta.get("grid"),
                           "not_grid": meta.get("not_grid"), "held_out": meta.get("held_out"), "split": meta.get("split"),
                           "threads": meta.get("threads"), "warnings": meta.get("warnings", []),
                           "dense": {"rel_l2": d_err, "train_rel_l2": _num(dense.get("train_rel_l2")) if dense else None,
                                     "params": dense["params_total"] if dense else None,
                                     "compression": _num(dense["compression"]) if dense else None},
                           "methods": {}}
    for r in rows:
        if r["method"] in ("nif", "pod"):
            continue
        m = out["methods"].setdefault(f"{r['method']}-{r['variant']}", {"stages": [], "max_sparsity_within_1.1x": None,
                                                                        "max_sparsity_within_1.1x_same_epochs": None})
        err = _num(r["rel_l2"])
        stored = int(r["params_total"])
        fit = [p for p in pod if int(p["params_total"]) <= stored]
        m["stages"].append({"sparsity": _num(r["sparsity"]), "rel_l2": err, "train_rel_l2": _num(r.get("train_rel_l2")),
                            "params": stored, "compression": _num(r["compression"]),
                            "pod_rel_l2_same_storage": _num(fit[-1]["rel_l2"]) if fit else None,
                            "pod_rank_same_storage": fit[-1]["pod_rank"] if fit else None})
        if err is not None and d_err is not None and err <= 1.1 * d_err:
            m["max_sparsity_within_1.1x"] = _num(r["sparsity"])
        c = control.get(int(r["stage"])) if r["variant"] == "retrained" else None
        if c is not None:
            m["stages"][-1]["dense_same_epochs_rel_l2"] = c
            if err is not None and err <= 1.1 * c:
                m["max_sparsity_within_1.1x_same_epochs"] = _num(r["sparsity"])
    best = [s for m in out["methods"].values() for s in m["stages"] if s["compression"] is not None and s["compression"] <= 0.03
            and s["rel_l2"] is not None]
    out["best_at_3pct"] = min(best, key=lambda s: s["rel_l2"]) if best else None
    return out


def _meta(run_dir: Path) -> dict[str, Any]:
    """``fields/meta.json`` (grid and extent of the saved fields); ``{}`` with a report note when missing."""
    meta = read_result_json(run_dir / "fields" / "meta.json", "NIF field metadata")
    if meta is None:
        return {}
    grid = meta.get("grid")
    if grid is not None and not (isinstance(grid, list) and 1 <= len(grid) <= 3
                                 and all(isinstance(g, int) and not isinstance(g, bool) and 0 < g <= 1 << 31 for g in grid)):
        raise InputError(f"NIF field metadata {str(run_dir / 'fields' / 'meta.json')!r} is damaged (grid {grid!r}); expected "
                         "a list of 1 to 3 positive integers written by sciprune: re-run into a new --out")
    return meta


def plot(cfg: NifConfig, rows: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    plots = run_dir / "plots"
    out = []
    if pruned_methods(rows):
        out.append(error_vs_sparsity(rows, plots / "error_vs_sparsity.png"))
    out.append(error_vs_storage(rows, plots / "error_vs_storage.png"))
    meta = _meta(run_dir)
    if meta.get("grid"):
        rec = reconstructions(rows, run_dir, tuple(meta["grid"]), meta, plots / "reconstructions.png")
        if rec:
            out.append(rec)
    return out


def _data_line(cfg: NifConfig, s: dict[str, Any]) -> str:
    """What the data is: name, rows and columns, grid (or why not), what is held out."""
    meta = s
    name = f"file <b>{html.escape(str(meta['source']))}</b>" if cfg.data.kind == "file" else f"<b>{cfg.data.kind}</b>"
    dims = f"{meta['rows']:,} rows" if meta.get("rows") else ""
    grid = meta.get("grid")
    where = (f"a grid of {grid[0]} snapshots × {' × '.join(map(str, grid[1:]))} points" if grid else
             f"not a grid ({html.escape(str(meta.get('not_grid')))})" if meta.get("not_grid") else "")
    held = (f"errors on held-out {'rows' if meta.get('split') == 'rows' else 'snapshots (' + str(meta.get('split')) + ')'}; "
            "training-row errors beside them" if meta.get("held_out") else
            "nothing held out: every error is on the training rows")
    return f"<p>Data: {name}, {', '.join(x for x in (dims, where) if x)}; {held}. Torch threads: {meta.get('threads')}.</p>"


def _pod_line(cfg: NifConfig, s: dict[str, Any]) -> str:
    if not cfg.pod:
        return "<p>POD baseline: off (pod: false).</p>"
    if not s.get("grid"):
        return ("<p><b>No POD baseline: POD needs a grid</b> (p snapshots × one tensor-product x grid); "
                f"these rows are not one: {html.escape(str(s.get('not_grid') or 'scattered'))}.</p>")
    return ("<p>POD baseline: truncated SVD of the snapshot matrix at every rank (its error is a reconstruction "
            "error over all rows), compared at equal stored numbers.</p>")


def describe(cfg: NifConfig, rows: list[dict[str, Any]], run_dir: Path) -> str:
    s = summarize(cfg, rows, run_dir)
    d = s["dense"]
    train = f", training rows {d['train_rel_l2']:.4g}" if s.get("held_out") and d.get("train_rel_l2") is not None else ""
    lines = [_data_line(cfg, s),
             f"<p>{cfg.model.family}: dense relative L2 error {d['rel_l2']}{train}; "
             f"{d['params']} parameters ({100 * (d['compression'] or 0):.2f} % of the data array).</p>"]
    lines += [f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in s.get("warnings", [])]
    lines.append(_pod_line(cfg, s))
    trows = [{"method": k, "largest node sparsity within 1.1 × dense": v["max_sparsity_within_1.1x"],
              "within 1.1 × a dense NIF trained as long": v["max_sparsity_within_1.1x_same_epochs"]}
             for k, v in s["methods"].items()]
    if trows:
        lines.append(table(trows))
    stages = [{"method": k, "nodes removed": st["sparsity"], "error": st["rel_l2"], "training-row error": st["train_rel_l2"],
               "stored numbers": st["params"], "POD error at ≤ that storage": st["pod_rel_l2_same_storage"],
               "POD rank": st["pod_rank_same_storage"]}
              for k, v in s["methods"].items() if not k.endswith("oneshot") or len(s["methods"]) <= 2 for st in v["stages"]]
    if stages:
        lines.append("<h3>Stages: error, storage, POD at equal storage</h3>" + table(stages))
    timing = run_dir / "timing.csv"
    if timing.exists():
        lines.append("<h3>Measured speed (timing.csv; machine-dependent)</h3>" + table(read_csv(timing)))
    return "\n".join(lines)


STUDY = Study(name="nif", title="NIF: nodal pruning (pNIF), ID node selection, compaction; POD where the data is a grid",
              config=NifConfig, run=run, summarize=summarize, plot=plot, describe=describe,
              columns={"variant": "text", "stage": "int", "rel_l2": "number", "params_total": "number", "compression": "number"},
              methods=lambda cfg: ["nif", "pod", *cfg.prune.methods],
              check=check,
              plan=cost_plan)

