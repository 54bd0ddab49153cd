"""``sciprune moth simulate``: the training data, simulated in chunks into one HDF5 file.

The file holds dataset ``samples`` ``[rows, 19]`` (float64) with the columns :data:`COLUMNS` (the
8 initial states, the 8 final states after 20 ms, then F, α, τ), dataset ``index`` (the global
sample index of each row) and dataset ``failed`` (the indices of samples whose integration did not
converge: reported, never kept). Attributes: ``columns``, ``version``, ``seed``, ``samples``
(requested), ``ranges``, ``constants``, ``integrator``, ``horizon``, and ``next_sample`` (how many
samples are done; the file is complete when it equals ``samples``).

A chunk is appended and then ``next_sample`` is advanced, so a killed run leaves at most one
partial chunk, which ``resume`` cuts off before continuing. Each sample's randomness comes from its
global index (:mod:`.sampling`), so the file is the same for any chunk size or worker count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from sciprune.errors import InputError
from sciprune.shards import map_shards
from sciprune.studies.moth.integrator import Tolerances, integrate
from sciprune.studies.moth.physics import STATE, Constants, rhs
from sciprune.studies.moth.sampling import Ranges, draw

VERSION = "sciprune-moth-data-1"
HORIZON = 0.02  # s: the controls are held for 20 ms
COLUMNS = tuple(f"{s}_0" for s in STATE) + tuple(f"{s}_f" for s in STATE) + ("F", "alpha", "tau0")
JAC_COLS = (1, 3, 4, 5, 6, 7)  # the right-hand side does not depend on the position (x, y)


@dataclass(frozen=True)
class Chunk:
    """Samples ``start..stop-1`` simulated: rows ``[k, 19]``, their indices, and the failed indices."""

    start: int
    stop: int
    rows: np.ndarray
    index: np.ndarray
    failed: np.ndarray


def simulate_range(seed: int, start: int, stop: int, ranges: Ranges = Ranges(), constants: Constants = Constants(),
                   tol: Tolerances = Tolerances(), device: str = "cpu") -> Chunk:
    """Draw and integrate samples ``start..stop-1`` (on ``device``; drawn on the CPU); non-converged ones
    go to ``failed``."""
    y0, u = draw(seed, start, stop, ranges)
    y0t, ut = torch.from_numpy(y0).to(device), torch.from_numpy(u).to(device)
    res = integrate(lambda y, c: rhs(y, c, constants), y0t, ut, HORIZON, tol, JAC_COLS)
    ok = res.ok.cpu().numpy()
    rows = np.concatenate([y0, res.y.cpu().numpy(), u], axis=1)[ok]
    index = np.arange(start, stop, dtype=np.int64)
    return Chunk(start, stop, rows, index[ok], index[~ok])


def _metadata(seed: int, samples: int, ranges: Ranges, constants: Constants, tol: Tolerances) -> dict[str, Any]:
    return {
        "version": VERSION, "seed": seed, "samples": samples, "horizon": HORIZON,
        "columns": json.dumps(list(COLUMNS)),
        "ranges": json.dumps(ranges.as_dict()),
        "constants": json.dumps(constants.as_dict()),
        "integrator": json.dumps({"method": "Rodas4 (batched, adaptive per sample)", "rtol": tol.rtol,
                                  "atol": list(tol.atol), "h0": tol.h0, "max_steps": tol.max_steps}),
    }


def _shard(args: tuple[int, int, int, Ranges, Constants, Tolerances, str]) -> Chunk:
    seed, start, stop, ranges, constants, tol, device = args
    return simulate_range(seed, start, stop, ranges, constants, tol, device)


def simulate_file(
    out: str | Path, samples: int, *, seed: int = 12345, chunk: int = 65536, workers: int = 1,
    scheduler: str | None = None, resume: bool = False, ranges: Ranges = Ranges(),
    constants: Constants = Constants(), tol: Tolerances = Tolerances(),
    progress: Callable[..., Iterator[Any]] | None = None, device: str = "cpu",
) -> dict[str, int]:
    """Simulate ``samples`` samples into ``out`` (integrated on ``device``); returns ``{"rows", "failed", "samples"}``."""
    if samples <= 0:
        raise InputError(f"--samples must be a positive number of samples; got {samples}")
    if chunk <= 0:
        raise InputError(f"--chunk must be positive; got {chunk}")
    out = Path(out)
    meta = _metadata(seed, samples, ranges, constants, tol)
    if out.exists() and not resume:
        raise InputError(f"{out} exists; pass --resume to continue it or choose another --out")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(out, "w") as f:
            f.create_dataset("samples", shape=(0, len(COLUMNS)), maxshape=(None, len(COLUMNS)), dtype="f8", chunks=(4096, len(COLUMNS)))
            f.create_dataset("index", shape=(0,), maxshape=(None,), dtype="i8", chunks=(4096,))
            f.create_dataset("failed", shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
            f.attrs.update(meta)
            f.attrs["next_sample"] = 0
    with h5py.File(out, "a") as f:
        for key in ("version", "seed", "ranges", "constants", "integrator", "horizon"):
            if key not in f.attrs or f.attrs[key] != meta[key]:
                raise InputError(f"{out} was made with another {key} ({f.attrs.get(key)!r}); expected {meta[key]!r}: use a new --out")
        done = int(f.attrs["next_sample"])
        if samples < done:
            raise InputError(f"{out} already holds {done} samples; --samples must be >= {done}; got {samples}")
        f.attrs["samples"] = samples
        rows = int(np.searchsorted(f["index"][:], done)) if f["index"].shape[0] else 0
        f["samples"].resize((rows, len(COLUMNS)))  # cut off a chunk a killed run left half-written
        f["index"].resize((rows,))
        failed = f["failed"][:]
        f["failed"].resize((int((failed < done).sum()),))

        bounds = [(s, min(s + chunk, samples)) for s in range(done, samples, chunk)]
        pending: dict[int, Chunk] = {}
        state = {"next": 0}

        def write(i: int, c: Chunk) -> None:
            pending[i] = c
            while state["next"] in pending:
                c = pending.pop(state["next"])
                for name, data in (("samples", c.rows), ("index", c.index), ("failed", c.failed)):
                    ds = f[name]
                    n = ds.shape[0]
                    ds.resize((n + len(data), *ds.shape[1:]))
                    ds[n:] = data
                f.attrs["next_sample"] = c.stop
                f.flush()
                state["next"] += 1

        items = [(seed, a, b, ranges, constants, tol, device) for a, b in bounds]
        map_shards(_shard, items, workers=workers, scheduler=scheduler, progress=progress, desc="simulate", on_result=write)
        return {"rows": int(f["samples"].shape[0]), "failed": int(f["failed"].shape[0]), "samples": samples}
