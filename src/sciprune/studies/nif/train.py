r"""Training a NIF: weighted MSE, Adam with piecewise-constant learning rates, optional L-BFGS.

Loss (Keras' sample-weighted MSE, ``specs/nif.md`` §4): :math:`\frac1B\sum_b w_b\,
\frac1{d_u}\sum_j (\hat u_{bj} - u_{bj})^2`, with :math:`w \equiv 1` when the data has no weights.
The weights travel as the last column of the targets, so core's supervised epoch runs unchanged.
Adam uses Keras' ``eps = 1e-7``. L-BFGS is full batch (strong-Wolfe line search, 20 pairs);
masked entries get no gradient (a hook zeroes it) and stay zero (core's mask enforcement).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from sciprune.core import TrainFn, enforce_masks, get_masks, supervised


def epochs_for(epochs: int | None, steps: int | None, default: int, rows: int, batch_size: int) -> int:
    """Epochs of a budget: ``epochs`` (``default`` when None), or ``ceil(steps / batches per epoch)`` when ``steps`` is set."""
    if steps is None:
        return default if epochs is None else epochs
    return math.ceil(steps / math.ceil(rows / batch_size))


class Plateau:
    r"""Wraps a train function: stop stepping once the validation error stops improving.

    Every ``check_every`` optimizer steps (rounded to whole epochs) the relative L2 error on the
    validation rows is measured; a check that does not beat the best so far by the factor
    :math:`1 - \text{min\_delta}` counts against ``patience``; at ``patience`` such checks in a row
    the wrapped function stops training: later calls return the last loss and take no step (the
    cascade's epoch loop runs out at no cost). :meth:`reset` starts a new training (a stage).
    ``steps`` is the number of optimizer steps taken since the last reset.
    """

    def __init__(self, tfn: TrainFn, val_error: Callable[[nn.Module], float], batches_per_epoch: int, check_every: int,
                 patience: int, min_delta: float) -> None:
        self.tfn, self.val_error = tfn, val_error
        self.per_epoch, self.patience, self.min_delta = batches_per_epoch, patience, min_delta
        self.every = max(1, round(check_every / batches_per_epoch))
        self.reset()

    def reset(self) -> None:
        self.best, self.bad, self.epoch, self.steps, self.stopped, self.last = math.inf, 0, 0, 0, False, math.nan

    def __call__(self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, float]:
        if not self.stopped:
            self.last = float(self.tfn(model, optimizer, generator))
            self.epoch += 1
            self.steps += self.per_epoch
            if self.epoch % self.every == 0:
                self._check(model)
        return {"loss": self.last, "train_steps": self.steps}

    def _check(self, model: nn.Module) -> None:
        model.eval()
        err = self.val_error(model)
        model.train()
        if err < self.best * (1 - self.min_delta):
            self.best, self.bad = err, 0
        else:
            self.bad += 1
            self.stopped = self.bad >= self.patience


def weighted_mse(pred: Tensor, target: Tensor) -> Tensor:
    """``target`` is ``[u | w]``: the sample-weighted MSE."""
    u, w = target[:, :-1], target[:, -1]
    return (w * (pred - u).pow(2).mean(dim=1)).mean()


def with_weights(u: Tensor, w: Tensor | None) -> Tensor:
    return torch.cat([u, (torch.ones(u.shape[0], dtype=u.dtype, device=u.device) if w is None else w)[:, None]], dim=1)


def train_fn(inputs: Tensor, targets: Tensor, batch_size: int) -> TrainFn:
    return supervised(inputs, targets, weighted_mse, batch_size=batch_size)


def piecewise(lr: float, steps: dict[int, float]) -> callable:  # type: ignore[valid-type]
    """Multiplier for ``LambdaLR``: the learning rate from the last step at or before the epoch."""
    items = sorted(steps.items())

    def factor(epoch: int) -> float:
        cur = lr
        for e, v in items:
            if epoch >= e:
                cur = v
        return cur / lr

    return factor


def optimizer_factory(lr: float, steps: dict[int, float]):  # type: ignore[no-untyped-def]
    def make(params: Iterable[nn.Parameter]) -> tuple[torch.optim.Optimizer, object]:
        opt = torch.optim.Adam(params, lr=lr, eps=1e-7)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, piecewise(lr, steps))

    return make


def lbfgs(model: nn.Module, inputs: Tensor, targets: Tensor, iters: int) -> float:
    """Full-batch L-BFGS fine-tuning for ``iters`` iterations; returns the final loss."""
    masks = get_masks(model)
    hooks = []
    for name, p in model.named_parameters():
        if name in masks:
            keep = masks[name].to(p.dtype)
            hooks.append(p.register_hook(lambda g, k=keep: g * k))
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iters, history_size=20,
                            tolerance_grad=1e-15, tolerance_change=1e-15, line_search_fn="strong_wolfe")
    handle = enforce_masks(model, opt)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = weighted_mse(model(inputs), targets)
        loss.backward()
        return loss

    model.train()
    opt.step(closure)
    handle.remove()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        return float(weighted_mse(model(inputs), targets))
