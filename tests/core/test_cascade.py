import re

import pytest
import torch
import torch.nn.functional as F

from sciprune.core import (
    CascadeSpec, get_masks, load_stage, prune, run_cascade, stage_checkpoint, supervised, torch_generator,
    train_dense,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from tests.core.steps import Steps


def _problem():
    g = torch_generator(0, "data")
    x = torch.randn(256, 4, generator=g)
    y = (x[:, :1] * x[:, 1:2] + torch.sin(x[:, 2:3])).detach()
    return x, y


def _setup(tmp_path, **spec_kw):
    x, y = _problem()
    train_fn = supervised(x, y, F.mse_loss, batch_size=32)

    def make_opt(params):
        opt = torch.optim.Adam(params, lr=1e-2)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    model = MLP([4, 16, 16, 1], "tanh", generator=torch_generator(0, "init"))

    def prune_fn(m, s, g):
        prune(m, s, criterion="magnitude")
        return m

    steps = Steps(prune_fn, train_fn, torch.no_grad()(lambda m: {"mse": float(F.mse_loss(m(x), y))}), make_opt,
                  MLP.from_arch)
    dense = train_dense(model, steps, epochs=4, seed=0, rewind_epoch=1)
    spec = CascadeSpec((0.3, 0.5, 0.7, 0.9), **spec_kw)
    return dense, spec, steps


@pytest.mark.parametrize("policy", ["finetune", "reset", "lr_rewind", "weight_rewind"])
def test_resume_gives_the_same_records(tmp_path, policy):
    dense, spec, steps = _setup(tmp_path, mode="iterative", retrain_epochs=2, retrain=policy)
    straight = run_cascade(dense, spec, steps, seed=0, checkpoint_dir=tmp_path / "a")

    class Killed(Exception):
        pass

    def die_after_second(rows):
        if rows[0]["stage"] == 1:
            raise Killed

    with pytest.raises(Killed):
        run_cascade(dense, spec, steps.but(on_stage_fn=die_after_second), seed=0, checkpoint_dir=tmp_path / "b")
    resumed = run_cascade(dense, spec, steps, seed=0, checkpoint_dir=tmp_path / "b", resume=True)
    assert resumed == straight


def test_iterative_records_exact_sparsity_and_sizes(tmp_path):
    dense, spec, steps = _setup(tmp_path, mode="iterative", retrain_epochs=1)
    rows = run_cascade(dense, spec, steps, seed=0)
    # all three layers pruned: 64 + 256 + 16 weights
    for row, s in zip(rows, spec.sparsities):
        expected = sum(round(s * n) for n in (64, 256, 16))
        assert row["params_nnz"] <= row["params_total"] - expected
        assert row["achieved_sparsity"] == pytest.approx(expected / 336)
        assert row["flops"] == 2 * (336 - expected) + 33


def test_oneshot_without_retraining_starts_from_dense_each_time(tmp_path):
    dense, spec, steps = _setup(tmp_path, mode="oneshot", retrain_epochs=0)
    rows = run_cascade(dense, spec, steps, seed=0)
    again = run_cascade(dense, CascadeSpec((0.9,), mode="oneshot"), steps, seed=0)
    assert rows[-1]["mse"] == again[0]["mse"]


def test_weight_rewind_restores_surviving_weights(tmp_path):
    dense, _, steps = _setup(tmp_path)
    seen = {}

    def train_fn(model, opt, gen):
        seen["w"] = model.layers[1].weight.detach().clone()
        opt.step()  # no gradients: a no-op that keeps the LR scheduler's call order right
        return 0.0

    spec = CascadeSpec((0.5,), retrain_epochs=1, retrain="weight_rewind")
    run_cascade(dense, spec, steps.but(train_fn=train_fn), seed=0)
    rewound = dense.rewind["layers.1.weight"]
    kept = seen["w"] != 0
    assert torch.equal(seen["w"][kept], rewound[kept])


def test_spec_validation():
    with pytest.raises(InputError, match="unknown cascade mode 'gradual'"):
        CascadeSpec((0.5,), mode="gradual")
    with pytest.raises(InputError, match="unknown retrain policy"):
        CascadeSpec((0.5,), retrain="sgd")
    with pytest.raises(InputError, match=r"\[0, 1\); got 1.0"):
        CascadeSpec((0.5, 1.0))


def test_masks_survive_checkpoint_resume(tmp_path):
    dense, spec, steps = _setup(tmp_path, mode="iterative", retrain_epochs=1)
    run_cascade(dense, CascadeSpec((0.5,), retrain_epochs=1), steps, seed=0, checkpoint_dir=tmp_path / "c")
    assert len(get_masks(load_stage(tmp_path / "c", 0, MLP.from_arch))) == 3


def test_d7_resume_refuses_a_directory_of_another_spec_or_seed(tmp_path):
    dense, spec, steps = _setup(tmp_path, mode="iterative", retrain_epochs=1)
    run_cascade(dense, spec, steps, seed=0, checkpoint_dir=tmp_path / "a")
    other = CascadeSpec((0.3, 0.6), mode="iterative", retrain_epochs=1)
    last = re.escape(stage_checkpoint(tmp_path / "a", 3).name)
    with pytest.raises(InputError, match=rf"cannot resume from .*{last}.*written with spec="):
        run_cascade(dense, other, steps, seed=0, checkpoint_dir=tmp_path / "a", resume=True)
    with pytest.raises(InputError, match=r"written with seed=0, this run has seed=1"):
        run_cascade(dense, spec, steps, seed=1, checkpoint_dir=tmp_path / "a", resume=True)
    assert run_cascade(dense, spec, steps, seed=0, checkpoint_dir=tmp_path / "a", resume=True)  # the same run resumes


def test_d7_dense_resume_checks_seed_and_epochs(tmp_path):
    x, y = _problem()
    train_fn = supervised(x, y, F.mse_loss, batch_size=64)

    def make_opt(params):
        return torch.optim.SGD(params, lr=1e-2), None

    model = MLP([4, 8, 1], "tanh", generator=torch_generator(0, "init"))
    trainer = Steps(None, train_fn, None, make_opt, None)
    train_dense(model, trainer, epochs=2, seed=0, checkpoint=tmp_path / "d.pt")
    with pytest.raises(InputError, match="written with seed=0, this run has seed=3"):
        train_dense(model, trainer, epochs=2, seed=3, checkpoint=tmp_path / "d.pt", resume=True)


def test_eval_fn_decides_its_grad_mode_and_nfe_passes_through(tmp_path):
    dense, spec, steps = _setup(tmp_path, mode="oneshot")
    x, _ = _problem()

    def needs_autograd(m):
        xi = x[:8].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m(xi).sum(), xi)  # a CNF's divergence needs this
        return {"grad_norm": float(g.norm()), "nfe": 10}

    rows = run_cascade(dense, CascadeSpec((0.5,)), steps.but(eval_fn=needs_autograd), seed=0)
    assert rows[0]["grad_norm"] > 0 and rows[0]["nfe"] == 10 and rows[0]["flops_nfe"] == rows[0]["flops"] * 10


