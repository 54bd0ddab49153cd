"""Train the built-in INRs and write them to ``studies/amr/data/<name>.safetensors``.

``python -m sciprune.studies.amr.train_builtin [--only corner,front,spacetime] [--out DIR]``

``--widths 32,64,128,256 --depths 2,4`` instead trains one network per field x width x depth
(``<field>_w<width>_d<depth>.safetensors``: ``depth`` hidden layers of ``width`` ReLU neurons),
the transfer family the refinement criteria are measured on (docs/amr.md); ``--steps`` overrides
the step count.

Each network (:data:`~sciprune.studies.amr.builtin.SPECS`) is fitted to its field by Adam on the
mean squared error, with a cosine learning-rate decay from ``lr`` (3e-3; 1e-3 from width 128 up,
where 3e-3 is unstable), batches of 4096 points (half uniform in the unit box, half concentrated
where the field is hard), all drawn from generators derived from seed 0 and the network's name.
Deterministic on one machine; about a minute per 32-wide network on one CPU core.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from sciprune.core import torch_generator
from sciprune.nn.mlp import MLP
from sciprune.studies.amr.builtin import SPECS, BuiltinSpec
from sciprune.studies.amr.inr import DATA, save_mlp

SEED = 0
BATCH = 4096


def _batch(spec: BuiltinSpec, gen: torch.Generator) -> torch.Tensor:
    d = spec.sizes[0]
    uniform = torch.rand(BATCH // 2, d, generator=gen)
    focus = spec.focus(torch.rand(BATCH - BATCH // 2, d, generator=gen))
    return torch.cat([uniform, focus])


def variant(spec: BuiltinSpec, width: int, depth: int, steps: int | None = None) -> BuiltinSpec:
    """``spec``'s field with ``depth`` hidden layers of ``width`` neurons, named ``<field>_w<width>_d<depth>``."""
    sizes = (spec.sizes[0], *([width] * depth), spec.sizes[-1])
    return dataclasses.replace(spec, name=f"{spec.name}_w{width}_d{depth}", sizes=sizes, steps=steps or spec.steps)


def train(spec: BuiltinSpec, *, steps: int | None = None, log: bool = True) -> tuple[MLP, float]:
    """Fit ``spec``'s network; returns it and its RMSE on 2^16 uniform test points."""
    mlp = MLP(spec.sizes, spec.activation, generator=torch_generator(SEED, "amr-builtin", spec.name, "init"))
    gen = torch_generator(SEED, "amr-builtin", spec.name, "data")
    steps = steps or spec.steps
    lr = 3e-3 if max(spec.sizes[1:-1]) < 128 else 1e-3
    opt = torch.optim.Adam(mlp.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)) + 1e-3)
    for step in range(steps):
        x = _batch(spec, gen)
        loss = torch.mean((mlp(x).squeeze(-1) - spec.field(x)) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and step % 1000 == 0:
            print(f"  {spec.name} step {step:5d}  mse {loss.item():.2e}", flush=True)
    test = torch.rand(1 << 16, spec.sizes[0], generator=torch_generator(SEED, "amr-builtin", spec.name, "test"))
    with torch.no_grad():
        rmse = torch.sqrt(torch.mean((mlp(test).squeeze(-1) - spec.field(test)) ** 2)).item()
    return mlp, rmse


def save_readable(path: Path, mlp: MLP, meta: dict[str, Any]) -> None:
    """:func:`save_mlp`, padding the metadata when the file's first byte (the low byte of the
    safetensors header length) would be 0x80: ``core.io`` would take such a file for a pickle."""
    save_mlp(path, mlp, meta=meta)
    if path.read_bytes()[:1] == b"\x80":
        save_mlp(path, mlp, meta={**meta, "pad": "-" * 8})


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SPECS), help="comma-separated field names")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--widths", default="", help="e.g. 32,64,128,256: train width x depth variants")
    parser.add_argument("--depths", default="2,4", help="hidden layers of the variants (with --widths)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the spec's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    specs = [SPECS[name] for name in args.only.split(",")]
    if args.widths:
        specs = [variant(s, w, d, args.steps) for s in specs for d in _ints(args.depths) for w in _ints(args.widths)]
    elif args.steps:
        specs = [dataclasses.replace(s, steps=args.steps) for s in specs]
    for spec in specs:
        t0 = time.perf_counter()
        mlp, rmse = train(spec)
        meta = {"inr": {"name": spec.name, "default_mesh": spec.default_mesh, "field": spec.description,
                        "fit_rmse": rmse, "steps": spec.steps, "seed": SEED}}
        save_readable(args.out / f"{spec.name}.safetensors", mlp, meta)
        print(f"{spec.name}: {sum(p.numel() for p in mlp.parameters())} parameters, test RMSE {rmse:.3e}, "
              f"{time.perf_counter() - t0:.1f} s -> {args.out / f'{spec.name}.safetensors'}", flush=True)


if __name__ == "__main__":
    main()
