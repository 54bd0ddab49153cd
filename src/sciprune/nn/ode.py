r"""Neural ODEs around any vector field ``f(t, x)``: a classifier and continuous normalizing flows.

The vector field is an ``nn.Module`` called as ``f(t, x)`` with ``x`` of shape ``(batch, d)``; an
autonomous network ``g(x)`` (a sciprune :class:`~sciprune.nn.mlp.MLP`) is wrapped by
:class:`Autonomous`. The wrappers never look inside the field, so a masked, compacted or
time-conditioned field is solved the same way, and pruning (which edits the field) never needs them.

* :class:`NODEClassifier`: :math:`\dot x = f(t, x)`, :math:`x(0)` = the input, :math:`x(1)` = the logits
  (the state has as many dimensions as there are classes; no read-out layer).
* :class:`CNF`: a continuous normalizing flow. Data :math:`x` flows to :math:`z = x(1)` while
  :math:`\Delta(t) = -\int_0^t \operatorname{tr}\,\partial f/\partial x\,ds`, so

  .. math:: \log p(x) = \log \mathcal N(z; 0, I) - \Delta(1).

  ``trace="exact"`` (the "vanilla" CNF) takes :math:`d` autograd calls per evaluation;
  ``trace="hutchinson"`` (FFJORD) estimates :math:`\operatorname{tr} J \approx \varepsilon^\top J
  \varepsilon` with one Gaussian probe :math:`\varepsilon \sim \mathcal N(0, I)` per sample, drawn
  once per solve (the same probe at every evaluation of that solve and of its adjoint). Sampling
  integrates prior draws from :math:`t=1` back to :math:`0`.

Solving (:class:`Solver`): torchdiffeq's ``odeint_adjoint`` (constant memory; the backward pass
solves the adjoint ODE, with FFJORD's "seminorm" step control) or plain ``odeint`` (backprop
through the solver's steps), adaptive dopri5/bosh3/... at ``atol``/``rtol`` or fixed-step rk4/euler/
midpoint with ``steps`` steps over the unit interval. Every evaluation of ``f`` is counted
(:class:`NFE`): ``forward`` (the last solve) and ``backward`` (the adjoint solve of the last
``loss.backward()``). A solve that needs more than ``max_nfe`` evaluations (or whose step size
underflows) raises :class:`SolverFailed` carrying its NFE, instead of running for ever.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from sciprune.core import NeuronGroup, PruningUnits, Slice, WeightUnit, build_model, register_family, units_of
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP  # registers the MLP family (fields built from an arch)

ADAPTIVE = ("dopri5", "bosh3", "adaptive_heun", "dopri8")
FIXED = ("rk4", "euler", "midpoint")
SOLVERS = ADAPTIVE + FIXED
TRACES = ("hutchinson", "exact")


class SolverFailed(RuntimeError):
    """A solve that exceeded its evaluation budget or whose step size underflowed (``nfe`` so far)."""

    def __init__(self, message: str, nfe: int) -> None:
        super().__init__(message)
        self.nfe = nfe


@dataclass(frozen=True)
class Solver:
    """How to integrate over :math:`t \\in [0, 1]`.

    Attributes:
        method: an adaptive (``dopri5``, ``bosh3``, ``adaptive_heun``, ``dopri8``) or fixed-step
            (``rk4``, ``euler``, ``midpoint``) torchdiffeq method.
        atol, rtol: tolerances of adaptive methods (and of the adjoint solve); both > 0.
        steps: fixed-step methods take ``steps`` equal steps over the unit interval.
        adjoint: backpropagate by the adjoint ODE (``odeint_adjoint``) rather than through the steps.
        max_nfe: evaluations allowed per solve (forward, and again for the adjoint backward).
    """

    method: str = "dopri5"
    atol: float = 1e-5
    rtol: float = 1e-5
    steps: int = 20
    adjoint: bool = True
    max_nfe: int = 10_000

    def __post_init__(self) -> None:
        if self.method not in SOLVERS:
            raise InputError(f"unknown ODE solver {self.method!r}; expected one of {', '.join(SOLVERS)}")
        if not (self.atol > 0 and self.rtol > 0):
            raise InputError(f"solver tolerances must be > 0; got atol={self.atol}, rtol={self.rtol}")
        if self.steps < 1:
            raise InputError(f"solver steps must be >= 1; got {self.steps}")
        if self.max_nfe < 1:
            raise InputError(f"solver max_nfe must be >= 1; got {self.max_nfe}")

    @property
    def adaptive(self) -> bool:
        return self.method in ADAPTIVE

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``odeint`` / ``odeint_adjoint``."""
        if self.adaptive:
            kw: dict[str, Any] = {"method": self.method, "atol": self.atol, "rtol": self.rtol}
            if self.adjoint:
                kw["adjoint_options"] = {"norm": "seminorm"}
            return kw
        kw = {"method": self.method, "options": {"step_size": 1.0 / self.steps}}
        if self.adjoint:
            kw["adjoint_options"] = {"step_size": 1.0 / self.steps}
        return kw


