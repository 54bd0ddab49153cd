"""Memory estimates against measured peak RSS: each case runs a whole study (``run_config``) in a fresh
process, one thread; the measured figure is the process's peak RSS (``ru_maxrss``) minus its RSS after
the imports and the config validation (the baseline the estimate leaves out); the estimate is the one
the config's memory bound uses (``validate.memory.peak`` of the study's terms).

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py            # all cases (minutes on 2 cores)
    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py flows      # one study

The prune study's estimate measures the user's network when the run is checked, so the child computes
it after the run (computed before, its forward passes would count in the baseline).

Prints one row per case: study, size, estimate, measured, estimate / measured (the claim in
docs/benchmarks.md: within 2x, either way).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, tempfile
import torch
torch.set_num_threads(1)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: F401 - imported before the baseline: the plots need it anyway
from sciprune.runner.config import apply_overrides, load_preset, validate
from sciprune.runner.run import run_config
from sciprune.validate import peak

study, sets, data = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
config = apply_overrides(load_preset(study, "demo"), sets + ([f"data.path={data}"] if data and study == "moth" else [])
                         + ([f"data={data}"] if data and study == "prune" else []))
cfg = validate(config)
if study == "prune":
    est = None
elif study == "flows":
    from sciprune.studies.flows.config import memory_terms
    est = max(peak(*memory_terms(s, cfg.analysis, cfg.prune))[0] for s in (cfg.densities, cfg.classifiers) if s.names)
elif study == "nif":
    from sciprune.studies.nif.config import _rows, memory_terms
    est = peak(*memory_terms(cfg, *_rows(cfg)))[0]
else:  # moth: the same terms as MothConfig._fits_in_memory, recomputed here through a limit of 1 byte
    try:
        validate({**config, "memory_limit": 1})
    except Exception as err:  # the refusal names the estimate
        est = float(str(err).split("needs about ")[1].split(" ")[0]) * {"KB": 1e3, "MB": 1e6, "GB": 1e9}[
            str(err).split("needs about ")[1].split(" ")[1]]
import sciprune.studies.moth.study, sciprune.studies.nif.study, sciprune.studies.flows.study  # noqa: E401,F401
import sciprune.studies.prune.study  # noqa: F401
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with tempfile.TemporaryDirectory() as out:
    run_config(config, out=out + "/r", quiet=True)
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if est is None:  # prune: the terms measured on the network (after the run: see the module docstring)
    from sciprune.studies.prune.memory import activations, memory_terms
    from sciprune.studies.prune.protocol import prepare
    model, split = prepare(cfg)
    est = peak(*memory_terms(cfg, model, split, activations(model, split.train)))[0]
print(json.dumps({"estimate": est, "measured": peak_rss - base}))
"""

TINY_FLOWS = ["classifiers.names=[]", "nets=1", "densities.n_train=512", "densities.n_test=256", "densities.train.epochs=1",
              "densities.train.batch_size=512", "densities.solver.steps=2", "prune.methods=[wt]", "prune.sparsities=[0.5]",
              "prune.retrain_epochs=0", "analysis.hessian=false", "analysis.grid=8", "analysis.samples=10",
              "analysis.mode_samples=10", "densities.nll_reps=1", "analysis.timing_repeats=1"]
TINY_NIF = ["data.kind=ks", "data.nus=[0.1, 0.2]", "data.nt=200", "data.nx=64", "train.epochs=1", "train.batch_size=512",
            "prune.methods=[l2]", "prune.sparsities=[0.5]", "prune.retrain_epochs=0", "timing=false", "pod=false",
            "model.shape.nlayers=2"]
TINY_PRUNE = ["methods=[neuron, id]", "sparsities=[0.5]", "train.epochs=1", "train.batch_size=256"]
TINY_MOTH = ["shards=1", "schedule=[0.5]", "train.max_batches_dense=20", "train.max_batches_stage=5", "train.window=10",
             "train.check_every=5", "train.val_rows=256"]

CASES = {
    "flows": [("hidden=1024", [*TINY_FLOWS, "densities.field.layers=3", "densities.field.hidden=1024"]),
              ("hidden=2048", [*TINY_FLOWS, "densities.field.layers=3", "densities.field.hidden=2048"])],
    "nif": [("shape.units=64", [*TINY_NIF, "model.shape.units=64"]),
            ("shape.units=128", [*TINY_NIF, "model.shape.units=128"])],
    "moth": [("members=20", [*TINY_MOTH, "members=20", "model.hidden=[400, 400, 400, 16]"]),
             ("members=40", [*TINY_MOTH, "members=40", "model.hidden=[400, 400, 400, 16]"])],
    "prune": [("width=1024", [*TINY_PRUNE, "model_kwargs={width: 1024}"]),
              ("width=2048", [*TINY_PRUNE, "model_kwargs={width: 2048}", "id_samples=512"]),
              ("200k x 128 samples", [*TINY_PRUNE, "model_kwargs={width: 256, inputs: 128}", "timing_batch=65536"])],
}


def main(studies: list[str]) -> None:
    from sciprune.studies.moth.simulate import simulate_file

    with tempfile.TemporaryDirectory() as tmp:
        moth_data = f"{tmp}/moth.h5"
        if "moth" in studies:
            simulate_file(moth_data, 2000, seed=1, chunk=2000)
        prune_data = f"{tmp}/samples.npz"
        if "prune" in studies:  # 200,000 samples of 128 inputs for the data-heavy case (float32)
            import numpy as np

            rng = np.random.default_rng(0)
            x = rng.standard_normal((200_000, 128), dtype=np.float32)
            np.savez(prune_data, x=x, y=np.sin(x[:, :1]))
        print(f"{'study':6} {'case':18} {'estimate MB':>12} {'measured MB':>12} {'ratio':>6}   (threads: 1)")
        for study in studies:
            for name, sets in CASES[study]:
                data = moth_data if study == "moth" else prune_data if study == "prune" and "inputs: 128" in str(sets) else ""
                res = subprocess.run([sys.executable, "-c", CHILD, study, json.dumps(sets), data],
                                     capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "", **_env()})
                if res.returncode:
                    print(f"{study:6} {name:18} failed: {res.stderr.strip().splitlines()[-1:]}")
                    continue
                got = json.loads(res.stdout.strip().splitlines()[-1])
                print(f"{study:6} {name:18} {got['estimate'] / 1e6:12.1f} {got['measured'] / 1e6:12.1f} "
                      f"{got['estimate'] / got['measured']:6.2f}")


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "PATH")}


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
