"""NIF speed, side by side: compacted pNIF vs dense inference, and de-duplicated ParameterNet in training.

1. **Inference** at 65,536 points (a field query: 16 distinct parameters, so ParameterNet runs 16
   times and ShapeNet dominates): points per second of a dense NIF multi-scale (2-D x, SIREN
   ShapeNet 64 × 3 hidden maps) and of the same model with 50 % and 75 % of its ShapeNet nodes
   pruned (core prune, ``hyper_node_rms``) and compacted (core shrink). The ideal speed-up is the
   ratio of ShapeNet FLOPs; the goal is achieved / ideal >= 0.7. Also the per-row path (every
   point its own p: one weight set per point, batched matmul), where weights are memory traffic.
2. **Training** points per second (Adam steps, batch 4096 with 32 distinct p) with ParameterNet
   run once per distinct p (``dedup``) vs once per row.

Timing: models alternate inside each block (so machine noise hits them alike); the fastest block
of each is reported. One thread (pinned below). Run: ``python benchmarks/bench_nif.py`` (~1 min).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import copy  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402

from sciprune.core import compact_units, prune, torch_generator
from sciprune.nn.nif import NIFMultiScale, theta_context  # noqa: E402

torch.set_num_threads(1)
BLOCKS = 7


def fastest(fns: dict[str, Callable[[], None]], blocks: int = BLOCKS) -> dict[str, float]:
    best = {k: float("inf") for k in fns}
    names = list(fns)
    for b in range(blocks):
        order = names[b % len(names):] + names[:b % len(names)]
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def model(n: int = 64) -> NIFMultiScale:
    shape = {"input_dim": 2, "output_dim": 1, "units": n, "nlayers": 2, "omega_0": 30.0, "weight_init_factor": 0.01}
    param = {"input_dim": 1, "latent_dim": 4, "units": 32, "nlayers": 2, "activation": "swish"}
    return NIFMultiScale(shape, param, generator=torch_generator(0, "bench-nif"))


def pruned(dense: NIFMultiScale, s: float, p: torch.Tensor) -> NIFMultiScale:
    m = copy.deepcopy(dense)
    prune(m, s, criterion="hyper_node_rms", context=theta_context(m, p))
    small, _ = compact_units(m)
    assert isinstance(small, NIFMultiScale)
    return small


def inputs(n: int, distinct: int, g: torch.Generator) -> torch.Tensor:
    p = torch.randint(0, distinct, (n, 1), generator=g).float() / max(1, distinct - 1) * 2 - 1 if distinct < n else \
        torch.rand(n, 1, generator=g) * 2 - 1
    return torch.cat([p, torch.rand(n, 2, generator=g) * 2 - 1], dim=1)


def inference() -> None:
    g = torch_generator(0, "bench-nif", "x")
    dense = model().eval()
    q = inputs(65536, 16, g)
    models = {"dense": dense, **{f"pNIF {int(s * 100)}%": pruned(dense, s, q[:, :1]).eval() for s in (0.5, 0.75)}}
    for label, x in (("16 distinct p (grouped)", q), ("65,536 distinct p (per row)", inputs(65536, 65536, g))):
        with torch.no_grad():
            for m in models.values():
                m(x[:512])
            t = fastest({k: (lambda m=m: m(x)) for k, m in models.items()})  # type: ignore[misc]
        print(f"\ninference, 65,536 points, {label}:")
        print(f"{'model':<12} {'widths':<22} {'points/s':>12} {'speedup':>8} {'ideal':>7} {'of ideal':>9}")
        for k, m in models.items():
            ideal = dense.shape_flops() / m.shape_flops()
            sp = t["dense"] / t[k]
            print(f"{k:<12} {str(m.layout.widths):<22} {65536 / t[k]:>12,.0f} {sp:>8.2f} {ideal:>7.2f} {sp / ideal:>9.2f}")


def training() -> None:
    g = torch_generator(0, "bench-nif", "train")
    x = inputs(4096, 32, g)
    y = torch.sin(3 * x[:, 1:2]) * x[:, :1]
    models = {}
    for dedup in (True, False):
        m = model(32)
        m.dedup = dedup
        opt = torch.optim.Adam(m.parameters(), lr=1e-4)

        def step(m: NIFMultiScale = m, opt: torch.optim.Optimizer = opt) -> None:
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                (m(x) - y).pow(2).mean().backward()
                opt.step()

        models["dedup" if dedup else "per row"] = step
    t = fastest(models)
    print("\ntraining (Adam, batch 4096, 32 distinct p, ShapeNet 32 x 3 maps):")
    for k in models:
        print(f"{k:<10} {3 * 4096 / t[k]:>12,.0f} points/s   x{t['per row'] / t[k]:.2f} vs per row")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}")
    inference()
    training()
