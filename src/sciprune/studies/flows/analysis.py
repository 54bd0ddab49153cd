r"""Analyses of the saved networks, written once per task to ``analysis/<task>.npz`` for the plots.

For the first network of each task, the dense model and each method's stage nearest to each
``analysis.ratios`` prune ratio:

* densities: :math:`p(x)` on a grid (exact trace, so the map carries no probe noise) and ``samples`` samples (CNFs); the mode statistics of the
  labelled mixtures (6-mode ring, Gaussian spiral); the loss-surface flatness;
* classifiers: the predicted class-1 probability on a grid (decision boundaries).

**Mode statistics** (the reference's ``view_modes``): per-mode mean :math:`\mu_m` and covariance
:math:`\Sigma_m` from the labelled training data; for a sample :math:`x`,
:math:`d_m = \|x-\mu_m\|^2 / \sqrt{(x-\mu_m)^\top \Sigma_m (x-\mu_m)}` (for an isotropic mode,
:math:`\|x-\mu\|/\sigma`: a number of standard deviations). For each threshold :math:`\tau`: the share
of *high-quality* samples (:math:`\min_m d_m \le \tau`) and the number of *modes captured* (modes
with at least one sample within :math:`\tau`).

**Flatness**: the largest eigenvalue :math:`\lambda_{\max}` (power iteration) and the trace
(Hutchinson, Rademacher probes) of the Hessian of the training NLL with respect to the *unpruned*
parameters (probes and products masked to them), by Hessian-vector products through a
backpropagated fixed-step rk4 solve (``hessian_steps`` steps; the adjoint does not give second
derivatives) with one Hutchinson trace probe held fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sciprune.core import get_masks, torch_generator
from sciprune.errors import InputError
from sciprune.files import atomic_write_with, read_result_arrays
from sciprune.nn.ode import CNF, SolverFailed, _ODEModel, ode_from_arch
from sciprune.studies.base import RunContext
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.data import Toy
from sciprune.studies.flows.tasks import Task, load_stage, stage_path, tasks

THRESHOLDS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0)
MODE_SETS = ("gaussians", "gaussians_spiral")


def nearest_stages(sparsities: list[float], ratios: list[float]) -> list[int]:
    """Stage indices of the schedule nearest to each ratio (deduplicated, in order)."""
    out: list[int] = []
    for r in ratios:
        i = min(range(len(sparsities)), key=lambda j: abs(sparsities[j] - r))
        if i not in out:
            out.append(i)
    return out


def grid_of(data: Toy, n: int) -> tuple[Tensor, float]:
    """An ``n x n`` grid covering the test data (and its half-width)."""
    lim = float(data.x_test.abs().max()) * 1.1
    axis = torch.linspace(-lim, lim, n)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1), lim


def mode_statistics(samples: Tensor, data: Toy) -> tuple[np.ndarray, np.ndarray]:
    """``(share of high-quality samples, modes captured)`` per threshold of :data:`THRESHOLDS`."""
    x = data.x_train.double()
    labels = data.y_train
    modes = sorted(int(m) for m in labels.unique())
    s = samples.double()
    d = []
    for m in modes:
        xm = x[labels == m]
        mu, cov = xm.mean(0), torch.cov(xm.T)
        diff = s - mu
        maha = torch.sqrt(((diff @ cov) * diff).sum(1).clamp_min(1e-300))
        d.append(diff.pow(2).sum(1) / maha)
    dist = torch.stack(d, dim=1)
    nearest = dist.min(dim=1).values
    share = np.array([float((nearest <= t).double().mean()) for t in THRESHOLDS])
    captured = np.array([int((dist <= t).any(dim=0).sum()) for t in THRESHOLDS])
    return share, captured


def hessian_stats(model: CNF, x: Tensor, *, steps: int, iters: int, probes: int, seed: int) -> tuple[float, float]:
    """``(lambda_max, trace)`` of the masked Hessian of the NLL on ``x`` (see the module docstring)."""
    arch = {**model.arch, "solver": {**model.arch["solver"], "method": "rk4", "steps": steps, "adjoint": False}}  # type: ignore[dict-item]
    cnf = ode_from_arch(arch, field=model.field)
    assert isinstance(cnf, CNF)
    masks = get_masks(model)
    named = [(n, p) for n, p in model.named_parameters()]
    params = [p for _, p in named]
    keep = [masks.get(n, torch.ones_like(p, dtype=torch.bool)).to(p.dtype) for n, p in named]
    with torch.enable_grad():
        loss = cnf.nll(x, generator=torch_generator(seed, "hessian", "probe"))
        grads = torch.autograd.grad(loss, params, create_graph=True)

        def hvp(v: list[Tensor]) -> list[Tensor]:
            hv = torch.autograd.grad(grads, params, v, retain_graph=True)
            return [h * k for h, k in zip(hv, keep)]

        g = torch_generator(seed, "hessian", "power")
        v = [torch.randn(p.shape, generator=g).to(p) * k for p, k in zip(params, keep)]  # drawn on the CPU
        lam = 0.0
        for _ in range(iters):
            norm = torch.sqrt(sum((u * u).sum() for u in v))  # type: ignore[arg-type]
            v = [u / norm for u in v]
            hv = hvp(v)
            lam = float(sum((a * b).sum() for a, b in zip(v, hv)))
            v = [h.detach() for h in hv]
        g = torch_generator(seed, "hessian", "trace")
        tr = 0.0
        for _ in range(probes):
            r = [(torch.randint(0, 2, p.shape, generator=g).to(p) * 2 - 1) * k for p, k in zip(params, keep)]
            tr += float(sum((a * b).sum() for a, b in zip(r, hvp(r))))
    return lam, tr / probes


def analyse_model(cfg: FlowsConfig, task: Task, data: Toy, model: _ODEModel, grid: Tensor, seed: int) -> dict[str, np.ndarray]:
    """Everything the plots need from one network."""
    a = cfg.analysis
    out: dict[str, np.ndarray] = {}
    grid = grid.to(data.x_test.device)
    with torch.no_grad():
        if isinstance(model, CNF):
            exact = ode_from_arch({**model.arch, "trace": "exact"}, field=model.field)  # a smooth map, no probe noise
            assert isinstance(exact, CNF)
            logp = torch.cat([exact.log_prob(xb, generator=None) for xb in grid.split(4096)])
            out["density"] = logp.exp().view(a.grid, a.grid).cpu().numpy()
            out["samples"] = model.sample(a.samples, generator=torch_generator(seed, "samples")).cpu().numpy()
            if task.name in MODE_SETS:
                many = model.sample(a.mode_samples, generator=torch_generator(seed, "modes"))
                share, captured = mode_statistics(many, data)
                out["mode_share"], out["modes_captured"] = share, captured
        else:
            out["proba"] = torch.softmax(model(grid), dim=1)[:, 1].view(a.grid, a.grid).cpu().numpy()
    if isinstance(model, CNF) and a.hessian:
        idx = torch.randperm(len(data.x_train), generator=torch_generator(seed, "hessian", "points"))[: a.hessian_points]
        lam, tr = hessian_stats(model, data.x_train[idx.to(data.x_train.device)], steps=a.hessian_steps, iters=a.hessian_iters,
                                probes=a.hessian_probes, seed=seed)
        out["hessian"] = np.array([lam, tr])
    return out


def analysis_path(run_dir: Path, task: Task) -> Path:
    return run_dir / "analysis" / f"{task.key}.npz"


def analyse_task(cfg: FlowsConfig, out: Path, task: Task, data: Toy, device: torch.device) -> None:
    """``analysis/<task>.npz``: the analyses of ``task``'s first network (seed ``cfg.seed``) at the dense
    stage and at every method's stage nearest each ratio, from their stage files in ``out``. Run by that
    network's shard once its cascades are done, so the analyses run on the workers beside the other
    networks' cascades rather than after them in the calling process."""
    seed = cfg.seed
    stages = nearest_stages(cfg.prune.sparsities, cfg.analysis.ratios)
    grid, lim = grid_of(data, cfg.analysis.grid)
    arrays: dict[str, np.ndarray] = {"lim": np.array(lim), "x_test": data.x_test.cpu().numpy(), "y_test": data.y_test.cpu().numpy(),
                                     "thresholds": np.array(THRESHOLDS)}
    todo = [("dense", -1, 0.0)] + [(m, i, cfg.prune.sparsities[i]) for m in cfg.prune.methods for i in stages]
    for method, stage, sparsity in todo:
        file = stage_path(out, task, seed, method, stage)
        if not file.exists():
            continue  # a failed or diverged stage
        try:
            result = analyse_model(cfg, task, data, load_stage(file, device), grid, seed)
        except SolverFailed:
            continue
        for k, v in result.items():
            arrays[f"{method}|{sparsity!r}|{k}"] = v
    atomic_write_with(analysis_path(out, task), lambda tmp: _savez(tmp, arrays))


