"""Measured speed (``timing.csv``, never ``metrics.csv``): compacted vs dense inference, de-duplication.

* Inference: points per second of the dense NIF and of each compacted pNIF on ``timing_points``
  rows drawn from the data (few distinct p, as in a field query), best of 3, beside the ideal ratio
  of ShapeNet FLOPs (ParameterNet runs once per distinct p and is negligible there).
* Training: points per second of one epoch-slice of Adam steps with ParameterNet run once per
  distinct p in a batch (``dedup``) and once per row.

Everything runs on the run's device (``device`` column; the rows drawn on the CPU, then moved); on
a GPU each timed region starts and ends with a synchronisation, so the kernels it queued are counted.
"""

from __future__ import annotations

import time
from typing import Any, cast

import torch
from torch import Tensor, nn

from sciprune.core import load_stage, load_state, load_state_dict, torch_generator
from sciprune.files import atomic_write_csv
from sciprune.nn.nif import build_nif
from sciprune.studies.base import RunContext
from sciprune.studies.nif.data import Split
from sciprune.studies.nif.train import optimizer_factory, weighted_mse, with_weights


def sync(device: torch.device) -> None:
    """Wait for the kernels queued on ``device`` (a CUDA device; nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def points_per_second(model: nn.Module, inputs: Tensor, repeats: int = 3) -> float:
    best = float("inf")
    with torch.no_grad():
        model(inputs[:256])
        for _ in range(repeats):
            sync(inputs.device)
            t0 = time.perf_counter()
            model(inputs)
            sync(inputs.device)
            best = min(best, time.perf_counter() - t0)
    return inputs.shape[0] / best


def train_points_per_second(model: nn.Module, inputs: Tensor, targets: Tensor, batch: int, steps: int = 10) -> float:
    opt, _ = optimizer_factory(1e-4, {})(model.parameters())
    sync(inputs.device)
    t0 = time.perf_counter()
    for i in range(steps):
        idx = slice((i * batch) % max(1, inputs.shape[0] - batch), (i * batch) % max(1, inputs.shape[0] - batch) + batch)
        opt.zero_grad(set_to_none=True)
        weighted_mse(model(inputs[idx]), targets[idx]).backward()
        opt.step()
    sync(inputs.device)
    return steps * batch / (time.perf_counter() - t0)


def write_timing(cfg: Any, ctx: RunContext, sp: Split, rows: list[dict[str, Any]], retrain_epochs: int) -> None:
    dtype, device = sp.train_in.dtype, ctx.device
    where = {"threads": 0 if device.type == "cuda" else torch.get_num_threads(), "device": str(device)}
    g = torch_generator(cfg.seed, "timing")
    idx = torch.randint(0, sp.all_in.shape[0], (cfg.timing_points,), generator=g)
    q = sp.all_in.to(device)[idx.to(device)]
    dense_state = load_state(ctx.checkpoints / "dense.pt")
    dense = cast(Any, build_nif(dense_state["arch"]).to(dtype=dtype, device=device))
    load_state_dict(dense, dense_state["state"])
    dense.eval()
    dense_pps = points_per_second(dense, q)
    out = [{"what": "inference", "model": "dense", "sparsity": 0.0, "points": cfg.timing_points,
            "points_per_s": round(dense_pps), "speedup": 1.0, "ideal_flop_ratio": 1.0, "of_ideal": 1.0, **where}]
    for r in rows:
        if r["method"] not in ("nif", "pod") and (r["variant"] == "retrained" or retrain_epochs == 0):
            key = f"{r['method']}-{r['variant']}"
            m = cast(Any, load_stage(ctx.checkpoints / key, int(r["stage"]) - 1, lambda a: build_nif(a).to(dtype=dtype, device=device)))
            pps = points_per_second(m, q)
            ideal = dense.shape_flops() / m.shape_flops()
            out.append({"what": "inference", "model": key, "sparsity": r["sparsity"], "points": cfg.timing_points,
                        "points_per_s": round(pps), "speedup": round(pps / dense_pps, 3), "ideal_flop_ratio": round(ideal, 3),
                        "of_ideal": round(pps / dense_pps / ideal, 3), **where})
    targets = with_weights(sp.train_u, sp.train_w).to(device)
    perm = torch.randperm(sp.train_in.shape[0], generator=g).to(device)
    x, y = sp.train_in.to(device)[perm], targets[perm]
    for dedup in (True, False):
        m = cast(Any, build_nif(dense_state["arch"]).to(dtype=dtype, device=device))
        load_state_dict(m, dense_state["state"])
        m.dedup = dedup
        pps = train_points_per_second(m, x, y, cfg.train.batch_size)
        out.append({"what": "training", "model": "dense", "sparsity": 0.0, "points": cfg.train.batch_size,
                    "points_per_s": round(pps), "speedup": None, "ideal_flop_ratio": None, "of_ideal": None,
                    "dedup": dedup, **where})
    out[-2]["speedup"] = round(out[-2]["points_per_s"] / out[-1]["points_per_s"], 3)  # dedup vs per row
    out[-1]["speedup"] = 1.0
    atomic_write_csv(ctx.out / "timing.csv", out)
