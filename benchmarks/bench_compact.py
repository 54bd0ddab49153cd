"""Inference speed of compacted networks against the ideal FLOP ratio.

A 2-256-256-256-256-1 ReLU MLP; 50, 75 and 90 % of the neurons of every hidden layer are removed
by structured masks (row, bias and column), then :func:`sciprune.core._compact.compact` builds the
smaller dense network. Measured side by side in one run, at batch 1, 4,096 and 65,536:

* dense: the original network; compact: the compacted one (its outputs are checked equal);
* speedup = t_dense / t_compact; ideal = FLOPs(dense) / FLOPs(compact) (``core.count.mlp_flops``);
* efficiency = speedup / ideal (goal >= 0.7 at the large batch).

Run: ``python benchmarks/bench_compact.py`` (about a minute on one core).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import torch  # noqa: E402

from sciprune.core import compact, mlp_flops, set_mask, torch_generator
from sciprune.nn.mlp import MLP  # noqa: E402

SIZES = [2, 256, 256, 256, 256, 1]
FRACTIONS = (0.5, 0.75, 0.9)
BATCHES = {1: 2000, 4096: 40, 65536: 5}  # batch -> forward passes per timing


def best_time(model: torch.nn.Module, x: torch.Tensor, calls: int, repeats: int = 5) -> float:
    """Best over ``repeats`` of the mean time of ``calls`` forward passes (seconds per pass)."""
    with torch.inference_mode():
        model(x)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                model(x)
            best = min(best, (time.perf_counter() - start) / calls)
    return best


def structured_prune(mlp: MLP, fraction: float, seed: int) -> None:
    """Mask ``fraction`` of the neurons of every hidden layer (row, bias, outgoing column)."""
    for l in range(len(mlp.sizes) - 2):
        width = mlp.sizes[l + 1]
        gen = torch_generator(seed, "neurons", l)
        dead = torch.randperm(width, generator=gen)[: round(fraction * width)]
        keep = torch.ones(width, dtype=torch.bool)
        keep[dead] = False
        set_mask(mlp, f"layers.{l}.weight", keep.unsqueeze(1).expand_as(mlp.layers[l].weight))
        set_mask(mlp, f"layers.{l}.bias", keep)
        set_mask(mlp, f"layers.{l + 1}.weight", keep.unsqueeze(0).expand_as(mlp.layers[l + 1].weight))


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPUs, shared)")
    print(f"MLP {SIZES} ReLU, float32, inference_mode\n")
    dense = MLP(SIZES, "relu", generator=torch_generator(0, "bench_compact"))
    inputs = {b: torch.rand(b, 2, generator=torch_generator(0, "x", b)) for b in BATCHES}
    head = (
        f"{'removed':>7} {'sizes':>26} {'batch':>6} {'dense ms':>10} {'compact ms':>10} "
        f"{'speedup':>7} {'ideal':>6} {'efficiency':>10}"
    )
    print(head)
    print("-" * len(head))
    t_dense = {b: best_time(dense, x, BATCHES[b]) for b, x in inputs.items()}
    for fraction in FRACTIONS:
        pruned = MLP(SIZES, "relu", generator=None)
        pruned.load_state_dict(dense.state_dict())
        structured_prune(pruned, fraction, seed=1)
        small = compact(pruned)
        x_check = inputs[65536][:1024]
        with torch.inference_mode():
            assert torch.allclose(small(x_check), pruned(x_check), atol=1e-5)
        ideal = mlp_flops(dense) / mlp_flops(small)
        for b, x in inputs.items():
            t_small = best_time(small, x, BATCHES[b])
            speedup = t_dense[b] / t_small
            print(
                f"{fraction:>7.0%} {str(small.sizes):>26} {b:>6} {t_dense[b] * 1e3:>10.4f} "
                f"{t_small * 1e3:>10.4f} {speedup:>7.2f} {ideal:>6.2f} {speedup / ideal:>10.2f}"
            )
    print("\nspeedup = t_dense / t_compact; ideal = FLOPs(dense) / FLOPs(compact); efficiency = speedup / ideal")


if __name__ == "__main__":
    main()
