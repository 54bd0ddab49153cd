"""The refinement loop: uniform phase, adaptive phase, outputs per iteration, uniform baseline.

Iteration ``it`` (``0 <= it < max_it``) refines the mesh once, then sets the vertex values
``u_h[j] = f(v_j)`` (one batched forward for all vertices, hanging vertices constrained), measures
the true error on the fixed point set (:mod:`.evaluate`) and writes ``it_<it>.mesh`` / ``.gf``
(and a ParaView cycle). The first ``num_uniform_ref`` iterations (all of them in ``uniform`` mode)
refine every element. Each later iteration examines only the elements created by the previous
refinement (``born == it - 1``; the first examined iteration after zero uniform refinements looks
at the initial elements) and refines those PruningAMR / BasicAMR flags. In ``bulk`` mode every leaf
has an indicator (computed once, when the leaf appears: :class:`BulkMarker`) and the Dörfler set of
all leaves is refined (:mod:`.marking`). The loop stops early when an adaptive iteration would start
with ``dofs >= max_dofs`` (the mode's default: ``AMRConfig.dof_limit``) or when nothing is flagged;
in ``bulk`` mode with a ``tolerance``, also before refining a mesh whose estimated error, the
indicator's :math:`(\\sum_E \\eta_E^2 / \\sum_E |E|)^{1/2}` (``IterationRecord.estimate``), is at most
``tolerance`` times the standard deviation of the INR's vertex values where the adaptive phase
starts (``AMRResult.field_scale``): a relative accuracy, the same for any scaling of the field and
any network representing it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sciprune.errors import InputError
from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.amr.evaluate import TrueError, VertexValues
from sciprune.studies.amr.examine import ElementPass, Progress, Verdicts, examine
from sciprune.studies.amr.marking import dorfler, element_sizes, indicator
from sciprune.studies.amr.inr import INR
from sciprune.studies.amr.meshing import AMRMesh, ParaViewWriter, load_mesh, named_mesh


@dataclass
class IterationRecord:
    """What one iteration did and measured (one ``parameters.json`` record / ``metrics.csv`` row)."""

    it: int
    dofs: int
    true_dofs: int
    elements: int
    rmse: float
    max_error: float
    seconds: float
    kind: str = "uniform"
    examined: int = 0
    refined: int = 0
    mean_proportion: float | None = None
    max_level: int = 0
    seconds_examine: float = 0.0
    seconds_error: float = 0.0
    rmse_se: float = 0.0
    estimate: float | None = None


@dataclass
class AMRResult:
    iterations: list[IterationRecord]
    stop_reason: str
    baseline: list[IterationRecord] = field(default_factory=list)
    initial: dict[str, Any] = field(default_factory=dict)
    points: np.ndarray | None = None
    limits: dict[str, int] = field(default_factory=dict)
    field_scale: float | None = None

    def records(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.iterations]


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch ops on the calling thread only (restored afterwards).

    The element pass is many small batched ops: intra-op threads only add synchronisation (and
    on a loaded machine OpenMP spin-waiting made one iteration 50x slower). Parallelism comes from
    ``workers`` threads taking whole chunks instead, and results do not depend on the thread
    settings of the environment.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_lift(inr: INR, dim: int, time_slice: float, mesh_spec: str) -> Callable[[np.ndarray], np.ndarray]:
    """Mesh points -> INR inputs: identity, or ``(x, t)`` with ``t = time_slice`` for a space-time INR.

    A ``time_slice`` other than the default (1.0) for an INR without a time input is refused (one line):
    it would change nothing, and a flag is never silently ignored."""
    if inr.d_in == dim:
        if time_slice != AMRConfig.model_fields["time_slice"].default:
            raise InputError(f"--time-slice {time_slice:g} is read only by a space-time INR ({dim + 1} inputs); "
                             f"INR {inr.name!r} takes {inr.d_in} (space only): leave --time-slice out")
        return lambda x: x
    if inr.d_in == dim + 1:
        def lift(x: np.ndarray) -> np.ndarray:
            t = np.full(x.shape[:-1] + (1,), time_slice, dtype=np.float64)
            return np.concatenate([x, t], axis=-1)
        return lift
    raise InputError(
        f"INR {inr.name!r} takes {inr.d_in} inputs but mesh {mesh_spec!r} is {dim}-D; "
        f"expected an INR with {dim} inputs (or {dim + 1}: space plus --time-slice)"
    )


class BulkMarker:
    """The bulk criterion's state: the ID ranks and element errors of every leaf element seen so far,
    keyed by the element's corner coordinates (a leaf is ID-pruned once, when it first appears)."""

    def __init__(self) -> None:
        self.ranks: dict[bytes, np.ndarray] = {}
        self.residual: dict[bytes, float] = {}
        self.estimate = float("nan")

    def __call__(self, cfg: AMRConfig, inr: INR, lift: Callable[[np.ndarray], np.ndarray], amr: AMRMesh, it: int,
                 workers: int, progress: Progress | None) -> tuple[np.ndarray, Verdicts]:
        """``(flags over all elements, verdicts of the newly examined ones)``."""
        corners = np.ascontiguousarray(amr.corners())
        keys = [c.tobytes() for c in corners]
        ids = np.array([i for i, k in enumerate(keys) if k not in self.ranks], dtype=np.int64)
        v = examine(ElementPass.of(cfg, inr, lift, it, workers=workers, progress=progress), corners[ids], ids)
        kept = v.ranks if v.ranks is not None else np.zeros((len(ids), len(inr.widths)), dtype=np.int64)
        self.ranks.update(zip((keys[i] for i in ids), kept))
        self.residual.update(zip((keys[i] for i in ids), v.error))
        ranks = np.stack([self.ranks[k] for k in keys])
        residual = np.array([self.residual[k] for k in keys])
        eta2 = indicator(ranks, corners, cfg.indicator, residual)
        volume = float(element_sizes(corners)[1].sum())
        self.estimate = float(np.sqrt(eta2.sum() / volume)) if volume > 0 else float("nan")
        return dorfler(eta2, cfg.fraction), v


