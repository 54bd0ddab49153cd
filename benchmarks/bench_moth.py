"""MothPruning speed, side by side in one run (one thread unless ``--threads N``):

1. **Simulator**: samples/s of the batched Rodas4 integrator (16,384 samples in one call) against a
   per-sample ``scipy.integrate.solve_ivp`` loop on the same right-hand side (numpy, closed form),
   (a) Radau at rtol 1e-11 (the accuracy reference of the tests) and (b) LSODA at rtol 1e-8, atol
   1e-8 (about the accuracy of ours; its error is printed). Goal: ≥ 1000×.
2. **Ensemble training**: member-steps/s of P members trained as one ``StackedMLP`` by the study's
   own step (``ensemble.train_to_plateau``, the plateau rule unable to stop anyone) against the same
   P members trained one at a time (each its own ``MLP`` and Adam, masks enforced; as one writes it,
   ``torch.tanh`` and the default Adam, and with the study's kernels, its activation and fused
   Adam), at the quick preset's network, batch 128 and the preset's 256. The
   sides run in alternating blocks (A, B, C, A, B, C, ...); the median ratio and its min/max over
   the blocks are printed, and the same step written by hand without autograd (the floor of eager
   kernels at this size; not the study). Goal: ≥ 5×. **2b.** The quick preset's set-up on the whole machine: its
   ``shards`` processes of stacked members, one thread each (as ``--workers`` runs them), against
   the one-at-a-time loop with 1 and with ``shards`` threads (the faster one counts).
3. **FLOP/s** of stacked training of the paper network (10-400-400-400-16-7, batch 128, P members;
   6 FLOPs per weight per sample per step: forward, input- and weight-gradients), with the masks
   enforced, against this machine's measured dense-matmul peak (float32 ``torch.mm`` 1024×1024,
   best of several). Goal: ≥ 0.5.

Run: ``python benchmarks/bench_moth.py [--quick] [--ensemble] [--threads N] [--compile]`` (a few
minutes on one core; ``--ensemble``: part 2 only; ``--threads``: torch and BLAS threads of both
sides, default 1; ``--compile``: also the study's step under ``torch.compile``, in § 2).
"""

from __future__ import annotations

import os
import sys

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from sciprune.core import enforce_masks, get_masks, prune, torch_generator
from sciprune.nn.mlp import MLP  # noqa: E402
from sciprune.runner.config import load_preset  # noqa: E402
from sciprune.studies.moth import ensemble  # noqa: E402
from sciprune.studies.moth.config import MothConfig  # noqa: E402
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

    res: dict[str, Any] = {}
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


def _plateau_free(hidden: list[int], members: int, batch: int) -> MothConfig:
    """The quick preset's training settings with the plateau rule unable to stop anyone (for timing)."""
    q = load_preset("moth", "quick")
    q["members"], q["shards"] = members, 1
    q["model"]["hidden"] = hidden
    q["train"].update(batch_size=batch, check_every=10**6, window=10**6, min_batches_dense=0)
    return MothConfig.model_validate(q)


def _data(rows: int = 64000) -> Any:
    g = torch_generator(0, "bench-data")
    x, y = torch.rand(rows, 10, generator=g) - 0.5, torch.rand(rows, 7, generator=g) - 0.5
    return SimpleNamespace(train=SimpleNamespace(x=x, y=y), val=SimpleNamespace(x=x[:1024], y=y[:1024]))


def _minibatches(n: int, batch: int, gen: torch.Generator, steps: int) -> Iterator[Tensor]:
    """``steps`` minibatch index tensors from fresh shuffles of ``range(n)`` (as the study draws them)."""
    order, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=gen), 0
        yield order[pos : pos + batch]
        pos += batch


def _study_model(cfg: MothConfig, first: int = 0) -> tuple[Any, torch.optim.Optimizer]:
    """Members ``first ..`` as the study builds them: stacked, its Adam, masks enforced, 50 % pruned."""
    model = ensemble.build(cfg, tuple(range(first, first + cfg.members)))
    opt = ensemble.make_adam(model.parameters(), cfg.train.lr, cfg.members)
    enforce_masks(model, opt)
    prune(model, 0.5)
    return model, opt


