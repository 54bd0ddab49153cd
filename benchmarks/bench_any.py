"""Any network, side by side with Torch-Pruning (DepGraph): sciprune's traced units vs Torch-Pruning 1.6.

On every zoo model (``tests/core/zoo.py``; the zoo's MLP and residual MLP also 64 wide, ``@64``) both
libraries can handle, at 50 % and 75 % of the neurons
of every prunable group:

* ``params``: parameters after compaction, sciprune's neuron-L2 (``prune(..., "neuron_l2")`` then
  ``compact``) and Torch-Pruning's group-magnitude pruner at the same ratio;
* ``diff``: sciprune's compacted vs masked outputs, max |a - b| / max |b| (outputs equal);
* ``ms``: dependency analysis + pruning (+ compaction) time, best of 5, ours (``Traced`` + ``prune`` +
  ``compact``) vs theirs (``BasePruner`` construction, which builds the DepGraph, + ``step``), and the
  ratio ours / theirs;
* ``err``: relative output error ||f_pruned(x) - f(x)|| / ||f(x)|| **without retraining** on held-out
  inputs, at equal parameters: Torch-Pruning's ratio is bisected so that its compacted size is the
  nearest to ours (``P_tp`` beside ``P``); sciprune's neuron-L2 and ID with the interpolation matrix
  folded into the consumers (groups read by a non-linear sink, DeepONet's contraction, fall back to
  neuron L2 as in ``sciprune prune``; its compacted size in brackets: ID may end smaller where
  compaction also removes units the ID left without readers), and the ratio err_TP / err_ID (goal: >= 3).

Before pruning, every model is trained briefly (Adam, ``STEPS`` steps) on a generated regression task:
the targets are ``sin(2 t) + t^2 / 2`` of a teacher (the same architecture, another seed) with
``t`` the teacher's output scaled to unit variance, inputs drawn fresh each step (standard normal,
every input's first axis scaled by ``BATCH``). The ID sees ``ID_SCALE`` x the zoo's batch of training
inputs; errors are measured on an independent draw of the same size.

Torch-Pruning ignores the layers whose output reaches the network output with no other parametrised
layer in between (found on the ``torch.fx`` graph); sciprune's tracer makes those channels unprunable
by itself. Run: ``python benchmarks/bench_any.py [--quick]`` (a few minutes on one core; needs
``pip install -e '.[bench]'`` for torch-pruning).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import copy  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.fx as fx  # noqa: E402
from torch import Tensor, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.core.zoo

import torch_pruning as tp  # noqa: E402

from sciprune.core import Traced, compact, dense_kept_width, id_prune_traced, prune, units_of
from sciprune.studies.prune.protocol import foldable  # noqa: E402
from tests.core.zoo import ZOO, build  # noqa: E402

RATIOS = (0.5, 0.75)
STEPS, BATCH, ID_SCALE, LR = 400, 8, 32, 3e-3
REPEATS = 5
WIDE = ("mlp@64", "residual_mlp@64")  # the zoo's models are 6-16 wide; two with a width argument, wider
Inputs = tuple[Tensor, ...]


def draw(shapes: list[tuple[int, ...]], scale: int, gen: torch.Generator) -> Inputs:
    """Standard-normal inputs of the zoo's shapes, every first axis times ``scale``."""
    return tuple(torch.randn((s[0] * scale, *s[1:]), generator=gen, dtype=torch.float64) for s in shapes)


def make(name: str, seed: int = 0) -> tuple[nn.Module, Inputs]:
    """Zoo model ``name`` (``name@W``: its factory with ``width=W``), float64, eval mode, and example inputs."""
    base, _, width = name.partition("@")
    if not width:
        return build(base, seed=seed)
    model, xs = build(base, seed=seed)
    return ZOO[base][0](seed=seed, width=int(width)).to(torch.float64).eval(), xs


def train(name: str, seed: int = 0) -> tuple[nn.Module, list[tuple[int, ...]]]:
    """Zoo model ``name`` trained ``STEPS`` Adam steps toward a nonlinear transform of a teacher."""
    model, _ = make(name, seed=seed)
    teacher, _ = make(name, seed=seed + 101)
    shapes = ZOO[name.partition("@")[0]][1]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ref = teacher(*draw(shapes, BATCH, gen))
        mu, sd = ref.mean(), ref.std().clamp_min(1e-12)

    def target(xs: Inputs) -> Tensor:
        with torch.no_grad():
            t = (teacher(*xs) - mu) / sd
            return torch.sin(2 * t) + 0.5 * t**2

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(STEPS):
        xs = draw(shapes, BATCH, gen)
        opt.zero_grad()
        nn.functional.mse_loss(model(*xs), target(xs)).backward()
        opt.step()
    return model.eval(), shapes


