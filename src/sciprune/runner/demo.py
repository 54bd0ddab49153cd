"""``sciprune demo``: every study's demo preset, one combined report."""

from __future__ import annotations

import json
from pathlib import Path

from sciprune.errors import InputError
from sciprune.runner.config import dump_config, load_preset
from sciprune.runner.results import LOCK, MARKER, PID
from sciprune.validate import output_dir
from sciprune.files import atomic_write_text
from sciprune.htmlreport import page, section
from sciprune.runner.run import load_run, run_config
from sciprune.runner.study import available_studies, get_study


def _check_demo_out(raw: str | Path) -> Path:
    """``raw`` new, empty, or an earlier demo's folder (study folders and report.html); else refused untouched."""
    out = output_dir(raw)
    if out.is_dir():
        ours = {*available_studies(), "report.html", LOCK, PID}
        others = sorted(p.name for p in out.iterdir() if p.name not in ours)
        if (out / "report.html").exists() and not any((out / s / MARKER).is_file() for s in available_studies()):
            others.append("report.html")
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise InputError(f"--out {str(raw)!r} is a folder with files that are not a sciprune demo ({shown}); "
                             "expected a new or empty folder or an earlier demo's: choose another --out")
    return out


def run_demo(out: str | Path, *, quiet: bool = False, resume: bool = False) -> Path:
    """Run ``demo`` of each study into ``out/<study>`` and write ``out/report.html``."""
    out = _check_demo_out(out)
    bodies = ["<h1>sciprune demo</h1><p>Each study's <code>demo</code> preset, run on this machine. "
              "Every figure below was measured by this run; each study's own report is in its folder.</p>"]
    for name in available_studies():
        run_dir = out / name
        run_config(load_preset(name, "demo"), out=run_dir, resume=resume or (run_dir / "config.yaml").exists(), quiet=quiet)
        cfg, rows = load_run(run_dir)
        study = get_study(name)
        summary = json.loads((run_dir / "summary.json").read_text())
        plots = sorted((run_dir / "plots").glob("*.png"))
        extra = study.describe(cfg, rows, run_dir) if study.describe else ""
        bodies.append(section(title=study.title, config=dump_config(cfg), summary=summary, plots=plots,
                              rows=rows, extra_html=extra, level=2))
    path = out / "report.html"
    atomic_write_text(path, page("sciprune demo", "\n".join(bodies)))
    return path