def run_amr(cfg: AMRConfig, inr: INR, *, out: Path | None, workers: int = 1,
            progress: Callable[..., Any] | None = None) -> AMRResult:
    """Run the refinement loop of ``cfg`` on ``inr``; writes the per-iteration files into ``out``."""
    with single_threaded_torch():
        mesh_spec = cfg.mesh or inr.default_mesh
        amr = AMRMesh(load_mesh(mesh_spec))
        lift = make_lift(inr, amr.dim, cfg.time_slice, mesh_spec)
        if cfg.component >= inr.d_out:
            raise InputError(f"component={cfg.component} but INR {inr.name!r} has {inr.d_out} outputs; expected 0..{inr.d_out - 1}")
        values = VertexValues(inr, lift, cfg.component)
        error = TrueError(amr, inr, lift, cfg.component, seed=cfg.seed, n_points=cfg.rmse_points)
        initial = {"elements": amr.ne, "dofs": amr.dofs, "true_dofs": amr.true_dofs}
        paraview = ParaViewWriter(amr, out) if (cfg.paraview and out is not None) else None
        chunk_bar: Progress | None = None
        if progress is not None:
            chunk_bar = lambda it, total: progress(it, desc="elements (chunks)", total=total)  # noqa: E731
        records: list[IterationRecord] = []
        bulk = BulkMarker()
        stop = "max_it"
        scale: float | None = None
        max_it, max_dofs = cfg.iterations(), cfg.dof_limit(amr.dim)
        steps = range(max_it) if progress is None else progress(range(max_it), desc=f"amr {cfg.mode}", total=max_it)
        for it in steps:
            t0 = time.perf_counter()
            uniform = cfg.mode == "uniform" or it < cfg.num_uniform_ref
            if it >= cfg.num_uniform_ref and amr.dofs >= max_dofs:
                stop = "max_dofs"
                break
            record = IterationRecord(it, 0, 0, 0, 0.0, 0.0, 0.0, kind="uniform" if uniform else cfg.mode)
            if uniform:
                flags = np.ones(amr.ne, dtype=bool)
            elif cfg.mode == "bulk":
                if scale is None:  # the field's spread where the adaptive phase starts
                    scale = float(np.std(amr.values()))
                flags, verdicts = bulk(cfg, inr, lift, amr, it, workers, chunk_bar)
                record.estimate = bulk.estimate
                if cfg.tolerance is not None and bulk.estimate <= cfg.tolerance * scale:
                    stop = "tolerance"
                    break
                record.examined = len(verdicts.flags)
                if verdicts.proportion is not None and len(verdicts.flags):
                    record.mean_proportion = float(verdicts.proportion.mean())
                record.seconds_examine = time.perf_counter() - t0
                if not flags.any():
                    stop = "no_refinement"
                    break
            else:
                ids = np.flatnonzero(amr.born == it - 1)  # the elements the last refinement created
                corner_vals = amr.values()[amr.element_vertices()[ids]] if cfg.mode == "basic" else None
                verdicts = examine(ElementPass.of(cfg, inr, lift, it, workers=workers, progress=chunk_bar),
                                   amr.corners()[ids], ids, corner_vals)
                flags = np.zeros(amr.ne, dtype=bool)
                flags[ids[verdicts.flags]] = True
                record.examined = int(len(ids))
                if verdicts.proportion is not None and len(ids):
                    record.mean_proportion = float(verdicts.proportion.mean())
                record.seconds_examine = time.perf_counter() - t0
                if not flags.any():
                    stop = "no_refinement"
                    break
            record.refined = amr.refine(flags, it)
            amr.set_values(values(amr))
            t1 = time.perf_counter()
            record.rmse, record.max_error, record.rmse_se = error.estimate(amr)
            record.seconds_error = time.perf_counter() - t1
            record.dofs, record.true_dofs, record.elements = amr.dofs, amr.true_dofs, amr.ne
            record.max_level = int(amr.level.max())
            if out is not None:
                amr.save(out, it)
                if paraview is not None:
                    paraview.write(it)
            record.seconds = time.perf_counter() - t0
            records.append(record)
        return AMRResult(records, stop, initial=initial, points=error.points,
                         limits={"max_it": max_it, "max_dofs": max_dofs}, field_scale=scale)


