r"""Training a NIF: weighted MSE, Adam with piecewise-constant learning rates, optional L-BFGS.

Loss (Keras' sample-weighted MSE, ``specs/nif.md`` §4): :math:`\frac1B\sum_b w_b\,
\frac1{d_u}\sum_j (\hat u_{bj} - u_{bj})^2`, with :math:`w \equiv 1` when the data has no weights.
The weights travel as the last column of the targets, so core's supervised epoch runs unchanged.
Adam uses Keras' ``eps = 1e-7``. L-BFGS is full batch (strong-Wolfe line search, 20 pairs);
masked entries get no gradient (a hook zeroes it) and stay zero (core's mask enforcement).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sciprune.core.masks import enforce_masks, get_masks
from sciprune.core.train import TrainFn, supervised


def weighted_mse(pred: Tensor, target: Tensor) -> Tensor:
    """``target`` is ``[u | w]``: the sample-weighted MSE."""
    u, w = target[:, :-1], target[:, -1]
    return (w * (pred - u).pow(2).mean(dim=1)).mean()


def with_weights(u: Tensor, w: Tensor | None) -> Tensor:
    return torch.cat([u, (torch.ones(u.shape[0], dtype=u.dtype) if w is None else w)[:, None]], dim=1)


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
