"""Neural ODE wrappers: solver accuracy, exact CNF log-densities, samples against the density."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from sciprune.core import torch_generator
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.nn.ode import CNF, NODEClassifier, Autonomous, Solver, SolverFailed, standard_normal_logpdf


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one intra-op thread (two were ~10x slower on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Linear(nn.Module):
    """f(t, x) = x A^T (so dx/dt = A x per row)."""

    def __init__(self, A: Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A.clone())

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return x @ self.A.T


class TimeField(nn.Module):
    """A non-autonomous field with a time-dependent nonlinearity."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MLP([3, 16, 2], "tanh", generator=torch_generator(1, "tf"), dtype=torch.float64)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.net(torch.cat([x, t.expand(x.shape[0], 1)], dim=1))


A = torch.tensor([[-0.3, 0.8], [-0.5, 0.2]], dtype=torch.float64)
X = torch.randn(64, 2, generator=torch_generator(0, "x"), dtype=torch.float64)


@torch.no_grad()
def test_dopri5_matches_a_tight_reference_and_rk4_converges() -> None:
    field = TimeField()
    ref = NODEClassifier(field, Solver("dopri5", atol=1e-12, rtol=1e-12, adjoint=False))(X)
    for tol in (1e-4, 1e-6):
        y = NODEClassifier(field, Solver("dopri5", atol=tol, rtol=tol))(X)
        assert float((y - ref).abs().max()) < 50 * tol
    err = [float((NODEClassifier(field, Solver("rk4", steps=s))(X) - ref).abs().max()) for s in (4, 8)]
    assert err[1] < err[0] / 8  # fourth order: halving the step divides the error by ~16


@torch.no_grad()
def test_linear_field_solution_is_the_matrix_exponential() -> None:
    y = NODEClassifier(Linear(A), Solver("dopri5", atol=1e-10, rtol=1e-10))(X)
    torch.testing.assert_close(y, X @ torch.linalg.matrix_exp(A).T, atol=1e-8, rtol=0)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
@torch.no_grad()
def test_exact_cnf_log_density_of_a_linear_flow(method: str) -> None:
    # z = e^A x ~ N(0, I)  =>  log p(x) = log N(e^A x) + tr(A): the log-density changes by -t tr(A).
    cnf = CNF(Linear(A), Solver(method, atol=1e-9, rtol=1e-9, steps=50), trace="exact")
    expected = standard_normal_logpdf(X @ torch.linalg.matrix_exp(A).T) + torch.trace(A)
    torch.testing.assert_close(cnf.log_prob(X, generator=None), expected, atol=1e-6, rtol=0)


@torch.no_grad()
def test_hutchinson_trace_is_unbiased_and_fixed_per_solve() -> None:
    cnf = CNF(Linear(A), Solver("rk4", steps=10), trace="hutchinson")
    x = torch.zeros(20000, 2, dtype=torch.float64)
    delta = standard_normal_logpdf(x) - cnf.log_prob(x, generator=torch_generator(0, "probe"))  # = Δ(1) per row
    # one probe per row for the whole solve: Δ(1) = -εᵀAε exactly for a linear field
    probe = cnf.dynamics.probe
    assert probe is not None
    torch.testing.assert_close(delta, -((probe @ A.T) * probe).sum(1), atol=1e-9, rtol=0)
    assert abs(float(delta.mean()) + float(torch.trace(A))) < 0.05
    again = cnf.log_prob(x, generator=torch_generator(0, "probe"))
    torch.testing.assert_close(again, standard_normal_logpdf(x) - delta)


@torch.no_grad()
def test_samples_follow_the_density() -> None:
    field = Autonomous(MLP([2, 16, 2], "tanh", generator=torch_generator(3, "f"), dtype=torch.float64))
    cnf = CNF(field, Solver("rk4", steps=8), trace="exact")
    s = cnf.sample(40000, generator=torch_generator(0, "s"), dim=2)
    edges = torch.linspace(-3.5, 3.5, 15, dtype=torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    grid = torch.cartesian_prod(centres, centres)
    area = float(edges[1] - edges[0]) ** 2
    p = (cnf.log_prob(grid, generator=None).exp() * area).view(14, 14)
    counts = torch.histogramdd(s, bins=[edges, edges]).hist / len(s)
    assert 0.9 < float(p.sum()) <= 1.0
    tv = 0.5 * float((counts - p).abs().sum())
    assert tv < 0.06  # binning + Monte-Carlo error; a wrong sign or direction gives > 0.3


def test_adjoint_gradient_matches_backprop_and_backward_nfe_counted() -> None:
    field = TimeField()
    grads = []
    for adjoint in (True, False):
        field.zero_grad()
        model = NODEClassifier(field, Solver("dopri5", atol=1e-9, rtol=1e-9, adjoint=adjoint))
        model(X).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
        assert model.nfe_forward > 0
        assert (model.backward_nfe() > 0) == adjoint
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_cnf_trains_through_the_adjoint_with_both_traces() -> None:
    for trace in ("exact", "hutchinson"):
        field = Autonomous(MLP([2, 8, 2], "tanh", generator=torch_generator(0, "f")))
        cnf = CNF(field, Solver("dopri5", atol=1e-5, rtol=1e-5), trace=trace)
        loss = cnf.nll(X.float(), generator=torch_generator(0, "p"))
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in field.parameters())
        assert cnf.backward_nfe() > 0


@torch.no_grad()
def test_step_budget_and_bad_solver_input() -> None:
    stiff = Linear(torch.tensor([[-1e5, 0.0], [0.0, 1.0]], dtype=torch.float64))
    with pytest.raises(SolverFailed) as err:
        NODEClassifier(stiff, Solver("dopri5", atol=1e-8, rtol=1e-8, max_nfe=200))(X)
    assert err.value.nfe == 201
    with pytest.raises(InputError, match="expected one of dopri5"):
        Solver("rk45")
    with pytest.raises(InputError, match="tolerances must be > 0"):
        Solver(atol=0.0)
    with pytest.raises(InputError, match="trace estimator"):
        CNF(stiff, Solver(), trace="skilling")


def test_hutchinson_probe_needs_a_generator() -> None:
    """No fall-back to the global random stream: a Hutchinson CNF without a generator is refused."""
    cnf = CNF(Linear(A), Solver("rk4", steps=2), trace="hutchinson")
    state = torch.random.get_rng_state()
    with pytest.raises(ValueError, match="needs a generator"):
        cnf.log_prob(X, generator=None)
    assert torch.equal(torch.random.get_rng_state(), state)