def _stacked(cfg: MothConfig, data: Any) -> Callable[[int], None]:
    """The study's own training step (``ensemble.train_to_plateau``: stacked model, its Adam, masks)."""
    model, opt = _study_model(cfg)
    gen = torch_generator(0, "bench-order")
    return lambda steps: ensemble.train_to_plateau(model, opt, data, cfg, gen, steps) and None


def _one_at_a_time(cfg: MothConfig, data: Any, same_kernels: bool) -> Callable[[int], None]:
    """The same members, each its own ``MLP`` and Adam (masks enforced), trained one after the other
    on the same kind of shuffled minibatches: the loop one writes without a stacked model.
    ``same_kernels``: with the study's kernels where they apply to one model (its activation and
    fused Adam); otherwise ``torch.tanh`` and the default Adam."""
    sizes = [10, *cfg.model.hidden, 7]
    act = cfg.model.activation if same_kernels else "tanh"
    nets = [MLP(sizes, act, generator=torch_generator(cfg.seed, "member", p)) for p in range(cfg.members)]
    opts = [torch.optim.Adam(m.parameters(), lr=cfg.train.lr, fused=same_kernels or None) for m in nets]
    for m, o in zip(nets, opts):
        enforce_masks(m, o)
        prune(m, 0.5)
    x, y, n, bs = data.train.x, data.train.y, len(data.train.x), cfg.train.batch_size
    gen = torch_generator(0, "bench-order")

    def run(steps: int) -> None:
        for m, o in zip(nets, opts):
            for idx in _minibatches(n, bs, gen, steps):
                o.zero_grad(set_to_none=True)
                loss = ((m(x[idx]) - y[idx]) ** 2).mean()
                loss.backward()
                o.step()
    return run


def _by_hand(cfg: MothConfig, data: Any) -> Callable[[int], None]:
    """Not the study: the same stacked step written out by hand, with no autograd at all (forward,
    backprop by explicit batched matmuls into a flat gradient buffer, fused Adam, masks by one
    multiply): what eager PyTorch's kernels cost at this size, the floor any stacked step pays."""
    sizes, members, batch = [10, *cfg.model.hidden, 7], cfg.members, cfg.train.batch_size
    model = ensemble.build(cfg, tuple(range(members)))
    prune(model, 0.5)
    masks = get_masks(model)
    keep = torch.cat([torch.cat([masks[f"layers.{i}.weight"].reshape(members, -1).float(), torch.ones(members, m.bias.shape[1])], 1)
                      for i, m in enumerate(model.stacked)], 1)
    flat = torch.cat([torch.cat([m.weight.detach().reshape(members, -1), m.bias.detach()], 1) for m in model.stacked], 1)
    grad = torch.zeros_like(flat)
    views: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    offset = 0
    for i, o in zip(sizes[:-1], sizes[1:]):
        w, gw = (t[:, offset : offset + o * i].view(members, o, i) for t in (flat, grad))
        offset += o * i
        b, gb = (t[:, offset : offset + o] for t in (flat, grad))
        offset += o
        views.append((w, b, gw, gb))
    flat.requires_grad_(True)
    flat.grad = grad
    opt = torch.optim.Adam([flat], lr=cfg.train.lr, fused=True)
    x_all, y_all, n = data.train.x, data.train.y, len(data.train.x)
    gen = torch_generator(0, "bench-order")
    last = len(views) - 1

    @torch.no_grad()
    def run(steps: int) -> None:
        for idx in _minibatches(n, batch, gen, steps):
            hs = [x_all[idx].expand(members, -1, -1)]
            for l, (w, b, _, _) in enumerate(views):
                z = torch.baddbmm(b.unsqueeze(1), hs[-1], w.transpose(1, 2))
                hs.append(z if l == last else torch.sigmoid(z.mul_(2)).mul_(2).sub_(1))
            g = hs.pop().sub_(y_all[idx]).mul_(2.0 / (batch * 7))
            for l in range(last, -1, -1):
                w, _, gw, gb = views[l]
                gw.copy_(torch.bmm(g.transpose(1, 2), hs[l]))
                gb.copy_(g.sum(1))
                if l:
                    g = torch.ops.aten.tanh_backward(torch.bmm(g, w), hs[l])
            opt.step()
            state = opt.state[flat]
            torch._foreach_mul_([flat, state["exp_avg"], state["exp_avg_sq"]], [keep, keep, keep])
    return run


