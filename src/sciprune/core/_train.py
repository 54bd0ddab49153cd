"""The supervised training epoch most studies need; studies with other losses bring their own.

A *train function* in sciprune has the shape ``train(model, optimizer, generator) -> float``: one
epoch, randomness only from ``generator``, returning the mean training loss. The cascade calls it
once per epoch and owns the optimizer (and the mask-enforcing hook on it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from sciprune.core._seeding import global_stream_from

TrainFn = Callable[[nn.Module, torch.optim.Optimizer, torch.Generator], float]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the block (dropout off, batch norm on its running statistics); every
    submodule's own mode is restored after it, whatever it was."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def supervised_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    *,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    batch_size: int,
) -> float:
    """One pass over ``(inputs, targets)`` in minibatches shuffled by ``generator``; mean loss. A model
    that draws from the global random stream (dropout) draws from one seeded by ``generator``
    (:func:`~sciprune.core._seeding.global_stream_from`)."""
    model.train()
    n = inputs.shape[0]
    order = torch.randperm(n, generator=generator).to(inputs.device)
    total = 0.0
    with global_stream_from(generator, [inputs.device]):
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[idx]), targets[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
    return total / n


def supervised(
    inputs: Tensor, targets: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor], *, batch_size: int
) -> TrainFn:
    """A :data:`TrainFn` running :func:`supervised_epoch` on the given data."""

    def train(model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> float:
        return supervised_epoch(
            model, optimizer, generator, inputs=inputs, targets=targets, loss_fn=loss_fn, batch_size=batch_size
        )

    return train