def test_per_step_schedule(tmp_path):
    x, y = _problem()
    train_fn = supervised(x, y, F.mse_loss, batch_size=32)  # 8 steps per epoch
    seen = []

    def make_opt(params):
        opt = torch.optim.SGD(params, lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.5 ** it)
        seen.append(opt)
        return opt, sched

    model = MLP([4, 8, 1], "tanh", generator=torch_generator(0, "init"))
    trainer = Steps(None, train_fn, None, make_opt, None)
    dense = train_dense(model, trainer, epochs=2, seed=0, schedule_every="step")
    assert dense.lrs == [0.5 ** 16]
    with pytest.raises(InputError, match="schedule_every must be one of epoch, step; got 'batch'"):
        train_dense(model, trainer, epochs=1, seed=0, schedule_every="batch")


def test_ensemble_cascade_gives_rows_per_member(tmp_path):
    from sciprune.nn.stacked import StackedMLP

    x, y = _problem()

    def train_fn(m, opt, g):
        opt.zero_grad()
        loss = F.mse_loss(m(x), y.expand(m.members, -1, -1))
        loss.backward()
        opt.step()
        return float(loss.detach())

    def make_opt(params):
        return torch.optim.Adam(params, lr=1e-2), None

    model = StackedMLP(3, [4, 8, 1], "tanh", generator=torch_generator(0, "init"))

    def prune_fn(m, s, g):
        prune(m, [s / 3, s / 2, s], criterion="neuron_l2")
        return m

    @torch.no_grad()
    def eval_fn(m):
        return [{"mse": float(F.mse_loss(m(x)[j], y))} for j in range(3)]

    steps = Steps(prune_fn, train_fn, eval_fn, make_opt, StackedMLP.from_arch)
    dense = train_dense(model, steps, epochs=2, seed=0)
    rows = run_cascade(dense, CascadeSpec((0.6,), retrain_epochs=1), steps, seed=0)
    assert [r["member"] for r in rows] == [0, 1, 2]
    assert [r["neurons"] for r in rows] == [str(8 - round(0.2 * 8)), str(8 - round(0.3 * 8)), str(8 - round(0.6 * 8))]
    assert rows[2]["achieved_sparsity"] > rows[0]["achieved_sparsity"]
    assert len({r["mse"] for r in rows}) == 3


