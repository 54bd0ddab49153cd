"""ID pruning throughput: batched ``id_prune`` vs one element at a time vs a SciPy per-element baseline.

Setup as in the adaptive-mesh study: a 2 -> w x4 -> 1 ReLU MLP (w = 32 and 256, seeded random
weights), 256 samples per sample set drawn uniformly in a box of side h placed at random in the
unit square (one box = one mesh element), eps = 1e-3. Measured side by side in one process:

* ``batched``: one ``id_prune(..., errors=False)`` call for all elements (best of 3), as the
  adaptive-mesh study calls it, ``method="auto"`` (the Gram path at w = 32, the pivoted-QR path
  at w = 256); ``+errors``: the same computing the relative ID errors too (the default);
  ``other``: ``batched`` with the other method;
* ``loop``: ``id_prune`` called once per element (the same code, B = 1);
* ``scipy``: a per-element re-implementation of the reference procedure (PruningAMR §3.2:
  float32 forward, ``scipy.linalg.qr(pivoting=True)`` per layer, diagonal-ratio rank,
  ``T = [I | R11⁻¹ R12] Πᵀ`` by ``torch.linalg.solve``, weight update);
* ``ref``: the reference implementation's published per-element cost (2-3 ms at w = 32,
  12-23 ms at w = 256, measured on another machine): the project's goal is >= 10x faster.

Run: ``python benchmarks/bench_id.py`` (about a minute on one core).

``python benchmarks/bench_id.py --device cuda [--width 256]``: the batched call on the device against
the same call on one CPU thread, side by side (the device timed between synchronisations, best of 3),
with the ranks of both (the ID in float64 on either device: they should agree).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402

from sciprune.core._idfactor import resolve  # noqa: E402
from sciprune.core import id_prune, torch_generator
from sciprune.nn.mlp import MLP  # noqa: E402

EPS = 1e-3
N_SAMPLES = 256
REFERENCE_MS = {32: (2.0, 3.0), 256: (12.0, 23.0)}
CASES = [  # (width, box side h, elements per batched call, elements in the per-element loops)
    (32, 1 / 8, 1024, 48),
    (32, 1 / 4, 1024, 48),
    (256, 1 / 8, 128, 8),
    (256, 1 / 4, 128, 8),
]


def best_of(fn, repeats: int = 3, device: torch.device | None = None) -> float:
    sync = (lambda: torch.cuda.synchronize(device)) if device is not None and device.type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def scipy_reference(mlp: MLP, x: torch.Tensor, eps: float) -> list[int]:
    """One element the reference way (float32 geqp3 per layer); returns the ranks."""
    with torch.no_grad():
        hidden = mlp.hidden(x)[:-1]
    ws = [layer.weight.detach() for layer in mlp.layers]
    bs = [layer.bias.detach() for layer in mlp.layers]
    new_w, new_b, ks, t_prev = [], [], [], None
    for l, a in enumerate(hidden):
        _, r, perm = scipy.linalg.qr(a.numpy(), pivoting=True, mode="economic")
        k = min(r.shape)
        while k > 1 and abs(r[k - 1, k - 1] / r[0, 0]) < eps:
            k -= 1
        r = torch.from_numpy(r)
        t = torch.zeros(k, a.shape[1])
        t[:, torch.from_numpy(perm)] = torch.cat([torch.eye(k), torch.linalg.solve(r[:k, :k], r[:k, k:])], 1)
        idx = torch.from_numpy(perm[:k].copy())
        w = ws[l][idx]
        new_w.append(w if t_prev is None else w @ t_prev.T)
        new_b.append(bs[l][idx])
        ks.append(k)
        t_prev = t
    new_w.append(ws[-1] @ t_prev.T)
    new_b.append(bs[-1])
    return ks


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}, numpy {np.__version__}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPUs, shared)")
    print(f"eps = {EPS}, {N_SAMPLES} samples per element, MLP 2 -> w x4 -> 1 (ReLU)\n")
    head = (
        f"{'w':>4} {'h':>5} {'mean ranks':>24} {'batched ms/el':>13} {'el/s':>6} {'+errors':>7} {'other':>12} {'loop ms/el':>10} "
        f"{'scipy ms/el':>11} {'x loop':>7} {'x scipy':>8} {'x ref':>11}"
    )
    print(head)
    print("-" * len(head))
    for width, h, n_batch, n_loop in CASES:
        gen = torch_generator(0, "bench_id", width)
        mlp = MLP([2, width, width, width, width, 1], "relu", generator=gen)
        corners = torch.rand(n_batch, 1, 2, generator=gen) * (1 - h)
        x = corners + torch.rand(n_batch, N_SAMPLES, 2, generator=gen) * h
        id_prune(mlp, x[:2], eps=EPS)  # warm-up
        t_batch = best_of(lambda: id_prune(mlp, x, eps=EPS, errors=False)) / n_batch
        t_errors = best_of(lambda: id_prune(mlp, x, eps=EPS)) / n_batch
        ranks = id_prune(mlp, x, eps=EPS).ranks.double().mean(0).tolist()
        other = "qr" if resolve("auto", EPS, width) == "gram" else "gram"
        t_other = best_of(lambda: id_prune(mlp, x, eps=EPS, method=other, errors=False), 2) / n_batch
        t_loop = best_of(lambda: [id_prune(mlp, x[b], eps=EPS, errors=False) for b in range(n_loop)], 2) / n_loop
        t_scipy = best_of(lambda: [scipy_reference(mlp, x[b], EPS) for b in range(n_loop)], 2) / n_loop
        lo, hi = REFERENCE_MS[width]
        print(
            f"{width:>4} {h:>5.3f} {'[' + ', '.join(f'{r:.1f}' for r in ranks) + ']':>24} "
            f"{t_batch * 1e3:>13.3f} {1 / t_batch:>6.0f} {t_errors * 1e3:>7.3f} {f'{other} {t_other * 1e3:.3f}':>12} "
            f"{t_loop * 1e3:>10.3f} {t_scipy * 1e3:>11.3f} "
            f"{t_loop / t_batch:>7.1f} {t_scipy / t_batch:>8.1f} "
            f"{f'{lo / (t_batch * 1e3):.0f}-{hi / (t_batch * 1e3):.0f}':>11}"
        )
    print("\n+errors: the batched call with errors=True (ms/el); other: with the method 'auto' did not pick;")
    print("x loop / x scipy: speedup of the batched call over the per-element loops in this run;")
    print("x ref: speedup over the reference implementation's published per-element cost.")


def device_main(device: torch.device, widths: list[int]) -> None:
    """The batched ``id_prune`` on ``device`` vs on one CPU thread, same inputs, one process."""
    torch.set_num_threads(1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"torch {torch.__version__}, device {device} ({name}); CPU side: 1 thread")
    print(f"{'w':>4} {'h':>5} {'elements':>8} {'cpu ms/el':>10} {'device ms/el':>12} {'cpu/device':>10} {'ranks equal':>11}")
    for width, h, n_batch, _ in CASES:
        if width not in widths:
            continue
        gen = torch_generator(0, "bench_id", width)
        mlp = MLP([2, width, width, width, width, 1], "relu", generator=gen)
        corners = torch.rand(n_batch, 1, 2, generator=gen) * (1 - h)
        x = corners + torch.rand(n_batch, N_SAMPLES, 2, generator=gen) * h
        mlp_d, x_d = MLP.from_arch(mlp.arch).to(device), x.to(device)
        mlp_d.load_state_dict(mlp.state_dict())
        id_prune(mlp, x[:2], eps=EPS)
        id_prune(mlp_d, x_d[:2], eps=EPS)  # warm-up (kernels, workspace)
        t_cpu = best_of(lambda: id_prune(mlp, x, eps=EPS, errors=False)) / n_batch
        t_dev = best_of(lambda: id_prune(mlp_d, x_d, eps=EPS, errors=False), device=device) / n_batch
        same = torch.equal(id_prune(mlp, x, eps=EPS, errors=False).ranks, id_prune(mlp_d, x_d, eps=EPS, errors=False).ranks.cpu())
        print(f"{width:>4} {h:>5.3f} {n_batch:>8} {t_cpu * 1e3:>10.3f} {t_dev * 1e3:>12.4f} {t_cpu / t_dev:>10.1f} {str(same):>11}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="ID pruning throughput (see the module docstring)")
    ap.add_argument("--device", default="cpu", help="cpu: the full CPU comparison; cuda[:N]: device vs one CPU thread")
    ap.add_argument("--width", type=int, action="append", help="widths to run with --device (default: 32 and 256)")
    args = ap.parse_args()
    if args.device == "cpu":
        main()
    else:
        device_main(torch.device(args.device), args.width or [32, 256])
