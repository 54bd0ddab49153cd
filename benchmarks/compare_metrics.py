"""Two runs' ``metrics.csv`` compared column by column (used by ``gpu_check.sh``: cuda vs cpu).

    python benchmarks/compare_metrics.py CPU_RUN GPU_RUN [--rel 0.1] [--abs 1e-3]

Rows are matched in order (both runs write them in the same order). For every column numeric in
both files it prints the largest difference ``|a - b| / max(|a|, abs_floor)``; a column is *equal
within tolerance* when that is at most ``--rel``. Text columns must be equal. Exit status 0 when every
column is within tolerance, 1 otherwise (the script prints which and by how much).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def compare(a_dir: Path, b_dir: Path, rel: float, floor: float) -> list[tuple[str, str, float]]:
    """``(column, "ok" | "DIFFERS" | "text differs", worst relative difference)`` per column."""
    a = list(csv.DictReader((a_dir / "metrics.csv").open()))
    b = list(csv.DictReader((b_dir / "metrics.csv").open()))
    if len(a) != len(b):
        return [("rows", "DIFFERS", float(abs(len(a) - len(b))))]
    out = []
    for col in a[0].keys() if a else []:
        worst, text_ok, numeric = 0.0, True, True
        for ra, rb in zip(a, b):
            x, y = ra.get(col, ""), rb.get(col, "")
            fx, fy = _number(x), _number(y)
            if fx is None or fy is None:
                numeric = numeric and x == y == ""
                text_ok = text_ok and x == y
                continue
            if math.isnan(fx) and math.isnan(fy):
                continue
            d = abs(fx - fy) / max(abs(fx), floor)
            worst = max(worst, d if math.isfinite(d) else math.inf)
        if not numeric:
            out.append((col, "ok" if text_ok else "text differs", 0.0))
        else:
            out.append((col, "ok" if worst <= rel else "DIFFERS", worst))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--rel", type=float, default=0.1, help="relative tolerance per value (default 0.1)")
    ap.add_argument("--abs", type=float, default=1e-3, help="values below this are compared absolutely")
    args = ap.parse_args()
    rows = compare(args.a, args.b, args.rel, args.abs)
    bad = [r for r in rows if r[1] != "ok"]
    worst = max((r[2] for r in rows if r[1] == "ok"), default=0.0)
    print(f"{len(rows)} columns; {len(rows) - len(bad)} equal within rel {args.rel:g} (largest {worst:.3g}); "
          + ("differing: " + ", ".join(f"{c} ({s}, {d:.3g})" for c, s, d in bad) if bad else "none differ"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