def output_layers(model: nn.Module) -> list[nn.Module]:
    """Linear/Conv modules whose output reaches the network output through parameter-free ops only."""
    gm = fx.symbolic_trace(model)
    mods = dict(gm.named_modules())
    found: list[nn.Module] = []
    seen: set[fx.Node] = set()
    stack = [n for n in gm.graph.nodes if n.op == "output"]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op == "call_module" and isinstance(mods[node.target], nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            found.append(mods[node.target])
            continue
        stack.extend(a for a in node.all_input_nodes)
    return found


def tp_prune(model: nn.Module, xs: Inputs, ratio: float) -> nn.Module:
    """Torch-Pruning's group-magnitude (L2) pruner at ``ratio``, on a copy: a physically smaller model."""
    m = copy.deepcopy(model)
    pruner = tp.pruner.BasePruner(m, xs, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=ratio,
                                  ignored_layers=output_layers(m), forward_fn=lambda net, x: net(*x))
    pruner.step()
    return m


def ours_neuron(model: nn.Module, xs: Inputs, ratio: float) -> tuple[nn.Module, nn.Module]:
    """(masked, compacted) sciprune neuron-L2 at ``ratio`` of every prunable group."""
    traced = Traced(copy.deepcopy(model), xs)
    prune(traced, ratio, criterion="neuron_l2")
    return traced, compact(traced)


def ours_id(model: nn.Module, xs: Inputs, id_xs: Inputs, ratio: float) -> nn.Module:
    """ID with correction in every group whose readers are all linear, neuron L2 in the others."""
    traced = Traced(copy.deepcopy(model), xs)
    groups = [g for g in units_of(traced).groups if g.prunable]
    ids = foldable(traced)
    others = [g.name for g in groups if g.name not in ids]
    if others:
        prune(traced, ratio, criterion="neuron_l2", layers=others)
    ranks = {k: v for k, v in dense_kept_width(traced, ratio).items() if k in ids}
    return compact(id_prune_traced(traced, id_xs, ranks=ranks)) if ranks else compact(traced)


def params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def rel_error(m: nn.Module, ref: Tensor, xs: Inputs) -> float:
    with torch.no_grad():
        return float(torch.linalg.vector_norm(m(*xs) - ref) / torch.linalg.vector_norm(ref))


def best_ms(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def tp_matched(model: nn.Module, xs: Inputs, target: int) -> tuple[nn.Module, float]:
    """Torch-Pruning at the ratio whose compacted size is nearest ``target`` (bisection, 12 steps)."""
    lo, hi, best = 0.0, 0.99, None
    for _ in range(12):
        mid = (lo + hi) / 2
        m = tp_prune(model, xs, mid)
        if best is None or abs(params(m) - target) < abs(params(best[0]) - target):
            best = (m, mid)
        if params(m) > target:
            lo = mid
        else:
            hi = mid
    assert best is not None
    return best


def handled(name: str) -> str | None:
    """Why a zoo model is left out (None: both libraries handle it)."""
    model, xs = make(name)
    try:
        traced = Traced(copy.deepcopy(model), xs)
    except Exception as err:  # noqa: BLE001 - a benchmark reports, it does not stop
        return f"sciprune: {type(err).__name__}"
    if not any(g.prunable for g in units_of(traced).groups):
        return "sciprune: no prunable group"
    try:
        out = tp_prune(model, xs, 0.5)(*xs)
        if out.shape != model(*xs).shape:
            return "Torch-Pruning: output shape changed"
    except Exception as err:  # noqa: BLE001
        return f"Torch-Pruning: {type(err).__name__}: {str(err).splitlines()[0][:60]}"
    return None


def main() -> None:
    global STEPS, REPEATS
    if "--quick" in sys.argv:  # a smoke run: little training, few repeats
        STEPS, REPEATS = 50, 2
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, torch-pruning {tp.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} (2 cores)")
    head = ("| model | neurons | params dense | params ours | params TP | compact diff | ms ours | ms TP | "
            "ours/TP | P (TP matched) | err TP | err neuron | err ID (params) | TP/ID |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    skipped = []
    for name in [*ZOO, *WIDE]:
        why = handled(name)
        if why is not None:
            skipped.append(f"{name} ({why})")
            continue
        model, shapes = train(name)
        gen = torch.Generator().manual_seed(7)
        xs = draw(shapes, 1, gen)
        id_xs, test = draw(shapes, ID_SCALE, gen), draw(shapes, ID_SCALE, gen)
        with torch.no_grad():
            ref = model(*test)
        for r in RATIOS:
            masked, small = ours_neuron(model, xs, r)
            with torch.no_grad():
                diff = float((small(*test) - masked(*test)).abs().max() / masked(*test).abs().max())
            ms_ours = best_ms(lambda: ours_neuron(model, xs, r))
            ms_tp = best_ms(lambda: tp_prune(model, xs, r))
            tp_same = tp_prune(model, xs, r)
            id_net = ours_id(model, xs, id_xs, r)
            tp_eq, ratio = tp_matched(model, xs, params(small))
            e_tp, e_n, e_id = rel_error(tp_eq, ref, test), rel_error(small, ref, test), rel_error(id_net, ref, test)
            print(f"| {name} | {r:.0%} | {params(model)} | {params(small)} | {params(tp_same)} | {diff:.1e} | "
                  f"{ms_ours:.1f} | {ms_tp:.1f} | {ms_ours / ms_tp:.2f} | {params(small)} ({params(tp_eq)} at {ratio:.2f}) | "
                  f"{e_tp:.3g} | {e_n:.3g} | {e_id:.3g} ({params(id_net)}) | {e_tp / max(e_id, 1e-300):.1f} |", flush=True)
    if skipped:
        print("left out: " + "; ".join(skipped))


if __name__ == "__main__":
    main()
