"""Cost of masks in training: an Adam step with masks enforced vs the same step without masks.

Masks are state (boolean buffers) enforced by an optimizer step post-hook
(:func:`sciprune.core.masks.enforce_masks`): the forward and backward passes stay plain dense
passes, and each step pays one ``masked_fill_`` per masked parameter and per Adam moment. Each
configuration builds two identical MLPs, masks 80 % of every weight matrix of one (unstructured,
random), and times full training steps (zero_grad, forward, loss, backward, step) of both,
interleaved in blocks so that machine noise hits both alike. Ratio = masked / plain (goal <= 1.05).

Run: ``python benchmarks/bench_masks.py`` (under a minute on one core).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from sciprune.core.masks import enforce_masks, set_mask  # noqa: E402
from sciprune.core.seeding import torch_generator  # noqa: E402
from sciprune.nn.mlp import MLP  # noqa: E402

CONFIGS = [  # (sizes, activation, batch, steps per block)
    ([784, 256, 256, 10], "relu", 128, 40),
    ([2, 64, 64, 64, 1], "tanh", 1024, 40),
]
BLOCKS = 7
SPARSITY = 0.8


def make_trainer(sizes: list[int], act: str, masked: bool):
    model = MLP(sizes, act, generator=torch_generator(0, "bench_masks", len(sizes)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if masked:
        for l, layer in enumerate(model.layers):
            gen = torch_generator(0, "mask", l)
            set_mask(model, f"layers.{l}.weight", torch.rand(layer.weight.shape, generator=gen) >= SPARSITY)
        enforce_masks(model, opt)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPUs, shared)")
    print(f"Adam, MSE loss, {SPARSITY:.0%} of each weight matrix masked; median over {BLOCKS} interleaved blocks\n")
    head = f"{'MLP':>22} {'batch':>6} {'plain ms/step':>13} {'masked ms/step':>14} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for sizes, act, batch, steps in CONFIGS:
        gen = torch_generator(0, "data", batch)
        x = torch.randn(batch, sizes[0], generator=gen)
        y = torch.randn(batch, sizes[-1], generator=gen)
        trainers = {"plain": make_trainer(sizes, act, False), "masked": make_trainer(sizes, act, True)}
        times: dict[str, list[float]] = {k: [] for k in trainers}
        for name, step in trainers.items():  # warm-up (Adam state allocation)
            for _ in range(5):
                step(x, y)
        for _ in range(BLOCKS):
            for name, step in trainers.items():
                start = time.perf_counter()
                for _ in range(steps):
                    step(x, y)
                times[name].append((time.perf_counter() - start) / steps)
        plain, masked = statistics.median(times["plain"]), statistics.median(times["masked"])
        label = "-".join(map(str, sizes))
        print(f"{label:>22} {batch:>6} {plain * 1e3:>13.3f} {masked * 1e3:>14.3f} {masked / plain:>6.3f}")
    print("\nratio = masked / plain step time (goal <= 1.05)")


if __name__ == "__main__":
    main()
