"""PruningAMR study: speed against the reference, per-element cost, DOF efficiency, memory.

All measured on this machine in one invocation, threads pinned to 1 (torch, OpenMP, MKL, OpenBLAS):

1. **Start-up**: interpreter (``python -c pass``) and imports (torch, numpy, PyMFEM, the study) in
   fresh processes, reported apart from the algorithm.
2. **Default hos runs** (PruningAMR, uniform, BasicAMR; the seed's defaults, outputs written, no
   uniform baseline): algorithm seconds in a fresh process after its imports (cold = first run,
   warm = median of 3 more), against the reference's 13.7-24.9 s wall per run (its imports,
   ~2 s, included; spec §6.1).
3. **Per element ID + error check** on the 256 elements of side 1/16 (the first adaptive iteration
   of hos), widths 32 (hos) and 256 (a 2-256x4-1 ReLU net fitted for a few hundred steps to the
   corner field, so that its ranks are those of a trained INR): our batched element pass
   (``examine`` of a ``pruning`` ElementPass, one ``id_prune`` call per 128-element chunk; 1 and 2 workers) against the same code called
   one element at a time, and against the reference's per-element ID cost (2-3 ms at width 32,
   12-23 ms at width 256).
4. **DOF efficiency**: PruningAMR with defaults on hos and the built-in corner INR against uniform
   refinement: uniform DOFs needed for the same true RMSE (log-log interpolation) / true DOFs.
5. **Sweep** of ``prop_threshold`` (8 iterations, 20 000 DOFs at most).
6. **Memory**: peak RSS of a 2-D run to >= 10^5 DOFs (fresh process), against the import-only RSS.

Sections 4-5 are the seed's criterion (``--mode pruning``). Options (each runs only its part):
``--transfer INR... [--criteria bulk,residual,excess,kept,seed,basic]`` the transfer table of docs/amr.md
(every INR x criterion at its defaults); ``--curve INR [--max-dofs N] [--criteria bulk,residual]`` the
saving iteration by iteration along one run with a large budget (uniform levels to 2049^2 DOFs);
``--per-element INR...`` the bulk and seed element passes against the reference and this core's matmul peak; ``--invariance INR...`` kept counts / proportions by width and how
well the bulk indicator tracks the interpolation error.

Run: ``python benchmarks/bench_amr.py`` (a few minutes on one core; ``--quick`` skips the sweep).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REF_WALL = {"pruning": (17.7, "fixed PruningAMR; 13.7 s released"), "uniform": (19.9, "--original"),
            "basic": (24.9, "--avg_error")}
REF_IMPORTS = 1.9
REF_ID_MS = {32: (2.0, 2.7), 256: (12.0, 23.0)}


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (threads pinned); it prints one JSON line at the end."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])


STARTUP = """
import time, json, resource
t0 = time.perf_counter()
import numpy, torch, mfem.ser
import sciprune.studies.amr.driver, sciprune.studies.amr.study, sciprune.core._idprune
print(json.dumps({"imports": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

RUNS = """
import time, json, tempfile, statistics
from pathlib import Path
import torch
torch.set_num_threads(1)
from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.amr.driver import run_amr
from sciprune.studies.amr.inr import resolve_inr
res = {}
for mode in ("pruning", "uniform", "basic"):
    times = []
    for rep in range(4):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            inr = resolve_inr("hos")
            r = run_amr(AMRConfig(inr="hos", mode=mode), inr, out=Path(d))
            times.append(time.perf_counter() - t0)
    last = r.iterations[-1]
    res[mode] = {"cold": times[0], "warm": statistics.median(times[1:]), "dofs": last.dofs,
                 "true_dofs": last.true_dofs, "rmse": last.rmse,
                 "error_s": sum(i.seconds_error for i in r.iterations),
                 "examine_s": sum(i.seconds_examine for i in r.iterations)}
print(json.dumps(res))
"""

MEMORY = """
import time, json, resource
from pathlib import Path
import tempfile
from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.amr.driver import run_amr
from sciprune.studies.amr.inr import resolve_inr
cfg = AMRConfig(inr="corner", mesh="square:5", mode="{mode}", prop_threshold=0.0, max_it=6, max_dofs=200000)
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    r = run_amr(cfg, resolve_inr("corner"), out=Path(d))
last = r.iterations[-1]
print(json.dumps({"dofs": last.dofs, "elements": last.elements, "seconds": time.perf_counter() - t0,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


def startup() -> float:
    section("1. start-up (fresh processes, median of 3)")
    t_py = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        t_py.append(time.perf_counter() - t0)
    imports = [_child(STARTUP) for _ in range(3)]
    imp = statistics.median(i["imports"] for i in imports)
    print(f"interpreter start-up: {statistics.median(t_py):.3f} s")
    print(f"imports (numpy, torch, mfem.ser, sciprune amr): {imp:.2f} s   (reference: {REF_IMPORTS} s)")
    print(f"RSS after imports: {statistics.median(i['rss_mb'] for i in imports):.0f} MB")
    return statistics.median(i["rss_mb"] for i in imports)


def default_runs() -> None:
    section("2. default hos runs: algorithm time (no imports), outputs written, no uniform baseline")
    res = _child(RUNS)
    print("| mode | final DOFs (true) | true RMSE | ours cold s | ours warm s | reference wall s | ratio ref/cold | ratio (ref-imports)/cold |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, r in res.items():
        ref, note = REF_WALL[mode]
        print(f"| {mode} | {r['dofs']} ({r['true_dofs']}) | {r['rmse']:.4f} | {r['cold']:.3f} | {r['warm']:.3f} | "
              f"{ref} ({note}) | {ref / r['cold']:.0f}x | {(ref - REF_IMPORTS) / r['cold']:.0f}x |")
    print("\nof which (warm-up run excluded) element pass s / true-error s per run:",
          ", ".join(f"{m}: {r['examine_s']:.3f} / {r['error_s']:.3f}" for m, r in res.items()))


def _wide_inr():
    """2-256x4-1 ReLU fitted briefly to the corner field (untimed setup)."""
    import dataclasses

    from sciprune.studies.amr import builtin
    from sciprune.studies.amr.inr import INR
    from sciprune.studies.amr.train_builtin import train

    spec = dataclasses.replace(builtin.SPECS["corner"], sizes=(2, 256, 256, 256, 256, 1), steps=300)
    mlp, _ = train(spec, log=False)
    weights = [layer.weight.detach().double() for layer in mlp.layers]
    biases = [layer.bias.detach().double() for layer in mlp.layers]
    from sciprune.nn.mlp import MLP

    wide = MLP.from_layers(weights, biases, mlp.activations)
    return INR("wide", "", wide, None, "square", sum(w.numel() + b.numel() for w, b in zip(weights, biases)), mlp)


def per_element() -> None:
    import numpy as np
    import torch

    from sciprune.studies.amr.examine import ElementPass, examine
    from sciprune.studies.amr.inr import resolve_inr

    section("3. per element: ID + error check, 256 elements of side 1/16, 256 ID + 128 error samples")
    torch.set_num_threads(1)
    g = np.arange(16) / 16
    lo = np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    bits = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) / 16
    corners = lo[:, None, :] + bits[None]
    ids = np.arange(len(corners))
    kw = dict(seed=0, it=2, id_samples=256, error_samples=128, epsilon=1e-3, threshold=1e-3,
              prop_threshold=0.2, offset=5.0)
    print("| width | INR | mean ranks | one at a time ms/elem | batched, 1 worker ms/elem | batched, 2 workers ms/elem (wall) | "
          "reference ms/elem (ID only) | ref / ours, 1 worker | ref / ours, 2 workers | one-at-a-time / batched (1 worker) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for width, inr in ((32, resolve_inr("hos")), (256, _wide_inr())):
        lift = lambda x: x  # noqa: E731
        examine(ElementPass("pruning", inr, lift, **kw), corners[:8], ids[:8])  # warm-up
        best = {}
        for workers in (1, 2):
            best[workers] = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                v = examine(ElementPass("pruning", inr, lift, workers=workers, **kw), corners, ids)
                best[workers] = min(best[workers], time.perf_counter() - t0)
        t0 = time.perf_counter()
        for e in range(len(ids)):
            examine(ElementPass("pruning", inr, lift, **kw), corners[e : e + 1], ids[e : e + 1])
        loop = time.perf_counter() - t0
        n = len(ids)
        ref_lo, ref_hi = REF_ID_MS[width]
        ranks = np.round(v.ranks.mean(axis=0), 1).tolist()
        one, two = 1e3 * best[1] / n, 1e3 * best[2] / n
        print(f"| {width} | {inr.name} | {ranks} | {1e3 * loop / n:.3f} | {one:.3f} | {two:.3f} | {ref_lo:g}-{ref_hi:g} | "
              f"{ref_lo / one:.1f}-{ref_hi / one:.1f}x | {ref_lo / two:.1f}-{ref_hi / two:.1f}x | {loop / best[1]:.1f}x |")


def matmul_peak(n: int = 1024, reps: int = 5) -> float:
    """This core's float32 matmul rate (FLOP/s, one thread): best of ``reps`` n x n products."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def per_element_bulk(path: str) -> None:
    """The bulk criterion's element pass at one INR (256 elements of side 1/16, as in section 3):
    ms per element, 1 worker, and its achieved FLOP/s against the matmul peak.

    Counted FLOPs (dense-equivalent, what a plain forward does): the ID's forward of the original
    network on ``n_ID`` samples (bulk residual: 32, seed: 256) and the error check's on 128,
    ``2 (n_ID + n_err) sum_l m_l m_{l+1}`` per element; the default (interpolation) indicator runs it
    on the 128 error samples and the 2^d corners (``2 (128 + 4) sum_l m_l m_{l+1}``); through the
    pruned network (``surrogate_epsilon = 1e-6``) the original network runs only on the 32 ID samples
    and the corners, and once more on the corners (``2 (32 + 4 + 4) sum_l m_l m_{l+1}``), the error
    samples through the pruned network. The QR, the pruned network's forward and the
    skipped dead inputs are left out, so the rate is that of the work a dense pass would do."""
    import numpy as np
    import torch

    from sciprune.studies.amr.examine import ElementPass, examine
    from sciprune.studies.amr.inr import resolve_inr

    torch.set_num_threads(1)
    inr = resolve_inr(path)
    g = np.arange(16) / 16
    lo = np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    corners = lo[:, None, :] + (np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) / 16)[None]
    ids = np.arange(len(corners))
    lift = lambda x: x  # noqa: E731
    sizes = inr.mlp.sizes
    macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    flops = {"bulk (default)": 2 * (128 + 4) * macs, "bulk, pruned INR": 2 * (32 + 4 + 4) * macs,
             "bulk, residual": 2 * (32 + 128) * macs,
             "seed PruningAMR": 2 * (256 + 128) * macs}
    peak = matmul_peak()
    out = {}
    for label, fn in (
        ("bulk (default)", ElementPass("interpolation", inr, lift, seed=0, it=2, error_samples=128)),
        ("bulk, pruned INR", ElementPass("interpolation", inr, lift, seed=0, it=2, id_samples=32, error_samples=128,
                                         epsilon=1e-6)),
        ("bulk, residual", ElementPass("residual", inr, lift, seed=0, it=2, id_samples=32, error_samples=128)),
        ("seed PruningAMR", ElementPass("pruning", inr, lift, seed=0, it=2, id_samples=256, error_samples=128,
                                        epsilon=1e-3, threshold=1e-3, prop_threshold=0.2, offset=5.0)),
    ):
        fn = lambda c, i, p=fn: examine(p, c, i)  # noqa: E731
        fn(corners[:8], ids[:8])
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn(corners, ids)
            best = min(best, time.perf_counter() - t0)
        out[label] = best / len(ids)
    ref_lo, ref_hi = REF_ID_MS.get(max(sizes[1:-1]), (float("nan"), float("nan")))
    print(f"matmul peak (float32, 1 thread, 1024^3): {peak / 1e9:.1f} GFLOP/s")
    print("| INR | sizes | criterion | ms/elem (1 worker) | reference ms/elem (ID only) | ref / ours | GFLOP/s | fraction of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for label, sec in out.items():
        print(f"| {Path(path).stem} | {sizes} | {label} | {1e3 * sec:.3f} | {ref_lo:g}-{ref_hi:g} | "
              f"{ref_lo / (1e3 * sec):.1f}-{ref_hi / (1e3 * sec):.1f}x | {flops[label] / sec / 1e9:.2f} | "
              f"{flops[label] / sec / peak:.0%} |",
              flush=True)


def invariance(paths: list[str]) -> None:
    """Why the seed's P does not transfer and the bulk indicator does: on the 256 elements of side
    1/16, the largest kept count per layer and the kept proportion P_E (seed ID, 256 samples,
    eps 1e-3), and the correlation of log eta_E^2 (bulk) with the log of the true P1 interpolation
    MSE (256 random points per element)."""
    import numpy as np
    import torch

    from sciprune.studies.amr.examine import ElementPass, examine
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.interp import corner_weights, map_reference

    torch.set_num_threads(1)
    g = np.arange(16) / 16
    lo = np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    corners = lo[:, None, :] + (np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) / 16)[None]
    ids = np.arange(len(corners))
    print("| INR | widths | largest kept count per layer | P_E median | P_E max | elements with P_E > 0.2 | "
          "corr(log eta^2, log interpolation MSE) |")
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        inr = resolve_inr(path)
        lift = lambda x: x  # noqa: E731
        v = examine(ElementPass("pruning", inr, lift, seed=0, it=2, id_samples=256, error_samples=128, epsilon=1e-3,
                                threshold=1e-3, prop_threshold=0.2, offset=5.0), corners, ids)
        r = examine(ElementPass("residual", inr, lift, seed=0, it=2, id_samples=32, error_samples=128), corners, ids)
        xi = np.random.default_rng(0).random((len(ids), 256, 2))
        f = inr(map_reference(corners, xi))[..., 0].numpy()
        u = np.einsum("bnc,bc->bn", corner_weights(xi), inr(corners)[..., 0].numpy())
        interp = ((f - u) ** 2).mean(axis=1)
        rho = np.corrcoef(np.log(r.error + 1e-300), np.log(interp + 1e-300))[0, 1]
        w = inr.widths
        assert v.proportion is not None and v.ranks is not None
        print(f"| {Path(path).stem} | {w[0]}x{len(w)} | {v.ranks.max(axis=0).tolist()} | {np.median(v.proportion):.3f} | "
              f"{v.proportion.max():.3f} | {int((v.proportion > 0.2).sum())} | {rho:.2f} |", flush=True)


def efficiency(quick: bool) -> None:
    import torch

    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.driver import run_amr, run_uniform_baseline
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.study import equal_error_dofs

    torch.set_num_threads(1)

    def one(inr_name: str, **kw: float) -> str:
        inr = resolve_inr(inr_name)
        cfg = AMRConfig(inr=inr_name, mode="pruning", rmse_points=1 << 16, **kw)  # type: ignore[arg-type]
        res = run_amr(cfg, inr, out=None)
        last = res.iterations[-1]
        base = run_uniform_baseline(cfg, inr, last.rmse)
        need = equal_error_dofs([(b.dofs, b.rmse) for b in base], last.rmse)
        saving = "n/a" if need is None else f"{need / last.true_dofs:.1f}x ({need / last.dofs:.1f}x)"
        return (f"| {inr_name} | {kw.get('prop_threshold', 0.2)} | {len(res.iterations)} ({res.stop_reason}) | "
                f"{last.dofs} ({last.true_dofs}) | {last.rmse:.4f} | {'n/a' if need is None else f'{need:.0f}'} | {saving} |")

    header = ("| INR | P | iterations (stop) | final DOFs (true) | true RMSE | uniform DOFs at equal RMSE | "
              "saving: true DOFs (all DOFs) |\n|---|---|---|---|---|---|---|")
    section("4. DOF efficiency, PruningAMR defaults (goal >= 3x fewer true DOFs than uniform)")
    print(header)
    for name in ("hos", "corner"):
        print(one(name))
    if quick:
        return
    section("5. prop-threshold sweep (max_it 8, max_dofs 20000)")
    print(header)
    for name in ("hos", "corner"):
        for p in (0.25, 0.2, 0.15, 0.12, 0.1):
            print(one(name, prop_threshold=p, max_it=8, max_dofs=20000), flush=True)


CRITERIA_ALIASES = {"bulk": "bulk (default)", "residual": "bulk, residual", "excess": "bulk, excess rank",
                    "kept": "bulk, kept count", "seed": "seed PruningAMR", "basic": "BasicAMR"}
CRITERIA: dict[str, dict[str, object]] = {
    "bulk (default)": {"mode": "bulk"},
    "bulk, residual": {"mode": "bulk", "indicator": "residual"},
    "bulk, excess rank": {"mode": "bulk", "indicator": "excess"},
    "bulk, kept count": {"mode": "bulk", "indicator": "kept"},
    "seed PruningAMR": {"mode": "pruning"},
    "BasicAMR": {"mode": "basic"},
}


def transfer_row(path: str, label: str, fields: dict[str, object]) -> dict[str, object]:
    """One INR x criterion: the run with its defaults, the uniform baseline, the saving ± s.e."""
    import torch

    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.driver import run_amr, run_uniform_baseline
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.study import equal_error_dofs, equal_error_dofs_se

    torch.set_num_threads(1)
    inr = resolve_inr(path)
    cfg = AMRConfig(inr=path, **fields)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    res = run_amr(cfg, inr, out=None)
    seconds = time.perf_counter() - t0
    last = res.iterations[-1]
    base = [(b.dofs, b.rmse) for b in run_uniform_baseline(cfg, inr, last.rmse)]  # MFEM, then grid levels
    need = equal_error_dofs(base, last.rmse)
    spread = equal_error_dofs_se(base, last.rmse, last.rmse_se)
    at_least = max(d for d, _ in base) / last.true_dofs if need is None and last.rmse < min(r for _, r in base) else None
    return {"inr": Path(path).stem if "/" in path else path, "widths": inr.widths, "criterion": label,
            "iterations": len(res.iterations), "stop": res.stop_reason, "dofs": last.dofs,
            "true_dofs": last.true_dofs, "rmse": last.rmse, "rmse_se": last.rmse_se, "uniform": need,
            "saving": None if need is None else need / last.true_dofs,
            "saving_se": None if need is None or spread is None else spread / last.true_dofs, "seconds": seconds,
            "at_least": at_least}


def transfer(paths: list[str], criteria: list[str]) -> None:
    """The transfer table of docs/amr.md: every INR x criterion, with defaults (no tuning)."""
    section("7. transfer: every INR x criterion at its defaults (saving = uniform DOFs at equal true RMSE / true DOFs)")
    print("| INR | widths | criterion | its (stop) | DOFs | true DOFs | true RMSE ± s.e. | uniform DOFs at equal RMSE | saving ± s.e. | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        for label in criteria:
            r = transfer_row(path, label, CRITERIA[label])
            w = r["widths"]
            widths = f"{w[0]}x{len(w)}" if len(set(w)) == 1 else "-".join(map(str, w))  # type: ignore[index,arg-type]
            uni = "n/a" if r["uniform"] is None else f"{r['uniform']:.0f}"
            sav = "n/a" if r["saving"] is None else f"{r['saving']:.2f} ± {r['saving_se'] or 0:.2f}x"
            if r["at_least"] is not None:
                sav = f"> {r['at_least']:.1f}x (RMSE below the finest uniform level)"
            print(f"| {r['inr']} | {widths} | {label} | {r['iterations']} ({r['stop']}) | {r['dofs']} | {r['true_dofs']} | "
                  f"{r['rmse']:.4g} ± {r['rmse_se']:.2g} | {uni} | {sav} | {r['seconds']:.1f} |", flush=True)


def curve(path: str, max_dofs: int, criteria: list[str]) -> None:
    """The saving along one run with a large DOF budget, iteration by iteration: does it grow with
    the resolution? Uniform levels on the same RQMC points (``run_uniform_baseline``: MFEM meshes, then
    regular grids up to ``driver.GRID_MAX_DOFS``); ``estimate`` is the indicator's L2 estimate ``sqrt(sum_E eta_E^2)`` of the mesh
    each adaptive iteration starts from (unit square / cube: comparable to that mesh's RMSE)."""
    import math

    import numpy as np
    import torch

    from sciprune.studies.amr import driver
    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.study import equal_error_dofs

    torch.set_num_threads(1)
    inr = resolve_inr(path)
    section(f"curve: {Path(path).stem}, saving against the run's DOFs (budget {max_dofs})")
    for label in criteria:
        sums: list[float] = []
        marking = driver.dorfler

        def logged(eta2: np.ndarray, fraction: float) -> np.ndarray:
            sums.append(float(np.sum(eta2)))
            return marking(eta2, fraction)

        driver.dorfler = logged  # type: ignore[assignment]
        try:
            cfg = AMRConfig(inr=path, max_dofs=max_dofs, max_it=64, **CRITERIA[label])  # type: ignore[arg-type]
            t0 = time.perf_counter()
            res = driver.run_amr(cfg, inr, out=None)
            wall = time.perf_counter() - t0
        finally:
            driver.dorfler = marking  # type: ignore[assignment]
        base = [(b.dofs, b.rmse) for b in driver.run_uniform_baseline(cfg, inr, res.iterations[-1].rmse)]
        print(f"### {label}: {len(res.iterations)} iterations ({res.stop_reason}), {wall:.1f} s run wall time "
              f"(1 thread); uniform levels (DOFs, RMSE): {[(d, float(f'{r:.4g}')) for d, r in base]}")
        print("| it | DOFs | true DOFs | true RMSE | estimate of the mesh it started from (/ that mesh's RMSE) | "
              "uniform DOFs at equal RMSE | saving | cumulative s |")
        print("|---|---|---|---|---|---|---|---|")
        cum, k, prev = 0.0, 0, None
        for r in res.iterations:
            cum += r.seconds
            est = ""
            if r.kind == "bulk":
                e = math.sqrt(sums[k])
                k += 1
                est = f"{e:.3g}" + (f" ({e / prev:.2f})" if prev else "")
            need = equal_error_dofs(base, r.rmse)
            sav = "n/a" if need is None else f"{need / r.true_dofs:.2f}x"
            print(f"| {r.it} | {r.dofs} | {r.true_dofs} | {r.rmse:.4g} | {est} | "
                  f"{'n/a' if need is None else f'{need:.0f}'} | {sav} | {cum:.1f} |", flush=True)
            prev = r.rmse


def memory(rss_imports: float) -> None:
    section("6. memory: 2-D runs to >= 1e5 DOFs (square:5, 6 iterations; fresh process)")
    print("| run | final DOFs | elements | seconds | peak RSS MB | above imports MB |")
    print("|---|---|---|---|---|---|")
    for mode, label in (("uniform", "uniform"), ("pruning", "PruningAMR, P = 0 (every new element examined and split)")):
        r = _child(MEMORY.replace("{mode}", mode))
        print(f"| {label} | {r['dofs']} | {r['elements']} | {r['seconds']:.1f} | {r['rss_mb']:.0f} | {r['rss_mb'] - rss_imports:.0f} |")


def main() -> None:
    import torch

    quick = "--quick" in sys.argv
    if "--invariance" in sys.argv:  # --invariance INR [INR ...]
        invariance(sys.argv[sys.argv.index("--invariance") + 1 :])
        return
    if "--per-element" in sys.argv:  # --per-element INR [INR ...]: the bulk pass's cost at these INRs
        for path in sys.argv[sys.argv.index("--per-element") + 1 :]:
            per_element_bulk(path)
        return
    if "--curve" in sys.argv:  # --curve INR [--max-dofs N] [--criteria a,b]: the saving along one long run
        args = sys.argv[sys.argv.index("--curve") + 1 :]
        crit = [CRITERIA_ALIASES.get(c, c) for c in args[args.index("--criteria") + 1].split(",")] \
            if "--criteria" in args else ["bulk (default)"]
        cap = int(args[args.index("--max-dofs") + 1]) if "--max-dofs" in args else 100_000
        curve(args[0], cap, crit)
        return
    if "--transfer" in sys.argv:  # --transfer INR [INR ...] [--criteria a,b]: only the transfer table
        args = sys.argv[sys.argv.index("--transfer") + 1 :]
        crit = list(CRITERIA)
        if "--criteria" in args:
            i = args.index("--criteria")
            crit = [CRITERIA_ALIASES.get(c, c) for c in args[i + 1].split(",")]
            args = args[:i] + args[i + 2 :]
        transfer(args, crit)
        return
    print(f"# bench_amr: torch {torch.__version__}, torch threads {torch.get_num_threads()} "
          f"(OMP/MKL/OpenBLAS = {os.environ['OMP_NUM_THREADS']}), python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    rss = startup()
    default_runs()
    per_element()
    efficiency(quick)
    memory(rss)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
