"""Cost of masks in training: an Adam step with masks enforced vs the same step without masks.

Masks are state (boolean buffers) enforced by an optimizer step post-hook
(:func:`sciprune.core._masks.enforce_masks`): the forward and backward passes stay plain dense
passes, and each step multiplies each masked parameter and its Adam moments by a cached float
copy of its mask (a boolean ``masked_fill_`` was ~50x slower per call on CPU). Each
configuration builds three identical MLPs, masks 80 % of every weight matrix of one (unstructured,
random), and times full training steps (zero_grad, forward, loss, backward, step) of all three,
interleaved in blocks (rotating which goes first) so that machine noise hits them alike.
Ratio = masked / plain of the fastest block of each (goal <= 1.05); the quartiles of the
per-pair ratios are printed too, the same ratio for a second plain copy (A/A: the noise floor)
and the hook's own time, measured alone.

Two more tables, timed the same way:

* **gradient masking** (:func:`sciprune.core._masks.mask_gradients`, opt-in, for clipping /
  L-BFGS / gradient criteria): the masked step with ``enforce_masks(..., gradients=True)`` vs
  the masked step without it;
* **stacked ensemble** (:class:`sciprune.nn.stacked.StackedMLP`): one training step of ``P``
  members (one ``baddbmm`` per layer) vs ``P`` separate MLPs stepped one after the other (the
  baseline a loop gives), and the stacked step with per-member masks vs without.

Run: ``python benchmarks/bench_masks.py`` (a few minutes on one core).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from sciprune.core import enforce_masks, mask_gradients, set_mask, torch_generator
from sciprune.nn.mlp import MLP  # noqa: E402
from sciprune.nn.stacked import StackedMLP  # noqa: E402

CONFIGS = [  # (sizes, activation, batch, steps per block)
    ([784, 256, 256, 10], "relu", 128, 40),
    ([2, 64, 64, 64, 1], "tanh", 1024, 40),
]
BLOCKS = 15
SPARSITY = 0.8


ENSEMBLES = [  # (members, sizes, activation, batch, steps per block)
    (16, [2, 64, 64, 1], "tanh", 256, 20),
    (64, [1, 32, 32, 1], "tanh", 128, 20),
]


def _mask_all(model: torch.nn.Module) -> None:
    for l, layer in enumerate(model.layers):
        gen = torch_generator(0, "mask", l)
        set_mask(model, f"layers.{l}.weight", torch.rand(layer.weight.shape, generator=gen) >= SPARSITY)


def make_trainer(sizes: list[int], act: str, masked: bool, gradients: bool = False):
    model = MLP(sizes, act, generator=torch_generator(0, "bench_masks", len(sizes)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if masked:
        _mask_all(model)
        enforce_masks(model, opt, gradients=gradients)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    step.model = model  # type: ignore[attr-defined]
    return step, opt


def hook_ms(opt: torch.optim.Optimizer, repeats: int = 200) -> float:
    """Median time of the optimizer's post-step hooks called alone (the masks' whole cost)."""
    hooks = list(opt._optimizer_step_post_hooks.values())  # private, but the direct measurement
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for hook in hooks:
            hook(opt, (), {})
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def previous_hook(model: torch.nn.Module):
    """The hook as it was before issue 6, for an A/B on the same state: masks cached by
    ``(id(mask), mask._version)`` (the D1 defect), one owner per parameter (D4), one ``mul_`` per
    tensor."""
    owners = {}
    for module in model.modules():
        for local, param in module.named_parameters(recurse=False):
            owners[id(param)] = (module, local + "_mask")
    cache: dict = {}

    @torch.no_grad()
    def hook(opt: torch.optim.Optimizer, args, kwargs) -> None:
        for group in opt.param_groups:
            for p in group["params"]:
                owner = owners.get(id(p))
                mask = getattr(owner[0], owner[1], None) if owner else None
                if not isinstance(mask, torch.Tensor):
                    continue
                key = (id(mask), mask._version)
                hit = cache.get(id(p))
                if hit is None or hit[:2] != key:
                    hit = (*key, mask.to(p.dtype))
                    cache[id(p)] = hit
                p.mul_(hit[2])
                for value in opt.state.get(p, {}).values():
                    if isinstance(value, torch.Tensor) and value.shape == p.shape and value.is_floating_point():
                        value.mul_(hit[2])

    return hook


def hook_before_after(repeats: int = 400) -> None:
    """The post-step hook now (identity-keyed cache, shared owners, one ``torch._foreach_mul_``)
    against the previous hook, alternating on the same optimizer state; medians."""
    print("\nMask hook alone: now (D1/D4 fixed, fused foreach) vs before (per-tensor mul_), same state")
    head = f"{'MLP':>22} {'before ms':>9} {'now ms':>7} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for sizes, act, batch, _ in CONFIGS:
        gen = torch_generator(0, "data", batch)
        x, y = torch.randn(batch, sizes[0], generator=gen), torch.randn(batch, sizes[-1], generator=gen)
        step, opt = make_trainer(sizes, act, True)
        for _ in range(3):
            step(x, y)
        now = list(opt._optimizer_step_post_hooks.values())
        before = previous_hook(step.model)  # type: ignore[attr-defined]
        t_before, t_now = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            before(opt, (), {})
            t_before.append(time.perf_counter() - start)
            start = time.perf_counter()
            for hook in now:
                hook(opt, (), {})
            t_now.append(time.perf_counter() - start)
        a, b = statistics.median(t_before) * 1e3, statistics.median(t_now) * 1e3
        print(f"{'-'.join(map(str, sizes)):>22} {a:>9.3f} {b:>7.3f} {b / a:>6.2f}")


def interleaved(trainers: dict, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict[str, list[float]]:
    """Seconds per step of each trainer, per block, blocks interleaved with rotating order."""
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for step in trainers.values():  # warm-up (Adam state allocation)
        for _ in range(5):
            step(x, y)
    names = list(trainers)
    for block in range(BLOCKS):
        r = block % len(names)
        for name in names[r:] + names[:r]:
            step = trainers[name]
            start = time.perf_counter()
            for _ in range(steps):
                step(x, y)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def backward_ms(sizes: list[int], act: str, batch: int, repeats: int = 200) -> tuple[float, float]:
    """Median backward time without and with gradient-masking hooks (alternating), in ms."""
    gen = torch_generator(0, "data", batch)
    x = torch.randn(batch, sizes[0], generator=gen)
    nets = []
    for hooked in (False, True):
        net = MLP(sizes, act, generator=torch_generator(0, "bench_masks", len(sizes)))
        _mask_all(net)
        if hooked:
            mask_gradients(net)
        nets.append(net)
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for net, t in zip(nets, times):
            net.zero_grad(set_to_none=True)
            loss = net(x).pow(2).mean()
            start = time.perf_counter()
            loss.backward()
            t.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def gradient_masking_table() -> None:
    print("\nGradient masking (opt-in): masked step with gradients=True vs the masked step without;")
    print("backward ms: the backward pass alone (median) without / with the hooks")
    head = (f"{'MLP':>22} {'batch':>6} {'masked ms':>10} {'+grad ms':>9} {'ratio':>6} {'A/A':>6} "
            f"{'backward ms':>15}")
    print(head)
    print("-" * len(head))
    for sizes, act, batch, steps in CONFIGS:
        gen = torch_generator(0, "data", batch)
        x, y = torch.randn(batch, sizes[0], generator=gen), torch.randn(batch, sizes[-1], generator=gen)
        trainers = {"masked": make_trainer(sizes, act, True)[0], "grad": make_trainer(sizes, act, True, True)[0],
                    "control": make_trainer(sizes, act, True)[0]}
        t = {k: min(v) for k, v in interleaved(trainers, x, y, steps).items()}
        b0, b1 = backward_ms(sizes, act, batch)
        print(f"{'-'.join(map(str, sizes)):>22} {batch:>6} {t['masked'] * 1e3:>10.3f} {t['grad'] * 1e3:>9.3f} "
              f"{t['grad'] / t['masked']:>6.3f} {t['control'] / t['masked']:>6.3f} {f'{b0:.3f} / {b1:.3f}':>15}")


def make_stacked(members: int, sizes: list[int], act: str, masked: bool):
    model = StackedMLP(members, sizes, act, generator=torch_generator(0, "init"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if masked:
        _mask_all(model)
        enforce_masks(model, opt)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y.expand(members, -1, -1)).backward()
        opt.step()

    return step


def make_loop(members: int, sizes: list[int], act: str):
    models = [MLP(sizes, act, generator=torch_generator(0, "member", p)) for p in range(members)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        for m, opt in zip(models, opts):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(m(x), y).backward()
            opt.step()

    return step


def ensemble_table() -> None:
    print("\nStacked ensemble: one step of P members (StackedMLP, one baddbmm per layer) vs P separate MLPs")
    head = (f"{'P x MLP':>18} {'batch':>6} {'loop ms':>8} {'stacked ms':>10} {'speed-up':>8} "
            f"{'masked ms':>9} {'masked/plain':>12}")
    print(head)
    print("-" * len(head))
    for members, sizes, act, batch, steps in ENSEMBLES:
        gen = torch_generator(0, "data", batch)
        x, y = torch.randn(batch, sizes[0], generator=gen), torch.randn(batch, sizes[-1], generator=gen)
        trainers = {"loop": make_loop(members, sizes, act), "stacked": make_stacked(members, sizes, act, False),
                    "masked": make_stacked(members, sizes, act, True)}
        t = {k: min(v) for k, v in interleaved(trainers, x, y, steps).items()}
        print(f"{f'{members} x ' + '-'.join(map(str, sizes)):>18} {batch:>6} {t['loop'] * 1e3:>8.2f} "
              f"{t['stacked'] * 1e3:>10.3f} {t['loop'] / t['stacked']:>8.1f} {t['masked'] * 1e3:>9.3f} "
              f"{t['masked'] / t['stacked']:>12.3f}")


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, torch threads = {torch.get_num_threads()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPUs, shared)")
    print(f"Adam, MSE loss, {SPARSITY:.0%} of each weight matrix masked; {BLOCKS} interleaved blocks\n")
    head = (f"{'MLP':>22} {'batch':>6} {'plain ms/step':>13} {'masked ms/step':>14} {'ratio':>6} "
            f"{'pair ratios (quartiles)':>24} {'A/A':>6} {'hook ms':>7}")
    print(head)
    print("-" * len(head))
    for sizes, act, batch, steps in CONFIGS:
        gen = torch_generator(0, "data", batch)
        x = torch.randn(batch, sizes[0], generator=gen)
        y = torch.randn(batch, sizes[-1], generator=gen)
        masked_step, masked_opt = make_trainer(sizes, act, True)
        trainers = {"plain": make_trainer(sizes, act, False)[0], "masked": masked_step,
                    "control": make_trainer(sizes, act, False)[0]}  # a second plain copy: A/A
        times: dict[str, list[float]] = {k: [] for k in trainers}
        for name, step in trainers.items():  # warm-up (Adam state allocation)
            for _ in range(5):
                step(x, y)
        names = list(trainers)
        for block in range(BLOCKS):  # rotate which side goes first, so that drift cancels
            for name in names[block % 3 :] + names[: block % 3]:
                step = trainers[name]
                start = time.perf_counter()
                for _ in range(steps):
                    step(x, y)
                times[name].append((time.perf_counter() - start) / steps)
        pairs = sorted(m / p for m, p in zip(times["masked"], times["plain"]))
        q1, q2, q3 = statistics.quantiles(pairs, n=4)
        plain, masked = min(times["plain"]), min(times["masked"])
        label = "-".join(map(str, sizes))
        print(f"{label:>22} {batch:>6} {plain * 1e3:>13.3f} {masked * 1e3:>14.3f} {masked / plain:>6.3f} "
              f"{f'{q1:.3f} / {q2:.3f} / {q3:.3f}':>24} {min(times['control']) / plain:>6.3f} "
              f"{hook_ms(masked_opt):>7.3f}")
    print("\nplain and masked ms/step: the fastest block of each; ratio = masked / plain of those (goal <= 1.05);")
    print("pair ratios: quartiles over the block pairs of masked / plain, a measure of the machine's noise;")
    print("A/A: the same ratio for a second, identical plain copy (1.000 on a quiet machine): the noise floor;")
    print("hook ms: the mask-enforcing post-step hook timed alone (median), the masks' whole cost per step.")
    hook_before_after()
    gradient_masking_table()
    ensemble_table()
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
