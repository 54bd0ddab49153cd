"""DeepXDE's PyTorch networks (optional dependency, pinned in the dev extra): traced, pruned by neuron,
compacted with equal outputs, ID-pruned, and run through ``sciprune prune`` (the tuple convention)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import torch

os.environ.setdefault("DDE_BACKEND", "pytorch")
dde = pytest.importorskip("deepxde", reason="DeepXDE is an optional test dependency (pip install -e '.[dev]')")

from sciprune.core import Traced, compact, count_params, id_prune_traced, prune  # noqa: E402
from sciprune.files import read_csv  # noqa: E402
from sciprune.studies.prune.protocol import foldable  # noqa: E402
from sciprune.studies.prune.usermodel import PACKED_CLASSES  # noqa: E402
from tests.runner.helpers import cli  # noqa: E402

B, N, M, D = 24, 40, 8, 2  # functions, points, sensors, coordinates


def _init(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Deterministic non-zero weights and biases (DeepXDE draws from the global RNG and zeroes biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.6 / p.shape[-1] ** 0.5 if p.dim() == 2 else 0.3))
    return net


def _nets() -> dict[str, tuple[torch.nn.Module, tuple[torch.Tensor, ...]]]:
    from deepxde.nn.pytorch import PFNN, DeepONet, DeepONetCartesianProd, FNN, MIONetCartesianProd

    gen = torch.Generator().manual_seed(0)
    u = torch.randn(B, M, generator=gen)
    u2 = torch.randn(B, M, generator=gen)
    xb = torch.rand(B, D, generator=gen)
    xn = torch.rand(N, D, generator=gen)
    g = "Glorot normal"
    return {
        "FNN": (FNN([D, 16, 16, 3], "tanh", g), (xb,)),
        "PFNN": (PFNN([D, [8, 8, 8], [8, 8, 8], 3], "tanh", g), (xb,)),
        "DeepONet": (DeepONet([M, 16, 12], [D, 16, 12], "tanh", g), (u, xb)),
        "DeepONetCartesianProd": (DeepONetCartesianProd([M, 16, 12], [D, 16, 12], "tanh", g), (u, xn)),
        "MIONetCartesianProd": (MIONetCartesianProd([M, 16, 12], [M, 16, 12], [D, 16, 12], "tanh", g), (u, u2, xn)),
    }


def _wrapped(name: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    net, xs = _nets()[name]
    net = _init(net, 1)
    return (net if name in ("FNN", "PFNN") else PACKED_CLASSES[len(xs)](net)), xs


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# DeepXDE's operator nets compare shapes in Python before their einsum: torch.fx cannot trace that
# control flow, so until the tracer has its torch.export fallback every channel is left unprunable
# (correct, never guessed). Strict: these start passing, and must then lose the mark, with the fallback.
_NO_FX = pytest.mark.xfail(strict=True, reason="torch.fx cannot trace DeepXDE's shape checks (tracer fallback pending)")
NAMES = ["FNN", "PFNN", *(pytest.param(n, marks=_NO_FX) for n in ("DeepONet", "DeepONetCartesianProd", "MIONetCartesianProd"))]


@pytest.mark.parametrize("name", NAMES)
def test_neuron_pruning_compacts_with_equal_outputs(name):
    net, xs = _wrapped(name)
    traced = Traced(net, xs)
    groups = [g for g in traced.pruning_units().groups if g.prunable]
    assert groups, f"{name}: no prunable group traced"
    dense_params = count_params(traced).total
    prune(traced, 0.5, criterion="neuron_l2")
    with torch.no_grad():
        masked = traced(*xs)
        small = compact(traced)
        assert _rel(small(*xs), masked) <= 1e-6
    # every prunable group lost half its neurons, physically
    widths = {g.name: g.size for g in small.pruning_units().groups}
    assert all(widths[g.name] == g.size - round(0.5 * g.size) for g in groups)
    assert count_params(small).total < dense_params


@pytest.mark.parametrize("name", NAMES)
def test_id_pruning(name):
    net, xs = _wrapped(name)
    traced = Traced(net, xs)
    ids = foldable(traced)
    if name in ("FNN", "PFNN"):
        assert ids == {g.name for g in traced.pruning_units().groups if g.prunable}
    assert ids, f"{name}: no group ID can fold into"
    sizes = {g.name: g.size for g in traced.pruning_units().groups if g.name in ids}
    with torch.no_grad():
        dense = traced(*xs)
        full = id_prune_traced(traced, xs, ranks=sizes)  # full rank: the same network
        assert _rel(full(*xs), dense) <= 1e-6
        half = id_prune_traced(traced, xs, ranks={k: max(1, n // 2) for k, n in sizes.items()})
        assert count_params(half).total < count_params(traced).total
        assert torch.isfinite(half(*xs)).all()


DOC = Path(__file__).resolve().parents[3] / "docs" / "prune.md"


@pytest.mark.xfail(strict=True, reason="torch.fx cannot trace DeepXDE's shape checks (tracer fallback pending)")
def test_worked_example_runs(capsys, monkeypatch, tmp_path):
    """docs/prune.md's DeepXDE example, as written (fewer training iterations)."""
    text = DOC.read_text().split("### Worked example: a DeepXDE DeepONet", 1)[1]
    factory, train, load = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (command,) = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DDE_BACKEND", "pytorch")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "operator_net.py").write_text(factory)
    namespace: dict = {}
    assert "ITERATIONS = 3000" in train
    exec(compile(train.replace("ITERATIONS = 3000", "ITERATIONS = 300"), "docs/prune.md", "exec"), namespace)
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "sciprune"
    code, _, err = cli(capsys, monkeypatch, *argv[1:])
    assert code == 0, err
    rows = read_csv(tmp_path / "runs" / "deeponet" / "metrics.csv")
    assert [r["method"] for r in rows] == ["dense", "neuron", "neuron", "id", "id"]
    assert all(r["compact_rel_diff"] <= 1e-6 for r in rows)
    exec(compile(load, "docs/prune.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "DeepONetCartesianProd" in out and "ID-pruned" in out
    small = namespace["small"]
    assert type(small).__name__ == "DeepONetCartesianProd"
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in namespace["net"].parameters())
