"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "ParamCount" in capsys.readouterr().out


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first = re.search(r"```\n(.*?)```", text, flags=re.S)
    assert first is not None and first.group(1).split("\n")[:2] == ["make demo", "make test"]
