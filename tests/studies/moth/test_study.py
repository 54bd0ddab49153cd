"""The ensemble study end to end on a tiny problem: shards, resume after a kill, reports, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from sciprune.errors import InputError
from sciprune.runner.run import run_config
from sciprune.studies.moth import ensemble
from sciprune.studies.moth.analysis import optimum_rows, summarize_rows
from sciprune.studies.moth.simulate import simulate_file


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mothdata") / "d.h5"
    simulate_file(path, 1500, seed=1, chunk=1500)
    return path


def config(path: Path, **kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "study": "moth", "seed": 3, "members": 4, "shards": 2, "threshold": 0.04, "schedule": [0.5, 0.9, 0.97],
        "data": {"path": str(path)}, "model": {"hidden": [12, 8], "activation": "tanh"},
        "train": {"lr": 3e-3, "batch_size": 64, "check_every": 10, "window": 20, "max_batches_dense": 120,
                  "max_batches_stage": 40, "val_rows": 200},
    }
    cfg.update(kw)
    return cfg


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_config(config(data), out=tmp_path_factory.mktemp("ref") / "run", quiet=True)


def test_rows_per_member_and_stage_with_exact_sparsity(reference: Path):
    from sciprune.files import read_csv

    rows = read_csv(reference / "metrics.csv")
    assert len(rows) == 4 * 4 and {r["member"] for r in rows} == {0, 1, 2, 3}
    for r in rows:
        assert abs(r["achieved_sparsity"] - r["sparsity"]) < 0.02  # round(s·n) per layer of a tiny net
        assert "seconds" not in r and r["method"] == "magnitude"
        if r["stage"] > 0:  # cumulative masks: never fewer zeros than the stage before
            prev = next(p for p in rows if p["member"] == r["member"] and p["stage"] == r["stage"] - 1)
            assert r["weights_nnz"] <= prev["weights_nnz"]
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["members"] == 4 and "median_optimal_sparsity" in summary
    assert (reference / "timing.csv").exists()
    assert {p.name for p in (reference / "plots").glob("*.png")} >= {
        "loss_vs_sparsity.png", "optimal_sparsity.png", "layer_density.png", "input_connectivity.png"}


def test_two_shards_on_a_local_cluster_give_the_in_process_numbers(data: Path, reference: Path, tmp_path: Path):
    out = run_config(config(data), out=tmp_path / "dask", quiet=True, workers=2)
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()


def test_resume_after_a_kill_gives_the_same_metrics(data: Path, reference: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    real = ensemble.train_to_plateau
    calls = {"n": 0}

    def killed(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:  # the second shard, during its second stage
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(ensemble, "train_to_plateau", killed)
    with pytest.raises(KeyboardInterrupt):
        run_config(config(data), out=tmp_path / "r", quiet=True)
    monkeypatch.setattr(ensemble, "train_to_plateau", real)
    out = run_config(config(data), out=tmp_path / "r", quiet=True, resume=True)
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()


def test_a_plateaued_member_stops_while_the_others_train(data: Path):
    from sciprune.studies.moth.config import MothConfig
    from sciprune.studies.moth.data import load

    cfg = MothConfig.model_validate(config(data, train={"check_every": 5, "window": 10, "improvement": 0.5, "val_rows": 100}))
    d = load(data, seed=3)
    model = ensemble.build(cfg, (0, 1, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    batches, stopped, _ = ensemble.train_to_plateau(model, opt, d, cfg, torch.Generator().manual_seed(0), 60)
    # every member stopped by the plateau rule, not by the cap: at a validation check (a multiple of
    # check_every), after the 2·window batches the rule needs, before the 60-batch budget ran out
    assert bool(stopped.all())
    assert bool((batches % 5 == 0).all()) and int(batches.min()) >= 20 and int(batches.max()) < 60
    # a member's weights change only while it trains: retrain with member 0 stopped at once
    m2 = ensemble.build(cfg, (0, 1, 2))
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3)
    w0 = [p.detach()[0].clone() for p in m2.parameters()]
    frozen = torch.tensor([0])
    for _ in range(2):  # the second step has Adam moments to keep too
        moments = [v[0].clone() for p in m2.parameters() for v in opt2.state.get(p, {}).values() if v.dim()]
        copies = ensemble._frozen_copies(list(m2.parameters()), opt2, frozen)
        err = m2(d.train.x[:64]) - d.train.y[:64]
        (err**2).mean(dim=(1, 2)).sum().backward()
        opt2.step()
        ensemble._put_back(frozen, copies)
        after = [v[0] for p in m2.parameters() for v in opt2.state.get(p, {}).values() if v.dim()]
        assert all(torch.equal(a, b) for a, b in zip(moments, after))
    assert all(torch.equal(p.detach()[0], w) for p, w in zip(m2.parameters(), w0))
    assert not all(torch.equal(p.detach()[1], b[1]) for p, b in zip(m2.parameters(), before))


def test_a_threshold_no_member_passes_is_reported(reference: Path):
    from sciprune.files import read_csv

    rows = read_csv(reference / "metrics.csv")
    s = summarize_rows(rows, 1e-9)
    assert s["members_passing"] == 0 and s["median_optimal_sparsity"] is None and "no member reached" in s["note"]
    assert all(v is None for v in optimum_rows(rows, 1e-9).values())


def test_bad_config_is_one_line(data: Path, tmp_path: Path):
    with pytest.raises(InputError, match="shards"):
        run_config(config(data, shards=9), out=tmp_path / "x", quiet=True)
    with pytest.raises(InputError, match="does not exist"):
        run_config(config(data, data={"path": str(tmp_path / "none.h5")}), out=tmp_path / "y", quiet=True)


def test_optimum_is_the_last_passing_stage_even_after_a_failing_one():
    """Hand-made rows: member 0 passes at 0.5, fails at 0.9, passes at 0.97 (optimum 0.97); member 1
    passes, then fails for good (optimum 0.5); member 2 never passes (None); a NaN never passes."""
    mse = {0: [0.01, 0.2, 0.03], 1: [0.01, 0.2, 0.3], 2: [0.5, float("nan"), 0.2]}
    rows = [{"member": m, "stage": st, "sparsity": sp, "test_mse": mse[m][st]}
            for m in (2, 0, 1) for st, sp in reversed(list(enumerate((0.5, 0.9, 0.97))))]  # any order
    best = optimum_rows(rows, 0.04)
    assert best[0] is not None and (best[0]["stage"], best[0]["sparsity"]) == (2, 0.97)
    assert best[1] is not None and (best[1]["stage"], best[1]["sparsity"]) == (0, 0.5)
    assert best[2] is None
    assert optimum_rows(rows, 0.01)[0]["stage"] == 0  # the threshold is inclusive


@pytest.mark.parametrize("min_batches, cap", [(0, 200), (73, 200), (0, 25), (160, 200)])
def test_earliest_stop_is_where_a_network_that_cannot_improve_stops(data: Path, min_batches: int, cap: int):
    """With a zero learning rate the validation loss never moves, so the rule fires at its first chance:
    the plan's low end (``earliest_stop``) must be exactly the batches ``train_to_plateau`` runs then."""
    from sciprune.studies.moth.config import MothConfig
    from sciprune.studies.moth.data import load

    cfg = MothConfig.model_validate(config(data, train={"check_every": 5, "window": 10, "val_rows": 100}))
    model = ensemble.build(cfg, (0, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    batches, stopped, _ = ensemble.train_to_plateau(model, opt, load(data, seed=3), cfg, torch.Generator().manual_seed(0),
                                                    cap, min_batches)
    # by hand: 2 windows of 10 = 20 batches; not before 73 -> the check at 75; not before 160 -> 160; cap 25 -> 20
    expected = {(0, 200): 20, (73, 200): 75, (0, 25): 20, (160, 200): 160}[(min_batches, cap)]
    assert ensemble.earliest_stop(cfg, cap, min_batches) == expected
    assert batches.tolist() == [expected, expected] and bool(stopped.all())