def test_lbfgs_retraining_masks_gradients_automatically(tmp_path):
    x, y = _problem()
    seen = []

    def train_fn(m, opt, g):
        def closure():
            opt.zero_grad()
            loss = F.mse_loss(m(x), y)
            loss.backward()
            for layer in m.linears:
                if hasattr(layer, "weight_mask"):
                    seen.append(bool(torch.all(layer.weight.grad[~layer.weight_mask] == 0)))
            return loss

        return float(opt.step(closure).detach())

    def make_opt(params):
        return torch.optim.LBFGS(params, lr=0.5, max_iter=5), None

    model = MLP([4, 8, 1], "tanh", generator=torch_generator(0, "init"))

    def prune_fn(m, s, g):
        prune(m, s)
        return m

    steps = Steps(prune_fn, train_fn, torch.no_grad()(lambda m: {"mse": float(F.mse_loss(m(x), y))}), make_opt,
                  MLP.from_arch)
    dense = train_dense(model, steps, epochs=1, seed=0)
    rows = run_cascade(dense, CascadeSpec((0.5, 0.7), retrain_epochs=1), steps, seed=0)
    assert seen and all(seen) and len(rows) == 2


def test_a_tensor_held_under_two_names_is_checkpointed_once(tmp_path):
    """A CNF's field is also its dynamics' field: the dense checkpoint keeps the two names on one tensor
    (half the bytes; ``sciprune inspect`` counts it once), and loads back into both owners."""
    from sciprune.core import load_network, load_state
    from sciprune.nn.ode import CNF, Autonomous, Solver, ode_from_arch

    class Idle:
        def optimizer(self, params):
            return torch.optim.SGD(params, lr=0.0), None

        def train(self, model, optimizer, generator):
            return 0.0

    cnf = CNF(Autonomous(MLP([2, 6, 2], "tanh", generator=torch_generator(0, "f"))), Solver("rk4", steps=2))
    path = tmp_path / "dense.pt"
    train_dense(cnf, Idle(), epochs=1, seed=0, checkpoint=path)
    state = load_state(path)["state"]
    for name in ("net.layers.0.weight", "net.layers.1.bias"):
        a, b = state[f"field.{name}"], state[f"dynamics.field.{name}"]
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() and torch.equal(a, cnf.field.get_parameter(name))
    back = load_network(path, ode_from_arch)
    assert back.dynamics.field is back.field and torch.equal(back.field.net.layers[0].weight, cnf.field.net.layers[0].weight)
