"""A criterion registered with one line in a test is a pruning method of classify, flows and moth,
chosen through YAML (classify) and ``--set`` (flows, moth); an unknown name is one clear line.

(nif takes methods from the same registry; its test lives with the nif study.)
"""

from __future__ import annotations

import pytest
import torch
import yaml

from sciprune.core import Criterion, register_criterion
from sciprune.core._criteria import _CRITERIA
from sciprune.files import read_csv
from sciprune.runner.config import apply_overrides, load_preset
from tests.runner.helpers import cli
from tests.runner.test_demo import SMALL

NAME = "test_largest_first"
CALLS = {"n": 0}


def largest_first(weight: torch.Tensor, **_: object) -> torch.Tensor:
    """Unstructured: the *largest* |w| pruned first (the opposite of magnitude)."""
    CALLS["n"] += 1
    return -weight.detach().abs()


@pytest.fixture
def criterion():
    register_criterion(Criterion(NAME, False, largest_first, "largest |w| first (a test's criterion)"))
    CALLS["n"] = 0
    yield NAME
    del _CRITERIA[NAME]


def test_classify_takes_it_from_yaml(capsys, monkeypatch, tmp_path, criterion):
    cfg = apply_overrides(load_preset("classify", "demo"), [*SMALL["classify"], f"prune.methods=[{criterion}, weight]"])
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--out", str(tmp_path / "c"), "--quiet")
    assert code == 0, err
    rows = [r for r in read_csv(tmp_path / "c" / "metrics.csv") if r["sparsity"] == 0.5]
    mine = [r for r in rows if r["method"] == criterion]
    weight = [r for r in rows if r["method"] == "weight"]
    assert CALLS["n"] > 0 and len(mine) == len(weight) == 1
    # the same number of weights removed as magnitude pruning (layerwise, hidden layers), other ones
    assert mine[0]["params_nnz"] == weight[0]["params_nnz"] and mine[0]["accuracy"] != weight[0]["accuracy"]


def test_flows_and_moth_take_it_from_set(capsys, monkeypatch, tmp_path, criterion):
    sets = [a for kv in SMALL["flows"] for a in ("--set", kv)]
    code, _, err = cli(capsys, monkeypatch, "flows", "--preset", "demo", "--out", str(tmp_path / "f"), "--quiet", *sets,
                       "--set", "classifiers.names=[]", "--set", f"prune.methods=[{criterion}]")
    assert code == 0, err
    rows = [r for r in read_csv(tmp_path / "f" / "metrics.csv") if r["method"] == criterion]
    assert rows and CALLS["n"] > 0 and all(r["achieved_sparsity"] == pytest.approx(0.5, abs=0.01) for r in rows)

    CALLS["n"] = 0
    sets = [a for kv in SMALL["moth"] for a in ("--set", kv)]
    code, _, err = cli(capsys, monkeypatch, "moth", "train", "--preset", "demo", "--out", str(tmp_path / "m"), "--quiet",
                       *sets, "--set", f"prune.criterion={criterion}")
    assert code == 0, err
    rows = read_csv(tmp_path / "m" / "metrics.csv")
    assert CALLS["n"] > 0 and {r["method"] for r in rows} == {criterion}


@pytest.mark.parametrize("command, field", [(["classify"], "prune.methods=[nope]"), (["flows"], "prune.methods=[wt, nope]"),
                                            (["moth", "train"], "prune.criterion=nope")])
def test_an_unknown_name_is_one_line(capsys, monkeypatch, tmp_path, command, field):
    code, _, err = cli(capsys, monkeypatch, *command, "--preset", "demo", "--out", str(tmp_path / "x"), "--set", field)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "'nope'" in err and "magnitude" in err
    assert not (tmp_path / "x").exists()
