"""``sciprune demo``: every study's demo preset, one combined report."""

from __future__ import annotations

import json
from pathlib import Path

from sciprune.runner.config import dump_config, load_preset
from sciprune.files import atomic_write_text
from sciprune.htmlreport import page, section
from sciprune.runner.run import load_run, run_config
from sciprune.runner.study import available_studies, get_study


def run_demo(out: str | Path, *, quiet: bool = False, resume: bool = False) -> Path:
    """Run ``demo`` of each study into ``out/<study>`` and write ``out/report.html``."""
    out = Path(out)
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