def run_uniform_baseline(cfg: AMRConfig, inr: INR, target_rmse: float) -> list[IterationRecord]:
    """Uniform refinement of the same mesh until its true RMSE reaches ``target_rmse`` (one level
    past it, so equal-error DOFs can be interpolated): MFEM meshes up to ``baseline_max_dofs``, then,
    for a ``square[:N]`` / ``cube[:N]`` mesh, the same levels as regular grids
    (:meth:`~sciprune.studies.amr.evaluate.TrueError.grid_estimate`, records of ``kind = "grid"``)
    up to :data:`GRID_MAX_DOFS`."""
    with single_threaded_torch():
        mesh_spec = cfg.mesh or inr.default_mesh
        amr = AMRMesh(load_mesh(mesh_spec))
        lift = make_lift(inr, amr.dim, cfg.time_slice, mesh_spec)
        values = VertexValues(inr, lift, cfg.component)
        error = TrueError(amr, inr, lift, cfg.component, seed=cfg.seed, n_points=cfg.rmse_points)
        records: list[IterationRecord] = []
        for it in range(64):
            if amr.dofs * 2**amr.dim > cfg.baseline_max_dofs:
                break
            t0 = time.perf_counter()
            amr.refine(np.ones(amr.ne, dtype=bool), it)
            amr.set_values(values(amr))
            rmse, max_err, se = error.estimate(amr)
            records.append(IterationRecord(it, amr.dofs, amr.true_dofs, amr.ne, rmse, max_err,
                                           time.perf_counter() - t0, refined=amr.ne // 2**amr.dim,
                                           max_level=int(amr.level.max()), rmse_se=se))
            if rmse <= target_rmse and it >= 1:
                return records
        named = named_mesh(mesh_spec)
        if named is None or not records:
            return records
        cells = named[1]
        # past baseline_max_dofs the uniform levels of a square / cube are regular grids: go on without MFEM
        it, n = records[-1].it, cells * 2 ** (records[-1].it + 1)
        while (2 * n + 1) ** amr.dim <= GRID_MAX_DOFS[amr.dim]:
            it, n = it + 1, 2 * n
            t0 = time.perf_counter()
            rmse, max_err, se = error.grid_estimate(inr, lift, cfg.component, n)
            records.append(IterationRecord(it, (n + 1) ** amr.dim, (n + 1) ** amr.dim, n**amr.dim, rmse, max_err,
                                           time.perf_counter() - t0, kind="grid", refined=(n // 2) ** amr.dim,
                                           max_level=it + 1, rmse_se=se))
            if rmse <= target_rmse:
                break
        return records


#: the finest uniform level computed as a grid (DOFs): 4097^2 in 2-D, 129^3 in 3-D.
GRID_MAX_DOFS = {2: 1 << 24, 3: 1 << 21}

