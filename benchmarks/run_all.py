"""Run every ``benchmarks/bench_*.py`` in turn, each in its own process (threads pinned to 1).

That is ``bench_amr.py`` (about five minutes; needs PyMFEM), ``bench_compact.py``, ``bench_flows.py``,
``bench_id.py``, ``bench_masks.py`` and ``bench_nif.py`` (about a minute), and any script added under
that name pattern.
Usage: ``python benchmarks/run_all.py [name-filter]``, e.g. ``python benchmarks/run_all.py id``.
Exits non-zero if any benchmark fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    scripts = sorted(p for p in here.glob("bench_*.py") if pattern in p.stem)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    failed = []
    for script in scripts:
        print(f"==> {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], env=env)
        print(f"<== {script.name}: exit {code}, {time.perf_counter() - start:.0f} s\n", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
