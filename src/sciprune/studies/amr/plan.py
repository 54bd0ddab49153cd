r"""The cost plan of ``sciprune amr`` (``--plan``): one task, the refinement loop in this process.

The loop's length is decided as it runs (marking, tolerance), so the plan bounds it: at most
``max_it`` iterations and ``max_dofs`` DOFs. Every element is examined once, when it appears (bulk)
or the iteration after it appears (pruning, basic), so at most about
:math:`n_E \cdot 2^d / (2^d - 1)` elements are examined, :math:`n_E \approx` the DOF limit (a quad or
hex mesh has about one vertex per element). The probes time one chunk (128 elements) of the mode's
examination and one true-error estimate on the initial mesh, and the true-error set-up (the INR on
``rmse_points`` points: once for the run, once for the uniform baseline); the baseline adds one
estimate per uniform level up to ``baseline_max_dofs``.
"""

from __future__ import annotations

import math

import numpy as np

from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.planning import Phase, Plan, Probe, finish, mlp_flops


def plan(cfg: AMRConfig, calibrate: bool) -> Plan:
    from sciprune.studies.amr.driver import make_lift, single_threaded_torch
    from sciprune.studies.amr.evaluate import TrueError
    from sciprune.studies.amr.examine import CHUNK, ElementPass, examine
    from sciprune.studies.amr.inr import resolve_inr
    from sciprune.studies.amr.meshing import AMRMesh, load_mesh

    inr = resolve_inr(cfg.inr)
    spec = cfg.mesh or inr.default_mesh
    amr = AMRMesh(load_mesh(spec))
    dim = amr.dim
    lift = make_lift(inr, dim, cfg.time_slice, spec)
    children = 2**dim
    corners = np.resize(np.ascontiguousarray(amr.corners()), (CHUNK, children, dim))  # the initial elements, repeated
    ids = np.arange(CHUNK)
    n_id, n_err = cfg.id_sample_count(), cfg.error_samples
    seed = cfg.seed

    def chunk() -> None:
        with single_threaded_torch():
            vals = np.zeros((CHUNK, children)) if cfg.mode == "basic" else None
            examine(ElementPass.of(cfg, inr, lift, 0), corners, ids, vals)

    error: list[TrueError] = []

    def setup() -> None:
        error[:] = [TrueError(amr, inr, lift, cfg.component, seed=cfg.seed, n_points=cfg.rmse_points)]

    def estimate() -> None:
        if not error:
            setup()
        error[0].estimate(amr)

    max_dofs, iterations = cfg.dof_limit(dim), cfg.iterations()
    elements = min(max_dofs, amr.ne * children**iterations)
    examined = 0.0 if cfg.mode == "uniform" else elements * children / (children - 1)
    levels = max(0, int(math.floor(math.log(max(cfg.baseline_max_dofs / max(amr.dofs, 1), 1.0), children))))
    baseline = levels if cfg.uniform_baseline and cfg.mode != "uniform" else 0
    points = cfg.rmse_points or 1 << 18
    net_flops = mlp_flops(inr.mlp.sizes, 1)
    probes = [
        Probe(f"true-error set-up: the INR on {points} points", 1 + (1 if baseline else 0), net_flops * points, setup),
        Probe("true-error estimate (locate the points, interpolate)", iterations + baseline, 50.0 * points, estimate),
    ]
    if examined:
        samples = n_err + (n_id if cfg.mode != "basic" else 0)
        probes.insert(0, Probe(f"examination of {CHUNK} elements ({cfg.mode}"
                               + (f", {cfg.indicator}" if cfg.mode == "bulk" else "") + ")",
                               examined / CHUNK, CHUNK * samples * net_flops * 3, chunk))
    memory = 8.0 * points * (dim + 4) + 8.0 * elements * (children * (dim + 1) + 16) * 4
    notes = (f"an upper bound: at most {iterations} iterations and about {elements} elements "
             f"(the DOF limit {max_dofs}); marking or a tolerance usually stops the loop earlier",
             "one task in this process: --workers threads share the element pass (not modelled here); no dask path")
    return finish(Plan("amr", (Phase(f"refinement loop ({cfg.mode}) and uniform baseline", 1, tuple(probes), memory,
                                     parallel=False),), notes), calibrate)
