"""How much faster N single-threaded processes finish N equal pieces of work than one process does one.

    python benchmarks/parallel_ceiling.py [--procs 2] [--seconds 20]

The ceiling a study's ``--workers N`` speed-up can reach on this machine, whatever its scheduling:
each piece is the same work (a fixed number of iterations, calibrated alone to take about
``--seconds``), run first by one process alone and then by ``--procs`` processes at once (spawned,
one torch thread each, ``OMP_NUM_THREADS=1``). Printed per workload: the time of the piece alone,
the mean time of a piece when all run together, and the ceiling ``procs × alone / together`` (``procs``
would be perfect scaling). Two workloads:

* ``flows quick CNF step``: training steps of the flows ``quick`` preset's density network (l3_h32
  sigmoid field, rk4 with 8 steps, Hutchinson trace, batch 256): the work of a flows quick task;
* ``flows paper_slice CNF step``: the same at the paper's field (``presets/paper_slice.yaml``: l4_h64,
  dopri5 + adjoint at 1e-5, batch 1,024; the field at initialisation, ~40 evaluations a step);
* ``matmul 64``: a 64×64 float32 matrix product in a loop (cache-resident: compute only).

Run it on an idle machine; the numbers go into docs/benchmarks.md ("Parallel ceiling").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _flows_step(preset: str = "quick"):
    import torch
    import yaml

    from sciprune.studies.flows.config import FlowsConfig
    from sciprune.studies.flows.tasks import build_model, load_toy, tasks

    raw = yaml.safe_load((ROOT / f"src/sciprune/studies/flows/presets/{preset}.yaml").read_text())
    raw.pop("study")
    cfg = FlowsConfig.model_validate(raw)
    task = tasks(cfg)[0]
    data, model = load_toy(cfg, task), build_model(task, cfg.seed)
    xb = data.x_train[: task.cfg.train.batch_size]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-9)
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.nll(xb, generator=g).backward()
        opt.step()

    return step


def _matmul():
    import torch

    a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))

    def step() -> None:
        b = a
        for _ in range(50):
            b = torch.tanh(b @ a)

    return step


WORKLOADS = {"flows quick CNF step": _flows_step, "flows paper_slice CNF step": lambda: _flows_step("paper_slice"),
             "matmul 64": _matmul}


def _piece(name: str, iters: int, start, out) -> None:
    import torch

    torch.set_num_threads(1)
    step = WORKLOADS[name]()
    step()  # warm-up outside the timed part
    start.wait()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    out.put(time.perf_counter() - t0)


def _run(name: str, iters: int, procs: int) -> list[float]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_piece, args=(name, iters, start, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    times = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2, help="processes run at once (default 2)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of one piece alone, about (default 20)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    print(f"{'workload':<28} {'alone s':>9} {'together s':>11} {'ceiling':>8}  (perfect: {args.procs})")
    for name in WORKLOADS:
        probe = _run(name, 5, 1)[0] / 5
        iters = max(5, round(args.seconds / probe))
        alone = _run(name, iters, 1)[0]
        together = _run(name, iters, args.procs)
        mean = sum(together) / len(together)
        print(f"{name:<28} {alone:>9.2f} {mean:>11.2f} {args.procs * alone / mean:>7.2f}x")


if __name__ == "__main__":
    main()