def _compiled(cfg: MothConfig, data: Any) -> Callable[[int], None]:
    """Not the study (``--compile``): its stacked step with the forward and backward under
    ``torch.compile`` (inductor's C++ kernels; needs a compiler), the flat fused Adam and masks as in
    the study. The first call compiles (timed and printed)."""
    model, opt = _study_model(cfg)

    def forward_backward(x: Tensor, y: Tensor) -> Tensor:
        loss = ((model(x) - y) ** 2).mean(dim=(1, 2))
        loss.sum().backward()
        return loss.detach()

    fb = torch.compile(forward_backward)
    x_all, y_all, n, batch = data.train.x, data.train.y, len(data.train.x), cfg.train.batch_size
    gen = torch_generator(0, "bench-order")

    def run(steps: int) -> None:
        for idx in _minibatches(n, batch, gen, steps):
            opt.zero_grad(set_to_none=True)
            fb(x_all[idx], y_all[idx])
            opt.step()
    t = time.perf_counter()
    run(2)
    print(f"   (torch.compile of the forward and backward: {time.perf_counter() - t:.1f} s for the first steps)")
    return run


def _timed(fn: Callable[[int], None], steps: int) -> float:
    t = time.perf_counter()
    fn(steps)
    return time.perf_counter() - t


def ensemble_ratio(hidden: list[int], members: int, batch: int, steps: int, blocks: int) -> None:
    """Member-steps/s of the sides in alternating blocks (A, B, C, A, B, C, ...): median ratio and spread."""
    cfg, data = _plateau_free(hidden, members, batch), _data()
    sides = {"stacked": _stacked(cfg, data), "one at a time (torch.tanh, default Adam)": _one_at_a_time(cfg, data, False),
             f"one at a time ({cfg.model.activation}, fused Adam)": _one_at_a_time(cfg, data, True),
             "by hand, no autograd": _by_hand(cfg, data)}
    if "--compile" in sys.argv:
        sides["compiled"] = _compiled(cfg, data)
    for fn in sides.values():
        fn(10)  # warm-up (allocator, Adam state)
    rates: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(blocks):
        for name, fn in sides.items():
            rates[name].append(members * steps / _timed(fn, steps))
    print(f"\n2. ensemble training, network 10-{'-'.join(map(str, hidden))}-7 ({cfg.model.activation}), P={members}, "
          f"batch {batch}, 50 % masked, {blocks} alternating blocks of {steps} steps, {torch.get_num_threads()} thread(s)")
    s = rates["stacked"]
    print(f"   stacked (the study's train_to_plateau): median {statistics.median(s):8.0f} member-steps/s")
    for name in list(sides)[1:3]:
        r = [a / b for a, b in zip(s, rates[name])]
        print(f"   {name:42s}: median {statistics.median(rates[name]):8.0f} member-steps/s   "
              f"ratio median {statistics.median(r):.2f}x (min {min(r):.2f}, max {max(r):.2f})")
    h = rates["by hand, no autograd"]
    r = [a / b for a, b in zip(h, rates["one at a time (torch.tanh, default Adam)"])]
    print(f"   not the study: the step by hand, no autograd (the eager kernels' floor): median {statistics.median(h):8.0f} "
          f"member-steps/s, {statistics.median(r):.2f}x the plain loop (min {min(r):.2f}, max {max(r):.2f})")
    if "compiled" in rates:
        c = rates["compiled"]
        r = [a / b for a, b in zip(c, s)]
        print(f"   not the study: its step under torch.compile: median {statistics.median(c):8.0f} member-steps/s, "
              f"{statistics.median(r):.2f}x the eager study step (min {min(r):.2f}, max {max(r):.2f})")


def _shard_worker(hidden: list[int], members: int, first: int, batch: int, conn: Any) -> None:
    """One shard of the quick preset's set-up: its members stacked, one thread; runs blocks on request."""
    torch.set_num_threads(1)
    cfg, data = _plateau_free(hidden, members, batch), _data()
    model, opt = _study_model(cfg, first)
    gen = torch_generator(first, "bench-order")
    ensemble.train_to_plateau(model, opt, data, cfg, gen, 10)
    conn.send("ready")
    while (steps := conn.recv()) > 0:
        t = time.perf_counter()
        ensemble.train_to_plateau(model, opt, data, cfg, gen, steps)
        conn.send(time.perf_counter() - t)


