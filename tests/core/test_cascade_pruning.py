"""The cascade pruning by a method itself (``run_cascade(..., pruning=Pruning(method))``): the same
network as the protocol pruning by core's method layer, neuron widths always of the dense network,
ID asking the protocol only for its samples, and one clear line where a protocol lacks a step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sciprune.core import (
    CascadeProtocol, CascadeSpec, Pruning, StageInfo, get_masks, id_prune_mlp, kept_width, load_stage, prune,
    resolve_method, run_cascade, supervised_epoch, torch_generator, train_dense, units_of,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _data():
    g = torch_generator(0, "data")
    x = torch.randn(96, 3, generator=g)
    return x, torch.sin(x[:, :1]) + x[:, 1:2] * x[:, 2:3]


class Toy(CascadeProtocol):
    """A protocol with no pruning of its own: build, optimizer, train, evaluate, and ID's samples."""

    def __init__(self, x, y):
        self.x, self.y, self.id_calls = x, y, []

    def build(self, arch):
        return MLP.from_arch(arch)

    def optimizer(self, params):
        return torch.optim.Adam(params, lr=1e-2), None

    def train(self, model, optimizer, generator):
        return supervised_epoch(model, optimizer, generator, inputs=self.x, targets=self.y, loss_fn=F.mse_loss,
                                batch_size=32)

    @torch.no_grad()
    def evaluate(self, model, stage):
        return {"mse": float(F.mse_loss(model(self.x), self.y)), "widths": [lin.out_features for lin in model.linears]}

    def id_samples(self, model, generator, stage):
        self.id_calls.append(stage)
        return self.x[torch.randperm(len(self.x), generator=generator)[:64]]


class ByHand(Toy):
    """The same protocol pruning in its own ``prune`` by the method's parts (criterion, allocation,
    per-group overrides from the dense widths): what studies did before the cascade pruned by a method."""

    def __init__(self, x, y, method):
        super().__init__(x, y)
        self.method, self.dense = method, None

    def prune(self, model, sparsity, generator, stage):
        m = self.method
        parts = {"criterion": m.criterion, "allocation": m.allocation, "fold_constants": m.fold_constants,
                 "generator": generator}
        if m.units == "neurons" and m.width != "per_layer":
            widths = kept_width(units_of(self.dense), sparsity, m.width,
                                shapes={n: tuple(p.shape) for n, p in self.dense.named_parameters()})
            sizes = {g.name: g.size for g in units_of(self.dense).groups}
            over = {g: (sizes[g] - k) / sizes[g] for g, k in widths.items()}
            prune(model, 0.0, layers=list(over), overrides=over, **parts)
        else:
            prune(model, sparsity, **parts)
        return model


def _dense(steps, sizes=(3, 12, 10, 1)):
    model = MLP(list(sizes), "tanh", generator=torch_generator(0, "init"))
    return model, train_dense(model, steps, epochs=2, seed=0)


@pytest.mark.parametrize("name", ["wt", "ft", "unit", "weight", "lamp"])
def test_the_cascade_prunes_like_a_protocol_that_calls_the_method_layer(name):
    x, y = _data()
    method = resolve_method(name).with_width("weight_budget") if name == "ft" else resolve_method(name)
    spec = CascadeSpec((0.3, 0.6, 0.8), retrain_epochs=1)
    _, dense = _dense(Toy(x, y))
    ours = run_cascade(dense, spec, Toy(x, y), seed=3, pruning=Pruning(method))
    hand = ByHand(x, y, method)
    hand.dense, _ = _dense(hand)
    theirs = run_cascade(dense, spec, hand, seed=3)
    assert ours == theirs  # every row: sizes, sparsity reached, losses and metrics, bit for bit


def test_the_cascade_hands_the_method_straight_to_core_prune(monkeypatch):
    """No frame between ``run_cascade`` and ``prune``: the hop docs/design.md counts (cascade -> prune)."""
    import traceback

    import sciprune.core._cascade as cascade

    callers, real = [], cascade.prune

    def spy(model, sparsity, **kw):
        callers.append((traceback.extract_stack()[-2].name, kw["method"].name))
        return real(model, sparsity, **kw)

    monkeypatch.setattr(cascade, "prune", spy)
    x, y = _data()
    _, dense = _dense(Toy(x, y))
    run_cascade(dense, CascadeSpec((0.3, 0.6), retrain_epochs=0), Toy(x, y), seed=0, pruning=Pruning(resolve_method("wt")))
    assert callers == [("run_cascade", "wt")] * 2


