"""DeepXDE's PyTorch networks (optional dependency, pinned in the dev extra): ID-pruned, and the
docs' worked example (train a DeepONet in DeepXDE, ``sciprune prune`` it, load it back) run as written."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import torch

os.environ.setdefault("DDE_BACKEND", "pytorch")
dde = pytest.importorskip("deepxde", reason="DeepXDE is an optional test dependency (pip install -e '.[dev]')")

from sciprune.core import Traced, count_params, foldable_groups, id_prune_traced  # noqa: E402
from sciprune.files import read_csv  # noqa: E402
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


def _traced(name: str) -> tuple[Traced, tuple]:
    """The network traced as DeepXDE calls it: operator nets take one tuple of inputs."""
    net, xs = _nets()[name]
    net = _init(net, 1)
    args = xs if name in ("FNN", "PFNN") else (xs,)
    return Traced(net, args), args


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


NAMES = ["FNN", "PFNN", "DeepONet", "DeepONetCartesianProd", "MIONetCartesianProd"]


@pytest.mark.parametrize("name", NAMES)
def test_id_pruning(name):
    """(Neuron pruning and compaction of these nets: tests/core/test_trace_deepxde.py.) ID prunes every group it
    can fold into: exact at full rank, smaller at half rank; in the operator nets the branch·trunk group is
    read by DeepXDE's einsum and left to neuron L2 (``foldable_groups`` excludes it)."""
    traced, args = _traced(name)
    ids = foldable_groups(traced)
    prunable = {g.name for g in traced.pruning_units().groups if g.prunable}
    assert ids and ids <= prunable
    assert (ids == prunable) == (name in ("FNN", "PFNN"))
    sizes = {g.name: g.size for g in traced.pruning_units().groups if g.name in ids}
    with torch.no_grad():
        dense = traced(*args)
        full = id_prune_traced(traced, args, ranks=sizes)  # full rank: the same network
        assert _rel(full(*args), dense) <= 1e-6
        half = id_prune_traced(traced, args, ranks={k: max(1, n // 2) for k, n in sizes.items()})
        assert count_params(half).total < count_params(traced).total
        assert torch.isfinite(half(*args)).all()


DOC = Path(__file__).resolve().parents[3] / "docs" / "prune.md"


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