class NFE(nn.Module):
    """``f`` that counts its evaluations and stops a solve that exceeds ``budget`` of them.

    ``calls`` counts all evaluations; :meth:`phase` starts a new budget window (a forward solve, an
    adjoint backward), so the budget applies to each solve separately.
    """

    def __init__(self, f: nn.Module, budget: int) -> None:
        super().__init__()
        self.f = f
        self.budget = budget
        self.calls = 0
        self._start = 0

    def phase(self) -> int:
        """Start a new window; returns the calls made in the previous one."""
        done = self.calls - self._start
        self._start = self.calls
        return done

    def forward(self, t: Tensor, x: Any) -> Any:
        self.calls += 1
        if self.calls - self._start > self.budget:
            raise SolverFailed(f"ODE solve exceeded its budget of {self.budget} function evaluations", self.calls - self._start)
        return self.f(t, x)


def prefixed(units: PruningUnits, prefix: str) -> PruningUnits:
    """``units`` of a submodule, renamed as seen from its parent (``prefix`` = ``"name."``)."""

    def sl(s: Slice) -> Slice:
        return Slice(prefix + s.param, s.axis, s.index, prefix + s.fold_into if s.fold_into else None)

    weights = tuple(WeightUnit(prefix + w.param, w.member_axes, prefix + (w.layer or w.param)) for w in units.weights)
    groups = tuple(NeuronGroup(prefix + g.name, g.size, tuple(map(sl, g.incoming)), tuple(map(sl, g.outgoing)),
                               tuple(map(sl, g.attached)), g.member_axes, g.activation, g.prunable)
                   for g in units.groups)
    return PruningUnits(weights, groups, units.members, dict(units.extra))


def _flops(module: nn.Module) -> int:
    fn = getattr(module, "flops", None)
    if fn is None:
        raise InputError(f"{type(module).__name__} has no flops() count")
    return int(fn())


