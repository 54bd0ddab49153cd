"""Timing shared by the studies' timing passes (never in metrics.csv: it goes to timing.csv)."""

from __future__ import annotations

import time

import torch


def paired_times(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, *, repeats: int = 9) -> tuple[float, float]:
    """Best-of-``repeats`` forward times of ``a`` and ``b`` in ms, measured alternately on one
    thread, so a burst of load on a shared machine hits both alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            a(x), b(x)
            best = [float("inf"), float("inf")]
            for _ in range(repeats):
                for i, net in enumerate((a, b)):
                    t0 = time.perf_counter()
                    net(x)
                    best[i] = min(best[i], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 1e3 * best[0], 1e3 * best[1]