def test_layers_and_min_keep_reach_the_pruning(tmp_path):
    x, y = _data()
    steps = Toy(x, y)
    _, dense = _dense(steps)
    run_cascade(dense, CascadeSpec((0.25, 0.5, 0.99), retrain_epochs=0), steps, seed=0, checkpoint_dir=tmp_path,
                pruning=Pruning(resolve_method("unit"), layers=("layers.0",), min_keep=0))
    # per_layer: round(s * 12) of layers.0's 12 dense neurons are gone at each stage (min_keep=0 lets
    # 0.99 empty it; their outgoing columns in layers.1 go with them); layers.1 is not named, so none
    # of its 10 neurons (rows, biases) is pruned
    for stage, live in ((0, 9), (1, 6), (2, 0)):
        masks = get_masks(load_stage(tmp_path, stage, MLP.from_arch))
        assert int(masks["layers.0.weight"].any(1).sum()) == live
        assert int(masks["layers.1.weight"].any(0).sum()) == live
        assert "layers.1.bias" not in masks


def test_id_asks_the_protocol_for_samples_and_runs_core_id_to_the_dense_widths(monkeypatch):
    """The protocol draws the samples; ``run_cascade`` itself calls core's ID (no frame between them, the
    hop docs/design.md counts) with the dense network's ``per_layer`` widths, even when the network is
    already smaller; the network is the one core's ``id_prune_mlp`` gives on the same samples."""
    import traceback

    import sciprune.core._cascade as cascade

    calls, real = [], cascade.id_prune_widths

    def spy(model, samples, widths, **kw):
        calls.append((traceback.extract_stack()[-2].name, dict(widths), kw))
        return real(model, samples, widths, **kw)

    monkeypatch.setattr(cascade, "id_prune_widths", spy)
    x, y = _data()
    steps = Toy(x, y)
    _, dense = _dense(steps)
    spec = CascadeSpec((0.5, 0.75), retrain_epochs=1)
    rows = run_cascade(dense, spec, steps, seed=0, pruning=Pruning(resolve_method("id")))
    assert [c[:2] for c in calls] == [("run_cascade", {"layers.0": 6, "layers.1": 5}),
                                      ("run_cascade", {"layers.0": 3, "layers.1": 2})]
    assert [c[2] for c in calls] == [{"unfoldable": None, "sparsity": 0.5}, {"unfoldable": None, "sparsity": 0.75}]
    assert steps.id_calls == [StageInfo(0, 0.5), StageInfo(1, 0.75)]
    assert [r["widths"] for r in rows] == [[6, 5, 1], [3, 2, 1]]

    class ByHandId(Toy):  # what a protocol did before: its own ID step calling core's id_prune_mlp
        def prune(self, model, sparsity, generator, stage):
            widths = kept_width(units_of(dense_model), sparsity)
            return id_prune_mlp(model, self.id_samples(model, generator, stage), rank=list(widths.values()))

    dense_model, _ = _dense(Toy(x, y))
    assert run_cascade(dense, spec, ByHandId(x, y), seed=0) == rows  # bit for bit


def test_a_protocol_lacking_a_step_is_refused_in_one_line():
    x, y = _data()

    class NoId(Toy):
        id_samples = CascadeProtocol.id_samples

    steps = NoId(x, y)
    _, dense = _dense(steps)
    with pytest.raises(InputError, match="NoId supplies no data for ID pruning: it cannot run an ID method"):
        run_cascade(dense, CascadeSpec((0.5,)), steps, seed=0, pruning=Pruning(resolve_method("id")))
    with pytest.raises(InputError, match=r"NoId does not prune by itself: pass pruning=Pruning\(method\) to run_cascade"):
        run_cascade(dense, CascadeSpec((0.5,)), steps, seed=0)
