"""File names of the prune study's outputs (one place, below the protocol and the timing pass)."""

from __future__ import annotations


def stage_name(method: str, stage: int, sparsity: float) -> str:
    """``<method>-<stage>-s<sparsity>``: the file name of a stage's compacted network."""
    return f"{method}-{stage:03d}-s{sparsity:g}"
