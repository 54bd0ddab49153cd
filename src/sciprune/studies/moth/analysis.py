"""The ensemble's statistics, from the recorded rows (and the saved optimum weights) only.

A member's *optimal sparsity* is the largest recorded sparsity whose test MSE is at most the
threshold (the last passing stage, even after a failing one, as in the paper); a member that never
passes has none and is counted, not dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciprune.core import load_state
from sciprune.errors import InputError
from sciprune.studies.moth.data import INPUTS


def by_member(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[int(r["member"])].append(r)
    return {m: sorted(rs, key=lambda r: r["stage"]) for m, rs in sorted(out.items())}


def optimum_rows(rows: list[dict[str, Any]], threshold: float) -> dict[int, dict[str, Any] | None]:
    """Each member's row at its optimal sparsity (``None`` when no stage passes)."""
    best: dict[int, dict[str, Any] | None] = {}
    for m, rs in by_member(rows).items():
        passing = [r for r in rs if r["test_mse"] is not None and np.isfinite(float(r["test_mse"])) and float(r["test_mse"]) <= threshold]
        best[m] = passing[-1] if passing else None
    return best


def loss_curve(rows: list[dict[str, Any]]) -> dict[float, dict[str, Any]]:
    """Per sparsity: median, quartiles, min and max of the members' test MSE."""
    at: dict[float, list[float]] = defaultdict(list)
    for r in rows:
        at[float(r["sparsity"])].append(float(r["test_mse"]) if r["test_mse"] is not None else float("nan"))
    out: dict[float, dict[str, Any]] = {}
    for s in sorted(at):
        v = np.asarray(at[s])
        v = v[np.isfinite(v)]
        if v.size == 0:
            out[s] = {"median": None, "q25": None, "q75": None, "min": None, "max": None, "diverged": len(at[s])}
            continue
        out[s] = {"median": float(np.median(v)), "q25": float(np.quantile(v, 0.25)), "q75": float(np.quantile(v, 0.75)),
                  "min": float(v.min()), "max": float(v.max()), "diverged": len(at[s]) - int(v.size)}
    return out


def summarize_rows(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    best = optimum_rows(rows, threshold)
    passing = [r for r in best.values() if r is not None]
    members = len(best)
    opt = [float(r["sparsity"]) for r in passing]
    counts: dict[str, int] = defaultdict(int)
    for s in opt:
        counts[f"{s:g}"] += 1
    curve = loss_curve(rows)
    collapse = next((s for s, c in curve.items() if c["median"] is None or c["median"] > threshold), None)
    out: dict[str, Any] = {
        "threshold": threshold,
        "members": members,
        "members_passing": len(passing),
        "fraction_passing": len(passing) / members if members else None,
        "median_optimal_sparsity": float(np.median(opt)) if opt else None,
        "optimal_sparsity_counts": dict(sorted(counts.items(), key=lambda kv: float(kv[0]))),
        "first_sparsity_with_median_above_threshold": collapse,
        "dense_test_mse_median": curve.get(0.0, {}).get("median"),
    }
    if not passing:
        out["note"] = (f"no member reached test MSE <= {threshold:g} at any sparsity (best median "
                       f"{min((c['median'] for c in curve.values() if c['median'] is not None), default=float('nan')):.3g}); "
                       "raise the threshold, the data or the training budget")
        out["connectivity_at_optimum"] = None
        out["layer_density_at_optimum"] = None
    else:
        out["connectivity_at_optimum"] = {
            name: {"median": float(np.median([r[f"conn_{name}"] for r in passing])),
                   "max": float(np.max([r[f"conn_{name}"] for r in passing]))} for name in INPUTS}
        dens = np.array([[float(x) for x in str(r["layer_density"]).split(";")] for r in passing])
        out["layer_density_at_optimum"] = [{"layer": i + 1, "mean": float(dens[:, i].mean()), "std": float(dens[:, i].std())}
                                           for i in range(dens.shape[1])]
    out["test_mse_by_sparsity"] = {f"{s:g}": c for s, c in curve.items()}
    return out


def _is_int(s: Any) -> bool:
    if isinstance(s, torch.Tensor):
        return s.numel() == 1 and not s.is_floating_point()
    return isinstance(s, int)


def _optimum(path: Path) -> tuple[list[int], dict[str, torch.Tensor], list[str]]:
    """``(stage per member, state, weight keys in layer order)`` of an ``optimum.pt``; a damaged one is one line."""
    saved = load_state(path)
    stage, state = saved.get("stage"), saved.get("state")
    why = "no 'stage' list and 'state' dict"
    if isinstance(stage, (list, tuple, torch.Tensor)) and isinstance(state, dict):
        keys = [k for k in state if isinstance(k, str) and k.endswith(".weight")]
        if not all(_is_int(s) for s in stage):
            why = "its 'stage' entries are not integers"
        elif not all(k.count(".") == 2 and k.split(".")[1].isdigit() for k in keys):
            why = "its weights are not named layers.N.weight"
        elif not all(isinstance(state[k], torch.Tensor) and state[k].ndim == 3 and state[k].shape[0] >= len(stage)
                     for k in keys):
            why = "its weights are not [members, out, in] tensors for every member"
        else:
            return [int(s) for s in stage], state, sorted(keys, key=lambda k: int(k.split(".")[1]))
    raise InputError(f"checkpoint {str(path)!r} is damaged ({why}); expected a member's optimum written by sciprune: "
                     "delete the results folder's checkpoints/shard_*/optimum.pt and resume, or re-run into a new --out")


def optimum_weights(run_dir: Path) -> list[list[np.ndarray]]:
    """Per layer, the non-zero weights of every member at its optimum (from ``checkpoints/shard_*/optimum.pt``)."""
    layers: list[list[np.ndarray]] = []
    for path in sorted((run_dir / "checkpoints").glob("shard_*/optimum.pt")):
        stage, state, keys = _optimum(path)
        for li, key in enumerate(keys):
            w: torch.Tensor = state[key]
            while len(layers) <= li:
                layers.append([])
            for j, s in enumerate(stage):
                if s >= 0:
                    v = w[j].flatten().numpy()
                    layers[li].append(v[v != 0])
    return layers
