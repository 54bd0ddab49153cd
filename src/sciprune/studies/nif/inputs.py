"""The inputs ``sciprune nif`` checks before its results folder is created: the user's data file (read
and checked column by column) and a held-out share that leaves training rows."""

from __future__ import annotations

import numpy as np

from sciprune.errors import InputError
from sciprune.studies.nif.config import NifConfig, check_memory
from sciprune.studies.nif.data import user_file


def rows_of(cfg: NifConfig) -> int:
    """Rows of the data set the config names (a user file is read, checked and its memory bound applied)."""
    d = cfg.data
    if d.kind in ("wave", "wave_high"):
        return 2000
    if d.kind == "ks":
        return len(d.nus) * d.nt * d.nx
    if d.kind == "flow2d":
        return d.nt * d.nx * d.nx
    assert d.path is not None
    c = d.columns
    data = user_file(d.path, c.p, c.x, c.u, c.weight)
    rows = int(data.u.shape[0])
    check_memory(cfg, rows, int(np.unique(data.p, axis=0).shape[0]), (c.p, c.x, c.u))
    return rows


def check(cfg: NifConfig) -> None:
    """Refuse, before anything is written, a bad data file or a test fraction that leaves no training row."""
    n = rows_of(cfg)
    fraction = getattr(cfg.data, "held_out", cfg.data.test_fraction)  # the share in effect
    if getattr(cfg.data, "split", "rows") == "rows" and fraction:
        n_test = int(round(fraction * n))
        if n - n_test < 1:
            raise InputError(f"data.test_fraction={fraction:g} holds out {n_test} of the data's {n} rows and leaves none "
                             f"to train on; expected a fraction below {(n - 0.5) / n:.4g} (or more rows)")
