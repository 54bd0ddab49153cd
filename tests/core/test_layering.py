"""core knows no family, runner or study: no module of sciprune.core imports them (even lazily)."""

import ast
import importlib
import pkgutil
from pathlib import Path

import sciprune.core

FORBIDDEN = ("sciprune.nn", "sciprune.runner", "sciprune.studies", "sciprune.cli")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_every_core_module_imports_and_none_imports_nn_runner_or_studies():
    modules = [m.name for m in pkgutil.iter_modules(sciprune.core.__path__, "sciprune.core.")]
    assert len(modules) >= 14
    bad = {}
    for name in modules:
        module = importlib.import_module(name)
        found = [i for i in _imports(Path(module.__file__)) if i.startswith(FORBIDDEN)]
        if found:
            bad[name] = found
    assert bad == {}


def test_the_check_would_catch_a_lazy_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from sciprune.nn.mlp import MLP\n    return MLP\n")
    assert any(i.startswith(FORBIDDEN) for i in _imports(f))
