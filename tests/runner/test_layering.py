"""Studies never import the runner: the study contract, HTML helpers and validation live below it."""

from __future__ import annotations

import ast
from pathlib import Path

import sciprune

STUDIES = Path(sciprune.__file__).parent / "studies"


def test_no_study_imports_the_runner() -> None:
    offenders = []
    for path in sorted(STUDIES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(STUDIES)}: {n}" for n in names if n.startswith("sciprune.runner")]
    assert not offenders, offenders