def machine_ratio(hidden: list[int], members: int, shards: int, batch: int, steps: int, blocks: int) -> None:
    """The quick preset's set-up on the whole machine, ``shards`` processes of ``members / shards``
    stacked members (one thread each, as ``--workers`` runs them) against the one-at-a-time loop
    with 1 and with ``shards`` threads, in alternating blocks; member-steps/s of all members."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    per = members // shards
    pipes, procs = [], []
    for k in range(shards):
        a, b = ctx.Pipe()
        proc = ctx.Process(target=_shard_worker, args=(hidden, per, k * per, batch, b), daemon=True)
        proc.start()
        pipes.append(a)
        procs.append(proc)
    assert all(c.recv() == "ready" for c in pipes)
    cfg, data = _plateau_free(hidden, members, batch), _data()
    loop = _one_at_a_time(cfg, data, False)
    loop(10)
    rates: dict[str, list[float]] = {"shards": [], "loop, 1 thread": [], f"loop, {shards} threads": []}
    for _ in range(blocks):
        t = time.perf_counter()
        for c in pipes:
            c.send(steps)
        for c in pipes:
            c.recv()
        rates["shards"].append(per * shards * steps / (time.perf_counter() - t))
        for name, n in (("loop, 1 thread", 1), (f"loop, {shards} threads", shards)):
            torch.set_num_threads(n)
            rates[name].append(members * steps / _timed(loop, steps))
    for c in pipes:
        c.send(0)
    for proc in procs:
        proc.join()
    torch.set_num_threads(THREADS)
    best = [max(a, b) for a, b in zip(rates["loop, 1 thread"], rates[f"loop, {shards} threads"])]
    r = [a / b for a, b in zip(rates["shards"], best)]
    print(f"\n2b. the quick preset's set-up on this machine: {shards} shard processes x {per} stacked members "
          f"(1 thread each), batch {batch}, {blocks} alternating blocks of {steps} steps")
    for name, v in rates.items():
        print(f"   {name:20s}: median {statistics.median(v):8.0f} member-steps/s")
    print(f"   ratio shards / the faster loop: median {statistics.median(r):.2f}x (min {min(r):.2f}, max {max(r):.2f})")


def _flops_rate(hidden: list[int], members: int, steps: int) -> float:
    cfg, data = _plateau_free(hidden, members, 128), _data()
    fn = _stacked(cfg, data)
    fn(3)
    return max(members * steps / _timed(fn, steps) for _ in range(3))


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
    torch.set_num_threads(THREADS)
    print(f"threads: torch {torch.get_num_threads()} (OMP/MKL/OpenBLAS {THREADS}), load average {os.getloadavg()}")
    if "--ensemble" not in sys.argv:
        simulator()
    quick = load_preset("moth", "quick")
    hidden, members = list(quick["model"]["hidden"]), int(quick["members"])
    steps, blocks = (30, 5) if QUICK else (100, 9)
    ensemble_ratio(hidden, members, 128, steps, blocks)
    ensemble_ratio(hidden, members, int(quick["train"]["batch_size"]), steps, blocks)
    for batch in (128, int(quick["train"]["batch_size"])):
        machine_ratio(hidden, members, int(quick["shards"]), batch, steps, blocks)
    if "--ensemble" in sys.argv:
        return
    p_members = 8 if QUICK else 16
    paper = [400, 400, 400, 16]
    weights = sum(a * b for a, b in zip([10, *paper], [*paper, 7]))
    ens_p = _flops_rate(paper, p_members, 10 if QUICK else 20)
    flops = ens_p * 6 * weights * 128
    pk = peak()
    print(f"\n3. paper network 10-400-400-400-16-7, P={p_members}, batch 128: {ens_p:.0f} member-steps/s = "
          f"{flops / 1e9:.2f} GFLOP/s; dense matmul peak {pk / 1e9:.2f} GFLOP/s; fraction {flops / pk:.2f}")


if __name__ == "__main__":
    main()
