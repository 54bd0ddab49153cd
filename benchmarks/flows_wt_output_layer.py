"""Is WT's loss at the paper's field the output layer's collapse? One WT stage retrained both ways.

    python benchmarks/flows_wt_output_layer.py RUN_DIR [--net 0] [--sparsity 0.8] [--epochs N]

``RUN_DIR`` is a finished (or running) ``paper_slice`` flows run (``--out`` of
``sciprune run src/sciprune/studies/flows/presets/paper_slice.yaml``). Starting from its WT stage at
the first ratio (``wt/stage_000.pt`` of network ``--net``), it prunes further to ``--sparsity`` in two
ways and retrains each as the cascade does (a fresh AdamW, ``epochs`` epochs: the preset's
retraining budget unless ``--epochs``), then prints the test NLL (the study's own evaluation):

* ``global``: WT as the study runs it: one magnitude ranking over all four layers of the field;
* ``output kept``: the same ranking over the three layers before the output layer; the output
  layer keeps the first stage's mask (so the whole field's sparsity is slightly lower: printed).

The run's own WT row at that ratio (from ``wt/stage_001.pt``) is printed beside them. One network,
one ratio, one core each (``torch.set_num_threads(1)``); about 10 min per retraining at the paper's
field on this machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from sciprune.core import CascadeSpec, Dense, Pruning, load_state, resolve_method, run_cascade, stage_checkpoint, units_of
from sciprune.studies.flows.config import FlowsConfig
from sciprune.studies.flows.protocol import NetSteps
from sciprune.studies.flows.tasks import derive, load_toy, net_folder, tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--net", type=int, default=0, help="network index (seed offset; default 0)")
    ap.add_argument("--sparsity", type=float, default=0.8, help="the further ratio (default 0.8)")
    ap.add_argument("--epochs", type=int, default=None, help="retraining epochs (default: the preset's budget)")
    ap.add_argument("--only", choices=["global", "output kept"], default=None, help="run one of the two")
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    raw.pop("study", None)
    cfg = FlowsConfig.model_validate(raw)
    task = [t for t in tasks(cfg) if t.kind == "density"][0]
    seed = cfg.seed + args.net
    folder = net_folder(args.run_dir, task, seed)
    first = load_state(stage_checkpoint(folder / "wt", 0))
    epochs = args.epochs if args.epochs is not None else (cfg.prune.retrain_epochs or task.cfg.train.epochs)
    data = load_toy(cfg, task)
    steps = NetSteps.of(cfg, task, data, seed)
    start = Dense(arch=first["arch"], state=first["state"], rewind={}, lrs=[], optimizer={})
    spec = CascadeSpec((args.sparsity,), mode="iterative", retrain_epochs=epochs, retrain="lr_rewind")
    wt = resolve_method("wt")
    model = steps.build(first["arch"])
    weights = [u.layer or u.param for u in units_of(model).weights]  # in order: the last one is the output layer
    ways = {"global": Pruning(wt), "output kept": Pruning(wt, layers=tuple(weights[:-1]))}
    print(f"{task.name}, network {args.net}: from WT {first['rows'][-1]['sparsity']:.2f} "
          f"(NLL {first['rows'][-1]['nll']:.4f}) to {args.sparsity:.2f}, {epochs} retraining epochs")
    run_row = stage_checkpoint(folder / "wt", 1)
    if run_row.exists():
        r = load_state(run_row)["rows"][-1]
        print(f"  the run's own WT stage: NLL {r['nll']:.4f}, layer sparsity {r['layer_sparsity']}")
    for name, pruning in ways.items():
        if args.only is not None and name != args.only:
            continue
        rows = run_cascade(start, spec, steps, seed=derive(seed, task), key="wt", pruning=pruning)
        r = rows[-1]
        print(f"  {name:<12} NLL {r['nll']:.4f} (std {r['nll_std']:.4f}), field sparsity {r['achieved_sparsity']:.4f}, "
              f"layer sparsity {r['layer_sparsity']}, NFE {r['nfe']}", flush=True)


if __name__ == "__main__":
    main()
