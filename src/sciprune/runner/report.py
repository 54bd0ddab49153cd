"""Summary, plots and report of a results folder, made from its recorded rows; divergence is an outcome.

A stage whose row holds NaN or ±inf (a diverged training, an INR that blew up) is *recorded*, never a
crash: the study's ``summarize`` / ``plot`` / ``describe`` see such values as ``None`` (missing), so
plots skip them; ``summary.json`` stays strict JSON (``null``) and gains ``diverged_stages``; the
report lists which stages diverged and in which columns. The rows in ``metrics.csv`` and in the
report's stage table keep the values as measured.
"""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from sciprune.errors import InputError
from sciprune.files import atomic_write_json, read_csv
from sciprune.htmlreport import section, page
from sciprune.files import atomic_write_bytes, atomic_write_text
from sciprune.studies.base import METRICS, Rows, Study
from sciprune.validate import read_text

#: columns every study's metrics.csv has (the results-dir contract)
REQUIRED = ("method", "seed", "sparsity", "params_nnz")
_LABEL = ("method", "variant", "role", "seed", "member", "it", "stage", "sparsity")
MAX_METRICS_BYTES = 256 << 20


def read_metrics(run_dir: Path) -> Rows:
    """Rows of ``run_dir/metrics.csv`` (none if it is missing); a file that is not sciprune's is one clear line."""
    path = run_dir / METRICS
    if not path.exists():
        return []
    text = read_text(path, "metrics file", max_bytes=MAX_METRICS_BYTES)
    if not text.strip():
        return []
    try:
        reader = csv.reader(text.splitlines())
        header = next(reader)
        widths = [len(r) for r in reader]
    except csv.Error as err:
        raise InputError(f"metrics file {str(path)!r} is not valid CSV ({err}); expected the metrics.csv of a sciprune run") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"metrics file {str(path)!r} lacks the columns {', '.join(missing)}; "
                         "expected the metrics.csv of a sciprune run (it was not written by sciprune, or was damaged)")
    bad = next((i for i, w in enumerate(widths) if w != len(header)), None)
    if bad is not None:
        raise InputError(f"metrics file {str(path)!r}: row {bad + 1} has {widths[bad]} fields, the header {len(header)}; "
                         "expected the metrics.csv of a sciprune run (truncated or damaged)")
    return read_csv(path)


def _bad(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def diverged(rows: Rows) -> list[tuple[str, list[str]]]:
    """``(stage label, non-finite columns)`` of every row that holds NaN or ±inf."""
    out = []
    for r in rows:
        cols = [k for k, v in r.items() if _bad(v)]
        if cols:
            out.append((", ".join(f"{k}={r[k]}" for k in _LABEL if k in r and r[k] not in (None, "")), cols))
    return out


def finite_rows(rows: Rows) -> Rows:
    """``rows`` with every NaN / ±inf replaced by ``None`` (what plots and summaries see)."""
    return [{k: (None if _bad(v) else v) for k, v in r.items()} for r in rows]


def _notes(stages: list[tuple[str, list[str]]]) -> str:
    if not stages:
        return ""
    items = "".join(f"<li>{html.escape(label)}: {html.escape(', '.join(cols))}</li>" for label, cols in stages)
    return (f"<div class='diverged'><h2>Diverged stages ({len(stages)})</h2><p>These stages produced NaN or "
            f"infinite values (in the columns named); plots and the summary leave them out.</p><ul>{items}</ul></div>")


def _outputs(run_dir: Path) -> list[Path]:
    plots = run_dir / "plots"
    return [run_dir / "summary.json", run_dir / "report.html", *(sorted(plots.glob("*.png")) if plots.is_dir() else [])]


def write_study_report(study: Study, cfg: Any, rows: Rows, run_dir: Path, *, config_text: str) -> Path:
    """``summary.json``, ``plots/*.png`` and ``report.html`` of ``run_dir`` from ``rows``, all or nothing:
    if making any of them fails, the files of the previous report are put back as they were."""
    saved = {p: p.read_bytes() for p in _outputs(run_dir) if p.is_file()}
    try:
        return _write(study, cfg, rows, run_dir, config_text=config_text)
    except BaseException:
        for p in _outputs(run_dir):
            if p not in saved:
                p.unlink(missing_ok=True)
        for p, data in saved.items():
            if not p.is_file() or p.read_bytes() != data:
                atomic_write_bytes(p, data)
        raise


def _write(study: Study, cfg: Any, rows: Rows, run_dir: Path, *, config_text: str) -> Path:
    stages = diverged(rows)
    clean = finite_rows(rows)
    summary = dict(study.summarize(cfg, clean, run_dir))
    if stages:
        summary["diverged_stages"] = [{"stage": label, "columns": cols} for label, cols in stages]
    atomic_write_json(run_dir / "summary.json", summary)
    plots = study.plot(cfg, clean, run_dir)
    extra = study.describe(cfg, clean, run_dir) if study.describe else ""
    path = run_dir / "report.html"
    atomic_write_text(path, page(study.title, section(title=study.title, config=config_text, summary=summary,
                                                      plots=plots, rows=rows, extra_html=extra, notes=_notes(stages))))
    return path