class Autonomous(nn.Module):
    """An autonomous field ``f(t, x) = net(x)`` (the reference's toy models: no time input).

    It declares ``net``'s pruning units (names prefixed ``net.``) and FLOPs, so core prunes it.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.net(x)

    def pruning_units(self) -> PruningUnits:
        return prefixed(units_of(self.net), "net.")

    def id_part(self) -> tuple[str, Callable[[nn.Module], "Autonomous"]]:
        """ID pruning acts on ``net`` (on states ``x``: the field ignores ``t``); a pruned one is wrapped anew."""
        return "net", Autonomous

    def flops(self) -> int:
        """One evaluation for one sample."""
        return _flops(self.net)

    @property
    def arch(self) -> dict[str, object]:
        return {"class": "Autonomous", "net": dict(getattr(self.net, "arch"))}

    @classmethod
    def from_arch(cls, arch: dict[str, Any], *, dtype: torch.dtype = torch.float32) -> "Autonomous":
        net = arch.get("net")
        if arch.get("class") != "Autonomous" or not isinstance(net, dict):
            raise InputError(f"architecture {arch.get('class')!r}; expected 'Autonomous' with a 'net'")
        return cls(build_model(net, dtype=dtype))


class _ODEModel(nn.Module):
    """Shared solving and NFE bookkeeping of the wrappers."""

    def __init__(self, field: nn.Module, solver: Solver) -> None:
        super().__init__()
        self.field = field
        self.solver = solver
        self.nfe_forward = 0
        self.nfe_backward = 0

    @property
    def arch(self) -> dict[str, object]:
        """JSON-able description (:func:`ode_from_arch` rebuilds the module, weights not included)."""
        arch: dict[str, object] = {"class": type(self).__name__, "field": dict(getattr(self.field, "arch")),
                                   "solver": asdict(self.solver)}
        if isinstance(self, CNF):
            arch["trace"] = self.trace
        return arch

    def pruning_units(self) -> PruningUnits:
        """The field's units, as seen from the wrapper (names prefixed ``field.``)."""
        return prefixed(units_of(self.field), "field.")

    def flops(self) -> int:
        """FLOPs of one field evaluation for one sample (a solve costs ``NFE`` times this; a CNF's
        trace adds vector-Jacobian products that are not counted)."""
        return _flops(self.field)

    def with_field(self, field: nn.Module) -> "_ODEModel":
        """The same wrapper (solver, trace) around another field, e.g. a pruned or compacted one."""
        return ode_from_arch({**self.arch, "field": dict(getattr(field, "arch"))}, field=field)

    def id_part(self) -> tuple[str, Callable[[nn.Module], "_ODEModel"]]:
        """ID pruning acts on the field (on states along trajectories); a pruned one goes into a new
        wrapper (:meth:`with_field`: its ``arch`` then describes the pruned field)."""
        return "field", self.with_field

    @torch.no_grad()
    def trajectory(self, x: Tensor, times: Tensor, *, reverse: bool = False) -> Tensor:
        """States ``(len(times), n, d)`` of :math:`\\dot x = f(t, x)` from ``x`` at ``times`` (no trace)."""
        t = (1.0 - times) if reverse else times
        kw = {k: v for k, v in self.solver.kwargs().items() if k != "adjoint_options"}
        out: Tensor = odeint(NFE(self.field, self.solver.max_nfe), x, t.to(x), **kw)
        return out

    def _solve(self, func: nn.Module, y0: Any, t0: float, t1: float) -> Any:
        counted = NFE(func, self.solver.max_nfe)
        t = torch.tensor([t0, t1], dtype=_dtype(y0), device=_device(y0))
        try:
            if self.solver.adjoint and torch.is_grad_enabled():
                params = tuple(p for p in func.parameters() if p.requires_grad)
                ys = odeint_adjoint(counted, y0, t, adjoint_params=params, **self.solver.kwargs())
            else:
                kw = {k: v for k, v in self.solver.kwargs().items() if k != "adjoint_options"}
                ys = odeint(counted, y0, t, **kw)
        except AssertionError as err:  # torchdiffeq: "underflow in dt"
            raise SolverFailed(f"ODE solve failed: {err}", counted.calls) from None
        self.nfe_forward = counted.phase()
        self.nfe_backward = 0
        self.__dict__["_counter"] = counted  # not a submodule: kept out of state_dict
        return tuple(y[-1] for y in ys) if isinstance(ys, tuple) else ys[-1]

    def backward_nfe(self) -> int:
        """Evaluations made by backward passes since the last solve (the adjoint solve)."""
        counter = getattr(self, "_counter", None)
        self.nfe_backward = counter.calls - counter._start if counter is not None else 0
        return self.nfe_backward


class NODEClassifier(_ODEModel):
    """Logits ``x(1)`` of :math:`\\dot x = f(t, x)`, :math:`x(0) = ` the input (state dim = classes)."""

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self._solve(self.field, x, 0.0, 1.0)
        return out


class CNFDynamics(nn.Module):
    """The augmented dynamics :math:`(\\dot x, \\dot\\Delta) = (f(t, x), -\\operatorname{tr} \\partial f/\\partial x)`."""

    def __init__(self, field: nn.Module, trace: str) -> None:
        super().__init__()
        if trace not in TRACES:
            raise InputError(f"unknown trace estimator {trace!r}; expected one of {', '.join(TRACES)}")
        self.field = field
        self.trace = trace
        self.probe: Tensor | None = None

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x = state[0]
        create = torch.is_grad_enabled()  # differentiable trace only when someone backpropagates
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            fx = self.field(t, x)
            if self.trace == "exact":
                tr = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
                for i in range(x.shape[1]):
                    (g,) = torch.autograd.grad(fx[:, i].sum(), x, create_graph=create, retain_graph=True)
                    tr = tr + g[:, i]
            else:
                assert self.probe is not None, "the Hutchinson probe is drawn by CNF before each solve"
                (g,) = torch.autograd.grad(fx, x, self.probe, create_graph=create)
                tr = (g * self.probe).sum(dim=1)
        if not create:
            fx, tr = fx.detach(), tr.detach()
        return fx, -tr