def write_analysis(cfg: FlowsConfig, ctx: RunContext, datasets: dict[str, Toy], rows: list[dict[str, Any]]) -> None:
    """``analysis/<task>.npz`` for every task whose shard did not write it (a folder resumed from a version
    that analysed after the cascades); a file present was written by this run (the runner reuses a
    folder holding results only with ``--resume``)."""
    for task in ctx.progress(tasks(cfg), desc="flows: analyses"):
        if not analysis_path(ctx.out, task).exists():
            analyse_task(cfg, ctx.out, task, datasets[task.key], ctx.device)


def _savez(tmp: str, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_analysis(run_dir: Path, task: Task) -> dict[str, np.ndarray]:
    """``analysis/<task>.npz``; ``{}`` with a report note when missing, one clear line when damaged (not an
    ``.npz`` of numeric arrays, or arrays without the shapes :func:`write_analysis` gives them)."""
    path = analysis_path(run_dir, task)
    arrays = read_result_arrays(path, f"{task.key} analysis")
    if arrays is None:
        return {}
    n = len(THRESHOLDS)
    shapes = {"lim": lambda a: a.ndim == 0, "thresholds": lambda a: a.shape == (n,), "x_test": lambda a: a.ndim == 2,
              "y_test": lambda a: a.ndim == 1, "|hessian": lambda a: a.shape == (2,),
              "|modes_captured": lambda a: a.shape == (n,), "|mode_share": lambda a: a.shape == (n,),
              "|samples": lambda a: a.ndim == 2 and a.shape[1] == 2, "|density": lambda a: a.ndim == 2, "|proba": lambda a: a.ndim == 2}
    for key in ("lim", "thresholds", "x_test", "y_test"):
        if key not in arrays:
            raise InputError(f"{task.key} analysis {str(path)!r} is damaged (no {key!r} array); expected the analysis "
                             "written by sciprune: delete it and make the report again, or re-run into a new --out")
    for key, a in arrays.items():
        suffix = key if key in shapes else "|" + key.rsplit("|", 1)[-1]
        pair = key.replace("|modes_captured", "|mode_share") if key.endswith("|modes_captured") else key
        if (key.count("|") not in (0, 2) or suffix not in shapes or not shapes[suffix](a) or pair not in arrays
                or (key.count("|") == 2 and not _is_float(key.split("|")[1]))):
            raise InputError(f"{task.key} analysis {str(path)!r} is damaged (array {key!r} of shape {tuple(a.shape)}); expected "
                             "the analysis written by sciprune: delete it and make the report again, or re-run into a new --out")
    return arrays

