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
import shutil
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


MAX_SAMPLES = 100_000_000
MAX_CHUNK = 10_000_000
MAX_SEED = 2**63 - 1  # the seed is stored as an HDF5 int64 attribute
ROW_BYTES = 8 * (len(COLUMNS) + 1)  # a row and its index, float64 / int64
CPU_S_PER_SAMPLE = 1e-3  # measured: about 0.7 ms per sample on one core (docs/moth.md), rounded up
EXPECT_OLD = "a file of sciprune moth simulate to continue"


def _integer(value: object, flag: str, low: int, high: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{flag} must be an integer in [{low}, {high}]; got {value!r}{hint}")
    return value


def check_request(out: str | Path, samples: int, *, seed: int, chunk: int, workers: int, scheduler: str | None,
                  resume: bool) -> Path:
    """Every argument of :func:`simulate_file`, checked before anything is created or opened for writing;
    an existing ``out`` (with ``resume``) is checked read-only. Returns ``out`` as a path."""
    from sciprune.validate import format_bytes, output_file, scheduler_address

    if isinstance(samples, int) and not isinstance(samples, bool) and samples <= 0:
        raise InputError(f"--samples must be a positive number of samples; got {samples}")
    if isinstance(samples, int) and not isinstance(samples, bool) and samples > MAX_SAMPLES:
        raise InputError(f"--samples {samples} would write about {format_bytes(samples * ROW_BYTES)} and take about "
                         f"{samples * CPU_S_PER_SAMPLE / 3600:.3g} CPU-hours; expected at most {MAX_SAMPLES} per file "
                         "(simulate several files with different --seed)")
    _integer(samples, "--samples", 1, MAX_SAMPLES)
    _integer(chunk, "--chunk", 1, MAX_CHUNK)
    _integer(seed, "--seed", 0, MAX_SEED)
    _integer(workers, "--workers", 1, 1024, " (1: in-process)")
    if scheduler is not None:
        scheduler_address(scheduler)
    path = output_file(out, "--out", "an HDF5 file to write")
    if path.exists() and not resume:
        raise InputError(f"--out {str(out)!r} exists; pass --resume to continue it or choose another --out")
    folder = next(p for p in [path.absolute().parent, *path.absolute().parents] if p.exists())
    free = shutil.disk_usage(folder).free
    if samples * ROW_BYTES > free:
        raise InputError(f"--samples {samples} needs about {format_bytes(samples * ROW_BYTES)} on disk; "
                         f"{str(folder)!r} has {format_bytes(free)} free")
    return path


def _check_existing(path: Path, meta: dict[str, Any], samples: int) -> None:
    """A file to resume, checked read-only: sciprune's layout, the same settings, consistent counts."""
    from sciprune.validate.hdf5 import attribute, dataset, open_hdf5, read

    what = "--out"
    with open_hdf5(path, what, EXPECT_OLD) as f:
        for key in ("version", "seed", "ranges", "constants", "integrator", "horizon"):
            got = attribute(f, key, what, EXPECT_OLD, "any")
            if got is None or got != meta[key]:
                raise InputError(f"{path} was made with another {key} ({got!r}); expected {meta[key]!r}: use a new --out")
        done = attribute(f, "next_sample", what, EXPECT_OLD, "int")
        if done is None:
            raise InputError(f"--out {str(path)!r} has no attribute 'next_sample'; expected {EXPECT_OLD}")
        rows = dataset(f, "samples", what, EXPECT_OLD, ndim=2, columns=len(COLUMNS), kinds="f")
        index = dataset(f, "index", what, EXPECT_OLD, ndim=1, kinds="iu")
        failed = dataset(f, "failed", what, EXPECT_OLD, ndim=1, kinds="iu")
        for ds in (rows, index, failed):
            if ds.maxshape[0] is not None or ds.chunks is None:
                raise InputError(f"--out {str(path)!r}: dataset {ds.name!r} cannot grow; expected {EXPECT_OLD}")
        idx = read(index, what, EXPECT_OLD)
        if idx.shape[0] != rows.shape[0] or np.any(np.diff(idx) <= 0) or (idx.size and idx[0] < 0):
            raise InputError(f"--out {str(path)!r} is damaged: {rows.shape[0]} rows, {idx.shape[0]} sample indices "
                             f"(expected as many, increasing); expected {EXPECT_OLD}")
        read(failed, what, EXPECT_OLD)
    if samples < done:
        raise InputError(f"{path} already holds {done} samples; --samples must be >= {done}; got {samples}")


def file_state(path: Path) -> tuple[int, int] | None:
    """``(next_sample, samples)`` of a simulated file when it can be read, else ``None``."""
    from sciprune.validate.hdf5 import attribute, open_hdf5

    try:
        with open_hdf5(path, "data file", EXPECT_OLD) as f:
            done = attribute(f, "next_sample", "data file", EXPECT_OLD, "int")
            wanted = attribute(f, "samples", "data file", EXPECT_OLD, "int")
    except InputError:
        return None
    return None if done is None or wanted is None else (done, wanted)


def simulate_file(
    out: str | Path, samples: int, *, seed: int = 12345, chunk: int = 65536, workers: int = 1,
    scheduler: str | None = None, resume: bool = False, ranges: Ranges = Ranges(),
    constants: Constants = Constants(), tol: Tolerances = Tolerances(),
    progress: Callable[..., Iterator[Any]] | None = None, device: str = "cpu",
) -> dict[str, int]:
    """Simulate ``samples`` samples into ``out``; returns ``{"rows", "failed", "samples"}``.

    Every argument, and an existing ``out`` (read-only), is checked (:func:`check_request`) before
    anything is created or written.
    """
    out = check_request(out, samples, seed=seed, chunk=chunk, workers=workers, scheduler=scheduler, resume=resume)
    meta = _metadata(seed, samples, ranges, constants, tol)
    if out.exists():
        _check_existing(out, meta, samples)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(out, "x") as f:
            f.create_dataset("samples", shape=(0, len(COLUMNS)), maxshape=(None, len(COLUMNS)), dtype="f8", chunks=(4096, len(COLUMNS)))
            f.create_dataset("index", shape=(0,), maxshape=(None,), dtype="i8", chunks=(4096,))
            f.create_dataset("failed", shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
            f.attrs.update(meta)
            f.attrs["next_sample"] = 0
    try:
        f = h5py.File(out, "a")
    except OSError as err:
        raise InputError(f"--out {str(out)!r} cannot be opened for writing ({err.strerror or 'in use by another process?'}); "
                         "expected a file no other run is writing") from None
    with f:
        done = int(f.attrs["next_sample"])
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
