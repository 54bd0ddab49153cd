"""Helpers for the AMR study tests: run the study into a folder, find the shared anchors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sciprune.studies.base import RunContext

REPO = Path(__file__).resolve().parents[3]
HOS = REPO.parent / "shared" / "anchors" / "pruningamr" / "high_oscillation_small_lists.ckpt"


def run_study(out: Path, workers: int = 1, **fields: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``STUDY`` with ``AMRConfig(**fields)`` into ``out``; returns the config and the rows."""
    from sciprune.studies.amr.config import AMRConfig
    from sciprune.studies.amr.study import STUDY

    cfg = AMRConfig(**fields)
    out.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out=out, quiet=True, workers=workers)
    STUDY.run(cfg, ctx)
    return cfg, ctx.read_rows()


@pytest.fixture
def hos_path() -> Path:
    if not HOS.is_file():
        pytest.skip(f"shared anchor {HOS} is absent")
    return HOS