def standard_normal_logpdf(z: Tensor) -> Tensor:
    """:math:`\\log \\mathcal N(z; 0, I)` per row."""
    return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * math.log(2 * math.pi))


class CNF(_ODEModel):
    """A continuous normalizing flow with a standard normal prior (see the module docstring)."""

    def __init__(self, field: nn.Module, solver: Solver, trace: str = "hutchinson") -> None:
        super().__init__(field, solver)
        self.dynamics = CNFDynamics(field, trace)

    @property
    def trace(self) -> str:
        return self.dynamics.trace

    def log_prob(self, x: Tensor, *, generator: torch.Generator | None) -> Tensor:
        """:math:`\\log p(x)` per row (nats). ``generator`` draws the Hutchinson probe and is required
        with ``trace="hutchinson"`` (there is no fall-back to the global random stream); the exact
        trace draws nothing (pass ``generator=None``)."""
        if self.trace == "hutchinson":
            if generator is None:
                raise ValueError("CNF.log_prob with trace='hutchinson' needs a generator for its probe; "
                                 "pass generator=torch_generator(seed, ...)")
            self.dynamics.probe = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        zero = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        z, delta = self._solve(self.dynamics, (x, zero), 0.0, 1.0)
        return standard_normal_logpdf(z) - delta

    def forward(self, x: Tensor, *, generator: torch.Generator | None) -> Tensor:
        return self.log_prob(x, generator=generator)

    def nll(self, x: Tensor, *, generator: torch.Generator | None) -> Tensor:
        """Mean negative log-likelihood in nats (the training loss)."""
        return -self.log_prob(x, generator=generator).mean()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, dim: int = 2) -> Tensor:
        """``n`` samples: prior draws integrated from :math:`t=1` back to :math:`t=0`."""
        p = next(self.field.parameters())
        z = torch.randn(n, dim, generator=generator, dtype=p.dtype).to(p.device)
        out: Tensor = self._solve(self.field, z, 1.0, 0.0)
        return out

    @torch.no_grad()
    def transform(self, x: Tensor) -> Tensor:
        """``z = x(1)`` of data ``x`` (no trace), e.g. to look at the learnt map."""
        out: Tensor = self._solve(self.field, x, 0.0, 1.0)
        return out


def ode_from_arch(arch: dict[str, Any], *, field: nn.Module | None = None,
                  dtype: torch.dtype = torch.float32) -> _ODEModel:
    """A :class:`NODEClassifier` or :class:`CNF` rebuilt from its ``arch`` (around ``field`` if given;
    otherwise the field is built by its family's registered builder)."""
    kind, f_arch, s_arch = arch.get("class"), arch.get("field"), arch.get("solver")
    if not (isinstance(f_arch, dict) and isinstance(s_arch, dict)):
        raise InputError(f"neural ODE architecture needs 'field' and 'solver' mappings; got {arch}")
    f = field if field is not None else build_model(f_arch, dtype=dtype)
    solver = Solver(**s_arch)
    if kind == "NODEClassifier":
        return NODEClassifier(f, solver)
    if kind == "CNF":
        return CNF(f, solver, trace=str(arch.get("trace", "hutchinson")))
    raise InputError(f"unknown neural ODE class {kind!r}; expected 'NODEClassifier' or 'CNF'")


def _dtype(y: Any) -> torch.dtype:
    return (y[0] if isinstance(y, tuple) else y).dtype


def _device(y: Any) -> torch.device:
    return (y[0] if isinstance(y, tuple) else y).device


register_family("Autonomous", Autonomous.from_arch)
register_family("CNF", ode_from_arch)
register_family("NODEClassifier", ode_from_arch)
