"""Sparse flows, side by side: what pruning a CNF's vector field buys (and costs) per solve.

Networks come from a finished ``sciprune flows`` run (first network of each density; the stage
nearest each ratio), re-solved here with the *paper's* solver (dopri5 at atol = rtol = 1e-5, no
gradients) and with the run's own one, on one thread, the compared networks alternated in
every round (best of ``ROUNDS``) so that load on the shared machine hits them alike:

1. **NLL evaluation, WT-pruned vs dense**: the test-set log-likelihood solve of the dense and the
   WT-masked field (stored dense, masks as zeros): NFE (an adaptive solver may take more or
   fewer steps for a pruned field) and wall time.
2. **Compacted FT vs dense**: the FT field compacted (:func:`sciprune.core._compact.compact`) to
   its surviving neurons: time per solve against the FLOP ratio per solve (FLOPs per NFE x NFE).
3. **Masks per NFE, ours vs ``torch.nn.utils.prune``**: one field evaluation (what an ODE solver
   repeats hundreds of times), at batch 1 (one trajectory) and 1,024, of the WT-masked field with our masks (buffers; the forward is a
   plain dense pass) and of the same weights pruned with ``torch.nn.utils.prune.custom_from_mask``
   (a forward pre-hook recomputes ``weight = weight_orig * weight_mask`` at every call), plus an
   unmasked copy (A/A noise floor). Goal: ours / plain = 1.00.

Run: ``sciprune flows --preset quick --out runs/flows-quick`` then
``python benchmarks/bench_flows.py runs/flows-quick`` (a few minutes on one core); without an argument it
runs the demo preset into a temporary directory first (what ``run_all.py`` does).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import copy  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import prune as torch_prune  # noqa: E402

from sciprune.core import get_masks, torch_generator
from sciprune.nn.ode import CNF, Solver, _ODEModel  # noqa: E402
from sciprune.runner.run import load_run  # noqa: E402
from sciprune.studies.flows.analysis import nearest_stages  # noqa: E402
from sciprune.studies.flows.methods import compact_field  # noqa: E402
from sciprune.studies.flows.tasks import load_stage, load_toy, stage_path, tasks  # noqa: E402

ROUNDS = 40
RATIOS = (0.5, 0.9, 0.98)
PAPER = Solver("dopri5", atol=1e-5, rtol=1e-5, adjoint=False, max_nfe=20000)


def best_times(fns: list[Callable[[], object]], rounds: int = ROUNDS) -> list[float]:
    """Best-of-``rounds`` seconds of each function, alternated (rotating the first) every round."""
    for f in fns:
        f()
    best = [float("inf")] * len(fns)
    for r in range(rounds):
        order = list(range(len(fns)))
        order = order[r % len(fns):] + order[: r % len(fns)]
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def with_solver(model: _ODEModel, solver: Solver) -> _ODEModel:
    from sciprune.nn.ode import ode_from_arch

    return ode_from_arch({**model.arch, "solver": solver.__dict__}, field=model.field)


def nll_solve(model: _ODEModel, x: torch.Tensor) -> Callable[[], object]:
    assert isinstance(model, CNF)

    def run() -> object:
        with torch.no_grad():
            return model.log_prob(x, generator=torch_generator(0, "bench"))

    return run


def torch_pruned_copy(model: _ODEModel) -> nn.Module:
    """The field with the same weights, pruned by ``torch.nn.utils.prune`` hooks instead of our masks."""
    field = copy.deepcopy(model.field)
    masks = get_masks(model)
    for name, mask in masks.items():
        local = name.removeprefix("field.")
        path, _, param = local.rpartition(".")
        module = field.get_submodule(path)
        delattr(module, param + "_mask")
        torch_prune.custom_from_mask(module, param, mask)
    return field


def main(run_dir: Path) -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}, shared machine (numbers are noisy)")
    cfg, _ = load_run(run_dir)
    stages = nearest_stages(cfg.prune.sparsities, list(RATIOS))
    for task in [t for t in tasks(cfg) if t.kind == "density"]:
        x = load_toy(cfg, task).x_test[:1024]
        dense = load_stage(stage_path(run_dir, task, cfg.seed, "dense", -1))
        print(f"\n== {task.name}: dense field {dense.field.arch}, {len(x)} test points per solve ==")
        for solver_name, solver in (("run's solver", dense.solver), ("paper dopri5 1e-5", PAPER)):
            print(f"-- {solver_name}: {solver.method}" + (f" steps={solver.steps}" if not solver.adaptive else ""))
            print(f"{'ratio':>6} {'network':>8} {'NFE':>6} {'ms/solve':>9} {'speedup':>8} {'FLOP ratio':>10}")
            d = with_solver(dense, solver)
            for i in stages:
                nets: list[tuple[str, _ODEModel]] = [("dense", d)]
                for method in ("wt", "ft"):
                    f = stage_path(run_dir, task, cfg.seed, method, i)
                    if f.exists():
                        m = load_stage(f)
                        if method == "ft":
                            m = compact_field(m)
                        nets.append((method, with_solver(m, solver)))
                times = best_times([nll_solve(m, x) for _, m in nets])
                nfes = [m.nfe_forward for _, m in nets]
                f0 = d.flops() * nfes[0]
                for (name, m), t, n in zip(nets, times, nfes):
                    print(f"{cfg.prune.sparsities[i]:6.2f} {name:>8} {n:6d} {1e3 * t:9.2f} {times[0] / t:8.2f} "
                          f"{f0 / max(m.flops() * n, 1):10.2f}")
        # 3. per-NFE cost of masks
        f = stage_path(run_dir, task, cfg.seed, "wt", stages[-1])
        if f.exists():
            wt = load_stage(f)
            ours, hooks, plain = wt.field, torch_pruned_copy(wt), copy.deepcopy(dense.field)
            plain2 = copy.deepcopy(dense.field)
            t = torch.zeros(())
            for batch, calls in ((1, 20), (1024, 4)):  # short blocks, many rounds: the minimum escapes preemption
                xb = x[:batch]
                with torch.no_grad():
                    assert torch.equal(ours(t, xb), hooks(t, xb))
                    evals = [lambda m=m: [m(t, xb) for _ in range(calls)] for m in (plain, ours, hooks, plain2)]
                    b = [v / calls for v in best_times(evals, rounds=400)]
                print(f"-- one field evaluation (batch {batch}), WT at {cfg.prune.sparsities[stages[-1]]:.2f}, "
                      f"best of 400 blocks of {calls} calls:")
                print(f"   plain {1e6 * b[0]:.1f} us | ours (masks as state) {1e6 * b[1]:.1f} us "
                      f"(x{b[1] / b[0]:.3f}) | torch.nn.utils.prune hooks {1e6 * b[2]:.1f} us (x{b[2] / b[0]:.3f}) "
                      f"| A/A plain copy x{b[3] / b[0]:.3f}")

if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: python benchmarks/bench_flows.py [RUN_DIR]  (a finished `sciprune flows` results directory;"
                 " without one, the demo preset is run into a temporary directory first)")
    if len(sys.argv) == 2:
        main(Path(sys.argv[1]))
    else:
        import tempfile

        from sciprune.runner.config import load_preset
        from sciprune.runner.run import run_config

        with tempfile.TemporaryDirectory() as tmp:
            print("no RUN_DIR given: running `sciprune flows --preset demo` first (its small networks)", flush=True)
            main(run_config(load_preset("flows", "demo"), out=Path(tmp) / "flows-demo", quiet=True))
