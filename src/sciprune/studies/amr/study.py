"""``sciprune amr``: the PruningAMR study as the runner sees it (``STUDY``).

A run writes into its results directory, besides the runner's ``config.yaml`` / ``summary.json`` /
``report.html``: ``it_N.mesh`` and ``it_N.gf`` per iteration, ``paraview/`` (with ``paraview``),
``parameters.json`` (every parameter, ``workers`` and ``device`` included, the INR, the
per-iteration records under ``iterations`` and the uniform baseline's under ``baseline``),
``metrics.csv`` (one row per iteration of the run, ``role = run``, and of the uniform baseline,
``role = baseline``; no timings, so a resumed run's file is byte-identical) and ``timing.csv``
(the seconds of the same rows).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from sciprune.errors import InputError
from sciprune.studies.base import RunContext
from sciprune.files import atomic_write_csv, atomic_write_json, read_csv
from sciprune.studies.base import Rows, Study
from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.amr.inr import check_inputs
from sciprune.studies.amr.plan import plan as cost_plan

PARAMETERS = "parameters.json"
TIMING = "timing.csv"
_RUNS = (("run", "iterations"), ("baseline", "baseline"))


def _rows(cfg: AMRConfig, params: dict[str, Any]) -> Rows:
    rows: Rows = []
    for role, key in _RUNS:
        for rec in params.get(key, []):
            prop = rec.get("mean_proportion")
            rows.append({
                "method": cfg.mode if role == "run" else "uniform", "role": role, "seed": cfg.seed,
                "inr": params["inr"], "sparsity": "" if prop is None else 1.0 - prop,
                "params_nnz": params["inr_params"],
                **{k: rec[k] for k in ("it", "dofs", "true_dofs", "elements", "rmse", "rmse_se", "max_error",
                                        "examined", "refined", "max_level")},
            })
    return rows


def _timing_rows(params: dict[str, Any]) -> Rows:
    return [{"role": role, "it": rec["it"], **{k: rec.get(k, 0.0) for k in ("seconds", "seconds_examine", "seconds_error")}}
            for role, key in _RUNS for rec in params.get(key, [])]


def _complete(out: Path, cfg: AMRConfig) -> dict[str, Any] | None:
    """The parameters of a finished run of ``cfg`` in ``out``, or ``None``."""
    path = out / PARAMETERS
    try:
        params = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    want = cfg.model_dump(mode="json")
    same = {k: params.get(k) for k in want} == want
    return params if params.get("complete") is True and same else None


def run(cfg: AMRConfig, ctx: RunContext) -> None:
    """Refine, record every iteration, measure the uniform baseline; resumable (a complete run is
    reused, an incomplete one is run again: the run is deterministic, so the numbers are equal)."""
    from dataclasses import asdict

    from sciprune.studies.amr.driver import run_amr, run_uniform_baseline
    from sciprune.studies.amr.evaluate import REPLICATES
    from sciprune.studies.amr.inr import resolve_inr

    if ctx.scheduler is not None:
        raise InputError(
            f"the amr study runs its element pass in threads of this process (--workers N), not on a dask "
            f"scheduler; got --scheduler {ctx.scheduler}. Drop --scheduler"
        )
    if ctx.resume and (done := _complete(ctx.out, cfg)) is not None:
        ctx.write_rows(_rows(cfg, done))
        atomic_write_csv(ctx.out / TIMING, _timing_rows(done))
        return
    inr = resolve_inr(cfg.inr).to(ctx.device)  # the element pass (ID, error checks) runs there; MFEM on the CPU
    progress = None if ctx.quiet else ctx.progress
    result = run_amr(cfg, inr, out=ctx.out, workers=ctx.workers, progress=progress)
    baseline = []
    if cfg.uniform_baseline and cfg.mode != "uniform" and result.iterations:
        baseline = run_uniform_baseline(cfg, inr, result.iterations[-1].rmse)
    params = {
        **cfg.model_dump(mode="json"),
        "workers": ctx.workers,
        "device": str(ctx.device),
        "rmse_estimator": {"kind": "scrambled Sobol' sets (scipy.stats.qmc)", "replicates": REPLICATES,
                           "points": len(result.points) if result.points is not None else None,
                           "standard_error": "per record: rmse_se"},
        "mesh_used": cfg.mesh or inr.default_mesh,
        "inr_source": inr.source,
        "inr_sizes": inr.mlp.sizes,
        "inr_activations": inr.mlp.activations,
        "inr_params": inr.n_params,
        "initial": result.initial,
        "limits_used": {**result.limits, "id_samples": cfg.id_sample_count()},
        "stop_reason": result.stop_reason,
        "field_scale": result.field_scale,
        "iterations": result.records(),
        "baseline": [asdict(r) for r in baseline],
        "complete": True,
    }
    atomic_write_json(ctx.out / PARAMETERS, params)
    atomic_write_csv(ctx.out / TIMING, _timing_rows(params))
    ctx.write_rows(_rows(cfg, params))


def equal_error_dofs(baseline: list[tuple[float, float]], rmse: float) -> float | None:
    """DOFs uniform refinement needs for ``rmse``: log-log interpolation between the two baseline
    levels that bracket it (``(dofs, rmse)`` pairs, refining order); ``None`` if none bracket it."""
    for (d0, r0), (d1, r1) in zip(baseline, baseline[1:]):
        if r0 >= rmse >= r1 and r0 > 0 and r1 > 0:
            if r0 == r1:
                return float(d0)
            t = math.log(r0 / rmse) / math.log(r0 / r1)
            return float(math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0))))
    if baseline and baseline[0][1] <= rmse:
        return float(baseline[0][0])  # at most the coarsest uniform level
    return None


def equal_error_dofs_se(baseline: list[tuple[float, float]], rmse: float, se: float) -> float | None:
    """Standard error of :func:`equal_error_dofs` from the run's RMSE standard error ``se``:
    half the spread of the equal-error DOFs at ``rmse ± se`` (one side where the other is out of
    the baseline's range). The baseline's own estimator error is not included (same points,
    strongly correlated with the run's)."""
    if not se > 0:
        return 0.0
    lo, hi = equal_error_dofs(baseline, rmse + se), equal_error_dofs(baseline, max(rmse - se, 1e-300))
    mid = equal_error_dofs(baseline, rmse)
    if mid is None:
        return None
    if lo is not None and hi is not None:
        return abs(hi - lo) / 2
    other = lo if lo is not None else hi
    return None if other is None else abs(other - mid)


def summarize(cfg: AMRConfig, rows: Rows, run_dir: Path) -> dict[str, Any]:
    runs = [r for r in rows if r.get("role") == "run"]
    base = [(float(r["dofs"]), float(r["rmse"])) for r in rows if r.get("role") == "baseline"]
    out: dict[str, Any] = {"mode": cfg.mode, "inr": cfg.inr, "iterations": len(runs)}
    try:
        out["stop_reason"] = json.loads((run_dir / PARAMETERS).read_text()).get("stop_reason")
    except (OSError, json.JSONDecodeError):
        pass
    if not runs:
        return out
    last = runs[-1]
    out.update({k: last.get(k) for k in ("dofs", "true_dofs", "elements", "rmse", "rmse_se", "max_error")})
    timing = run_dir / TIMING
    if timing.is_file():
        out["seconds_total"] = sum(float(r["seconds"]) for r in read_csv(timing) if r.get("role") == "run")
    if base:
        rmse, se = float(last["rmse"]), float(last.get("rmse_se") or 0.0)
        need = equal_error_dofs(base, rmse)
        out["uniform_dofs_at_equal_rmse"] = need
        out["dof_saving_true"] = None if need is None else need / float(last["true_dofs"])
        out["dof_saving_all"] = None if need is None else need / float(last["dofs"])
        spread = equal_error_dofs_se(base, rmse, se)
        out["dof_saving_true_se"] = None if need is None or spread is None else spread / float(last["true_dofs"])
        if need is None and rmse < min(r for _, r in base):  # finer than every uniform level measured
            out["dof_saving_true_at_least"] = max(d for d, _ in base) / float(last["true_dofs"])
    return out


def plot(cfg: AMRConfig, rows: Rows, run_dir: Path) -> list[Path]:
    from sciprune.studies.amr.plots import plot_error_vs_dofs, plot_final_mesh

    paths = [plot_error_vs_dofs(cfg, rows, run_dir / "plots" / "error_vs_dofs.png")]
    runs = [r for r in rows if r.get("role") == "run"]
    if runs and (run_dir / f"it_{runs[-1]['it']}.mesh").is_file():
        paths.append(plot_final_mesh(cfg, run_dir, int(runs[-1]["it"]), run_dir / "plots" / "final_mesh.png"))
    return paths


def describe(cfg: AMRConfig, rows: Rows, run_dir: Path) -> str:
    s = summarize(cfg, rows, run_dir)
    what = {
        "bulk": f"Bulk AMR: each element's indicator η² is "
                + ({"interpolation": "|E| · mean (f̃ − I_E f)², f̃ "
                                     + ("the INR itself" if cfg.surrogate_epsilon is None
                                        else f"the INR ID-pruned on it (ε = {cfg.surrogate_epsilon:g})")
                                     + " and I_E f the multilinear interpolant of the INR's corner values",
                    "residual": "|E| · mean (f − f̃)², f̃ the INR ID-pruned on it to d + 1 neurons a layer"}.get(
                       cfg.indicator, f"h² · |E| · ({cfg.indicator} ID rank at ε = {cfg.epsilon})"))
                + f"; the elements with the largest η² making up {cfg.fraction:g} of the total are refined",
        "pruning": f"PruningAMR: an element is refined when ID pruning (ε = {cfg.epsilon}) of the INR on it keeps "
                   f"more than P = {cfg.prop_threshold} of the hidden neurons, or the pruned network's relative "
                   f"error exceeds T = {cfg.threshold}",
        "basic": f"BasicAMR: an element is refined when the relative error of the mesh interpolant exceeds T = {cfg.threshold}",
        "uniform": "uniform refinement of every element",
    }[cfg.mode]
    examined = "each element is examined once, when it appears" if cfg.mode == "bulk" else \
        "only the elements created by the last refinement are examined"
    parts = [f"<p>{html.escape(what)}; {examined}.</p>"]
    if "rmse" in s:
        parts.append(
            f"<p>Final mesh: {s['elements']} elements, {s['dofs']} DOFs ({s['true_dofs']} true DOFs), "
            f"true RMSE {s['rmse']:.4g} ± {float(s.get('rmse_se') or 0):.2g}, max error {s['max_error']:.3g}"
            + (f", {s['seconds_total']:.2f} s" if "seconds_total" in s else "") + ".</p>"
        )
    if s.get("dof_saving_true_at_least"):
        parts.append(f"<p>This mesh is finer than every uniform level measured: uniform refinement needs more than "
                     f"{s['dof_saving_true_at_least']:.1f}× its true DOFs for the same true RMSE.</p>")
    if s.get("dof_saving_true"):
        parts.append(
            f"<p>Uniform refinement needs about {s['uniform_dofs_at_equal_rmse']:.0f} DOFs for the same true RMSE: "
            f"<b>{s['dof_saving_true']:.1f}×</b>"
            + (f" ± {s['dof_saving_true_se']:.1f}" if s.get("dof_saving_true_se") is not None else "")
            + " the true DOFs of this mesh"
            + (f" ({s['dof_saving_all']:.1f}× its DOFs with hanging vertices, the reference's count)"
               if s.get("dof_saving_all") else "") + ".</p>"
        )
    return "\n".join(parts)


STUDY = Study(
    name="amr",
    title="Adaptive meshes for implicit neural representations (bulk AMR; the seed's PruningAMR as mode pruning)",
    config=AMRConfig,
    run=run,
    summarize=summarize,
    plot=plot,
    describe=describe,
    scheduler=False,  # the element pass runs in threads (--workers); there is no dask path
    check=check_inputs,
    columns={"role": "text", "it": "int", "dofs": "number", "rmse": "number"},
    methods=lambda cfg: [cfg.mode, "uniform"],
    plan=cost_plan,
)
