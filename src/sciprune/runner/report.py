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
from sciprune.files import atomic_write_json, collecting_notes, read_csv
from sciprune.htmlreport import section, page
from sciprune.files import atomic_write_bytes, atomic_write_text
from sciprune.studies.base import METRICS, Rows, Study
from sciprune.validate import read_text

#: columns every study's metrics.csv has (the results-dir contract)
REQUIRED = ("method", "seed", "sparsity", "params_nnz")
_LABEL = ("method", "variant", "role", "seed", "member", "it", "stage", "sparsity")
MAX_METRICS_BYTES = 256 << 20


def read_metrics(run_dir: Path, study: Study | None = None, cfg: Any = None) -> Rows:
    """Rows of ``run_dir/metrics.csv`` (none if it is missing); a file that is not sciprune's, or rows that are
    not ``study``'s (its columns, their kinds, its method names for ``cfg``), are one clear line."""
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
    needed = [*REQUIRED, *(study.columns if study is not None else ())]
    missing = [c for c in needed if c not in header]
    if missing:
        whose = f"the metrics.csv of a sciprune {study.name} run" if study is not None else "the metrics.csv of a sciprune run"
        raise InputError(f"metrics file {str(path)!r} lacks the columns {', '.join(missing)}; "
                         f"expected {whose} (it was not written by sciprune, or was damaged)")
    bad = next((i for i, w in enumerate(widths) if w != len(header)), None)
    if bad is not None:
        raise InputError(f"metrics file {str(path)!r}: row {bad + 1} has {widths[bad]} fields, the header {len(header)}; "
                         "expected the metrics.csv of a sciprune run (truncated or damaged)")
    rows = read_csv(path)
    if study is not None:
        _check_rows(path, rows, study, cfg)
    return rows


_KINDS = {"text": "text", "int": "an integer", "number": "a number", "fraction": "a number in [0, 1]"}


def _kind_ok(kind: str, v: Any) -> bool:
    if v is None:
        return kind != "text"
    if kind == "text":
        return isinstance(v, str)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if kind == "int":
        return isinstance(v, int)
    if kind == "fraction":
        return not math.isfinite(v) or 0 <= v <= 1
    return True


def _check_rows(path: Path, rows: Rows, study: Study, cfg: Any) -> None:
    """Each row has the kinds of value ``study`` records and one of its method names."""
    kinds = {"method": "text", "seed": "int", "sparsity": "fraction", "params_nnz": "number", **study.columns}
    methods = set(study.methods(cfg)) if study.methods is not None and cfg is not None else None
    for i, row in enumerate(rows, start=1):
        for col, kind in kinds.items():
            if not _kind_ok(kind, row.get(col)):
                raise InputError(f"metrics file {str(path)!r}: row {i} has {col}={row.get(col)!r}; expected {_KINDS[kind]} "
                                 f"(it is not a row of a sciprune {study.name} run: the file was damaged or mixed with another's)")
        if methods is not None and row["method"] not in methods:
            raise InputError(f"metrics file {str(path)!r}: row {i} has method={row['method']!r}; expected one of "
                             f"{', '.join(sorted(methods))} for this {study.name} run (a row of another study or config)")


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


def _top_files(run_dir: Path) -> list[Path]:
    """The files directly in ``run_dir`` (where a study's report writes its derived tables), the lock's aside."""
    return [p for p in run_dir.iterdir() if p.is_file() and not p.name.startswith(".sciprune.")]


def write_study_report(study: Study, cfg: Any, rows: Rows, run_dir: Path, *, config_text: str) -> Path:
    """``summary.json``, ``plots/*.png`` and ``report.html`` of ``run_dir`` from ``rows``, all or nothing:
    if making any of them fails, the files of the previous report are put back as they were, and files
    the failed attempt created beside them (a study's derived tables) are removed."""
    saved = {p: p.read_bytes() for p in _outputs(run_dir) if p.is_file()}
    existing = set(_top_files(run_dir))
    try:
        return _write(study, cfg, rows, run_dir, config_text=config_text)
    except BaseException:
        for p in [*_outputs(run_dir), *_top_files(run_dir)]:
            if p not in saved and p not in existing:
                p.unlink(missing_ok=True)
        for p, data in saved.items():
            if not p.is_file() or p.read_bytes() != data:
                atomic_write_bytes(p, data)
        raise


def _write(study: Study, cfg: Any, rows: Rows, run_dir: Path, *, config_text: str) -> Path:
    stages = diverged(rows)
    clean = finite_rows(rows)
    with collecting_notes() as missing:
        summary = dict(study.summarize(cfg, clean, run_dir))
        plots = study.plot(cfg, clean, run_dir)
        extra = study.describe(cfg, clean, run_dir) if study.describe else ""
    if stages:
        summary["diverged_stages"] = [{"stage": label, "columns": cols} for label, cols in stages]
    if missing:
        summary["missing_statistics"] = list(missing)
    atomic_write_json(run_dir / "summary.json", summary)
    path = run_dir / "report.html"
    atomic_write_text(path, page(study.title, section(title=study.title, config=config_text, summary=summary,
                                                      plots=plots, rows=rows, extra_html=extra,
                                                      notes=_notes(stages) + _missing_notes(missing))))
    return path


def _missing_notes(missing: list[str]) -> str:
    if not missing:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
    return (f"<div class='diverged'><h2>Missing statistics ({len(missing)})</h2><p>These files of the results folder "
            f"could not be found; the figures they hold are left out of the summary and the plots.</p><ul>{items}</ul></div>")
