"""The cascade's hooks for studies: only the last stage's checkpoint kept, the stage told to
``prune`` and ``evaluate``, ``on_stage`` told each stage's rows, and extra metrics returned by a train
function reaching the rows."""

import pytest
import torch
import torch.nn.functional as F

from sciprune.core import (
    CascadeProtocol, CascadeSpec, StageInfo, prune, run_cascade, saved_stage_rows, saved_stages,
    stage_checkpoint, supervised_epoch, torch_generator, train_dense,
)
from sciprune.core._cascade import split_train_result
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.stacked import StackedMLP
from tests.core.steps import Steps


def _data():
    g = torch_generator(0, "data")
    x = torch.randn(128, 3, generator=g)
    return x, torch.sin(x[:, :1]) + x[:, 1:2] * x[:, 2:3]


def _cascade(model, train_fn, eval_fn, tmp_path=None, on_stage=None, eval_stage=False, **kw):
    def make_opt(params):
        return torch.optim.Adam(params, lr=1e-2), None

    def prune_fn(m, s, g):
        prune(m, s, criterion="magnitude")
        return m

    steps = Steps(prune_fn, train_fn, eval_fn, make_opt, type(model).from_arch, on_stage, eval_stage)
    dense = train_dense(model, steps, epochs=2, seed=0)
    rows = run_cascade(dense, CascadeSpec((0.3, 0.6, 0.8), retrain_epochs=1), steps, seed=0, checkpoint_dir=tmp_path, **kw)
    return dense, rows


def _plain_train(x, y):
    def train(m, opt, g):
        return supervised_epoch(m, opt, g, inputs=x, targets=y, loss_fn=F.mse_loss, batch_size=32)
    return train


def _mse(x, y):
    return torch.no_grad()(lambda m: {"mse": float(F.mse_loss(m(x), y))})


def test_keep_last_stage_only_and_resume_gives_the_same_rows(tmp_path):
    x, y = _data()
    net = lambda: MLP([3, 16, 1], "tanh", generator=torch_generator(0, "init"))  # noqa: E731
    _, every = _cascade(net(), _plain_train(x, y), _mse(x, y), tmp_path / "all")
    assert saved_stages(tmp_path / "all") == [0, 1, 2]
    assert sorted((tmp_path / "all").iterdir()) == [stage_checkpoint(tmp_path / "all", i) for i in range(3)]
    _, last = _cascade(net(), _plain_train(x, y), _mse(x, y), tmp_path / "last", keep_stages="last")
    assert list((tmp_path / "last").iterdir()) == [stage_checkpoint(tmp_path / "last", 2)]
    assert last == every and saved_stage_rows(tmp_path / "last") == every

    class Killed(Exception):
        pass

    told = []

    def die(rows):
        told.append([r["stage"] for r in rows])
        if rows[0]["stage"] == 1:
            raise Killed

    with pytest.raises(Killed):
        _cascade(net(), _plain_train(x, y), _mse(x, y), tmp_path / "k", keep_stages="last", on_stage=die)
    assert told == [[0], [1]]  # once per stage, after its checkpoint is written
    assert saved_stages(tmp_path / "k") == [1] and saved_stage_rows(tmp_path / "k") == every[:2]
    _, resumed = _cascade(net(), _plain_train(x, y), _mse(x, y), tmp_path / "k", keep_stages="last", resume=True)
    assert resumed == every
    with pytest.raises(InputError, match="keep_stages"):
        _cascade(net(), _plain_train(x, y), _mse(x, y), keep_stages="some")


def test_prune_and_evaluate_are_told_their_stage(tmp_path):
    x, y = _data()
    seen: list[StageInfo] = []

    def with_stage(m, stage):
        seen.append(stage)
        return {"told": stage.index}

    _, rows = _cascade(MLP([3, 8, 1], "tanh", generator=torch_generator(0, "i")), _plain_train(x, y), with_stage,
                       eval_stage=True)
    assert seen == [StageInfo(0, 0.3), StageInfo(1, 0.6), StageInfo(2, 0.8)]
    assert [r["told"] for r in rows] == [0, 1, 2]


def test_a_protocol_without_on_stage_inherits_one_that_does_nothing(tmp_path):
    x, y = _data()

    class Minimal(CascadeProtocol):
        def build(self, arch):
            return MLP.from_arch(arch)

        def optimizer(self, params):
            return torch.optim.SGD(params, lr=0.1), None

        def train(self, model, optimizer, generator):
            return _plain_train(x, y)(model, optimizer, generator)

        def prune(self, model, sparsity, generator, stage):
            prune(model, sparsity)
            return model

        def evaluate(self, model, stage):
            return {"sparsity_told": stage.sparsity}

    steps = Minimal()
    dense = train_dense(MLP([3, 8, 1], "tanh", generator=torch_generator(0, "i")), steps, epochs=1, seed=0)
    rows = run_cascade(dense, CascadeSpec((0.5,), retrain_epochs=1), steps, seed=0)
    assert [r["sparsity_told"] for r in rows] == [0.5]


def test_train_fn_mapping_reaches_the_rows_per_member(tmp_path):
    x, y = _data()
    model = StackedMLP(3, [3, 8, 1], "tanh", generator=torch_generator(0, "init"))
    calls = {"n": 0}

    def train(m, opt, g):
        calls["n"] += 1
        loss = supervised_epoch(m, opt, g, inputs=x, targets=y, loss_fn=lambda out, t: F.mse_loss(out, t.expand_as(out)),
                                batch_size=32)
        return {"loss": loss, "epoch_no": calls["n"], "per_member": [{"batches": 10 * j + calls["n"]} for j in range(3)]}

    evaluate = torch.no_grad()(lambda m: [{"mse": float(F.mse_loss(m(x)[j], y))} for j in range(3)])
    dense, rows = _cascade(model, train, evaluate)
    assert dense.train_metrics == {"epoch_no": 2, "per_member": [{"batches": 10 * j + 2} for j in range(3)]}
    assert len(rows) == 9
    for r in rows:
        n = 3 + r["stage"]  # two dense epochs, then one per stage
        assert r["epoch_no"] == n and r["batches"] == 10 * r["member"] + n
        assert isinstance(r["retrain_loss"], float) and list(r)[-2:] == ["epoch_no", "batches"]  # after eval's metrics

    def wrong(m, opt, g):
        return {"loss": 0.0, "per_member": [{}]}

    with pytest.raises(InputError, match="per_member"):
        _cascade(StackedMLP(3, [3, 8, 1], "tanh", generator=torch_generator(0, "init")), wrong, evaluate)


def test_split_train_result():
    assert split_train_result(0.5) == (0.5, {})
    assert split_train_result({"loss": 1, "a": 2}) == (1.0, {"a": 2})
    with pytest.raises(InputError, match="loss"):
        split_train_result({"a": 2})
