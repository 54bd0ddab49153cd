"""MothPruning speed, side by side in one run (one thread):

1. **Simulator**: samples/s of the batched Rodas4 integrator (16,384 samples in one call) against a
   per-sample ``scipy.integrate.solve_ivp`` loop on the same right-hand side (numpy, closed form),
   (a) Radau at rtol 1e-11 (the accuracy reference of the tests) and (b) LSODA at rtol 1e-8, atol
   1e-8 (about the accuracy of ours; its error is printed). Goal: ≥ 1000×.
2. **Ensemble training**: member-steps/s of P members trained as one ``StackedMLP`` against the
   same P members trained one at a time (each its own model and Adam, interleaved step by step),
   at the quick preset's network and batch 128. Goal: ≥ 5×.
3. **FLOP/s** of stacked training of the paper network (10-400-400-400-16-7, batch 128, P members;
   6 FLOPs per weight per sample per step: forward, input- and weight-gradients), with the masks
   enforced, against this machine's measured dense-matmul peak (float32 ``torch.mm`` 1024×1024,
   best of several). Goal: ≥ 0.5.

Run: ``python benchmarks/bench_moth.py [--quick]`` (a few minutes on one core).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from sciprune.core.masks import enforce_masks  # noqa: E402
from sciprune.core.pruning import prune  # noqa: E402
from sciprune.core.seeding import torch_generator  # noqa: E402
from sciprune.nn.mlp import MLP  # noqa: E402
from sciprune.nn.stacked import StackedMLP  # noqa: E402
from sciprune.runner.config import load_preset  # noqa: E402
from sciprune.studies.moth.integrator import integrate  # noqa: E402
from sciprune.studies.moth.physics import Constants, rhs  # noqa: E402
from sciprune.studies.moth.sampling import draw  # noqa: E402
from sciprune.studies.moth.simulate import HORIZON, JAC_COLS  # noqa: E402

QUICK = "--quick" in sys.argv


def simulator() -> None:
    k = Constants()
    n = 4096 if QUICK else 16384
    y0, u = draw(99, 0, n)
    f = lambda y, c: rhs(y, c, k)  # noqa: E731
    integrate(f, torch.from_numpy(y0[:256]), torch.from_numpy(u[:256]), HORIZON, cols=JAC_COLS)  # warm-up
    t = time.perf_counter()
    ours = integrate(f, torch.from_numpy(y0), torch.from_numpy(u), HORIZON, cols=JAC_COLS)
    t_ours = (time.perf_counter() - t) / n
    m = 10 if QUICK else 30

    def one(i: int, **kw: object) -> np.ndarray:
        ui = torch.from_numpy(u[i : i + 1])
        g = lambda _t, z: rhs(torch.from_numpy(z[None]), ui, k).numpy()[0]  # noqa: E731
        return solve_ivp(g, (0.0, HORIZON), y0[i], **kw).y[:, -1]  # type: ignore[arg-type]

    res = {}
    for name, kw in (("Radau rtol 1e-11", dict(method="Radau", rtol=1e-11, atol=1e-11)),
                     ("LSODA rtol 1e-8", dict(method="LSODA", rtol=1e-8, atol=1e-8))):
        t = time.perf_counter()
        res[name] = np.stack([one(i, **kw) for i in range(m)])
        res[name + " s"] = (time.perf_counter() - t) / m
    ref = res["Radau rtol 1e-11"]
    span = ref.max(axis=0) - ref.min(axis=0)
    err_ours = (np.abs(ours.y.numpy()[:m] - ref).max(axis=0) / span).max()
    err_lsoda = (np.abs(res["LSODA rtol 1e-8"] - ref).max(axis=0) / span).max()
    print(f"\n1. simulator ({n} samples batched; {m} samples per solve_ivp baseline; failed: {int((~ours.ok).sum())})")
    print(f"   ours (Rodas4, rtol 1e-6): {1 / t_ours:10.0f} samples/s   max error {err_ours:.1e} of column range; "
          f"mean accepted steps {ours.steps.double().mean():.1f}")
    for name, err in (("Radau rtol 1e-11", 0.0), ("LSODA rtol 1e-8", err_lsoda)):
        s = res[name + " s"]
        print(f"   solve_ivp {name:17s}: {1 / s:10.1f} samples/s   error {err:.1e}   ratio ours/it = {s / t_ours:8.0f}x")


def _train_steps(models: list[torch.nn.Module], opts: list[torch.optim.Optimizer], x: torch.Tensor, y: torch.Tensor,
                 steps: int, stacked: bool) -> float:
    g = torch_generator(0, "bench")
    t = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        for model, opt in zip(models, opts):
            opt.zero_grad(set_to_none=True)
            out = model(x[idx])
            err = out - (y[idx] if not stacked else y[idx])
            (err**2).mean(dim=tuple(range(1, err.dim())) if stacked else None).sum().backward()
            opt.step()
    return time.perf_counter() - t


def ensemble(hidden: list[int], members: int, steps: int) -> tuple[float, float]:
    sizes = [10, *hidden, 7]
    mlps = [MLP(sizes, "tanh", generator=torch_generator(0, "member", p)) for p in range(members)]
    x, y = torch.rand(50000, 10) - 0.5, torch.rand(50000, 7) - 0.5
    stacked = StackedMLP.from_members(mlps)
    s_opt = torch.optim.Adam(stacked.parameters(), lr=5e-4)
    enforce_masks(stacked, s_opt)
    prune(stacked, 0.5)
    singles = [StackedMLP.from_members([m]) for m in mlps]
    opts = [torch.optim.Adam(m.parameters(), lr=5e-4) for m in singles]
    for m, o in zip(singles, opts):
        enforce_masks(m, o)
        prune(m, 0.5)
    _train_steps([stacked], [s_opt], x, y, 5, True)
    _train_steps(singles, opts, x, y, 2, True)
    best_s, best_1 = float("inf"), float("inf")
    for _ in range(3):
        best_s = min(best_s, _train_steps([stacked], [s_opt], x, y, steps, True))
        best_1 = min(best_1, _train_steps(singles, opts, x, y, max(1, steps // 4), True) * 4)
    return members * steps / best_s, members * steps / best_1


def peak() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * 1024**3 / best


def main() -> None:
    torch.set_num_threads(1)
    print(f"threads: torch {torch.get_num_threads()}, load average {os.getloadavg()}")
    simulator()
    quick = load_preset("moth", "quick")
    hidden, members = list(quick["model"]["hidden"]), int(quick["members"])
    steps = 30 if QUICK else 100
    ens, one = ensemble(hidden, members, steps)
    print(f"\n2. ensemble training, quick network 10-{'-'.join(map(str, hidden))}-7, P={members}, batch 128, 50 % masked")
    print(f"   stacked: {ens:9.0f} member-steps/s   one at a time: {one:9.0f} member-steps/s   ratio {ens / one:.1f}x")
    p_members = 8 if QUICK else 16
    paper = [400, 400, 400, 16]
    weights = sum(a * b for a, b in zip([10, *paper], [*paper, 7]))
    ens_p, _ = ensemble(paper, p_members, 10 if QUICK else 20)
    flops = ens_p * 6 * weights * 128
    pk = peak()
    print(f"\n3. paper network 10-400-400-400-16-7, P={p_members}, batch 128: {ens_p:.0f} member-steps/s = "
          f"{flops / 1e9:.2f} GFLOP/s; dense matmul peak {pk / 1e9:.2f} GFLOP/s; fraction {flops / pk:.2f}")


if __name__ == "__main__":
    main()
