"""A self-contained HTML report: plots embedded as data URIs, the stage table, config and summary.

A utility below ``runner`` and the studies (a study's ``describe`` may use :func:`table`)."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sciprune.files import atomic_write_text

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
table{border-collapse:collapse;font-size:.82em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em}
.scroll{max-height:480px;overflow:auto}\ndetails{margin:.6em 0}summary{cursor:pointer;font-weight:600}
"""


def img_tag(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}"></figure>'


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else f"<b>{v}</b>"
    return html.escape("" if v is None else str(v))


def table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No rows recorded.</p>"
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def section(*, title: str, config: str, summary: dict[str, Any], plots: Sequence[Path],
            rows: Sequence[dict[str, Any]], extra_html: str = "", notes: str = "", level: int = 1) -> str:
    """The body of one study's report (used alone, or several in the combined demo report)."""
    h, h2 = f"h{level}", f"h{level + 1}"
    parts = [f"<{h}>{html.escape(title)}</{h}>", notes, extra_html, f"<{h2}>Plots</{h2}>"]
    parts += [img_tag(p) for p in plots]
    parts += [f"<{h2}>Stages (metrics.csv)</{h2}>", table(rows),
              f"<details><summary>summary.json</summary><pre>{html.escape(json.dumps(summary, indent=2, default=str))}</pre></details>",
              f"<details><summary>config.yaml</summary><pre>{html.escape(config)}</pre></details>"]
    return "\n".join(parts)


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def write_report(path: Path, **kwargs: Any) -> Path:
    atomic_write_text(path, page(kwargs["title"], section(**kwargs)))
    return path
