r"""One buffer for many parameters, so that an optimizer steps all of them in one call.

An optimizer step costs a handful of elementwise kernels *per parameter tensor*. For networks of
small layers the per-call overhead is most of it: a stacked ensemble of eight 10-64-64-64-8-7
controllers has 10 tensors of 75 k numbers in all, and Adam over them takes about 0.37 ms of a
2.2 ms step on one core, mostly in dispatch. :class:`FlatParameters` moves the parameters into one
buffer ``flat`` (each parameter becomes a view of its slice, so the model itself is unchanged) and
hands the optimizer ``flat`` alone; a step pre-hook gathers the parameters' gradients into
``flat.grad`` just before each step. The elementwise update of every entry is the same arithmetic,
so any optimizer whose update is entrywise (SGD, Adam, AdamW, RMSprop, ...) is unchanged in
exact arithmetic. (Optimizers that reduce over a tensor, such as LAMB's trust ratio or L-BFGS,
would see one tensor instead of many: do not flatten for them.)

**Layout.** With ``members=P`` every parameter has the member axis first (``[P, ...]``) and
``flat`` is ``[P, N]``, member-major: row ``p`` holds member ``p``'s slice of every parameter,

.. math:: \mathrm{flat}[p,\; o_i : o_i + n_i] = \mathrm{vec}\big(\theta_i[p]\big), \qquad
          o_i = \textstyle\sum_{j<i} n_j,

so per-member operations (saving, restoring or freezing a member) index rows of ``flat`` and of
every optimizer state tensor of its shape. Without members, ``flat`` is ``[1, N]``.

**Gradients.** ``gather`` (run by the hook) copies each ``θ_i.grad`` into its slice of
``flat.grad`` and sets ``θ_i.grad`` to ``None``: the parameters' gradients are *consumed* by the
step, so the usual ``zero_grad(); backward(); step()`` loop is exact, and so is accumulating
several backward passes before a step. A parameter without a gradient contributes zeros (for
Adam, its entries still move by their momentum, as a parameter with a zero gradient would).

**Safety.** A parameter whose ``.data`` is replaced after flattening would silently stop
training; ``gather`` checks every parameter still lives in the buffer and raises otherwise.
:mod:`sciprune.core._masks` enforces masks on a flat buffer in one multiply (see
:func:`flat_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

_ATTR = "_sciprune_flat"


class FlatParameters:
    """Parameters moved into one ``[P, N]`` (or ``[1, N]``) buffer; see the module docstring.

    Args:
        params: the parameters (leaf tensors), all of one dtype and device.
        members: ``P``: every parameter's leading axis has this size and is the member axis.

    Attributes:
        tensor: the flat leaf tensor to give the optimizer (``requires_grad=True``).
        params: the parameters, in buffer order.
        offsets: ``(offset, length)`` of each parameter's slice within a row.
    """

    def __init__(self, params: Iterable[Tensor], *, members: int | None = None) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("FlatParameters needs at least one parameter")
        first = self.params[0]
        for p in self.params:
            if p.dtype != first.dtype or p.device != first.device:
                raise ValueError(f"FlatParameters needs one dtype and device; got {p.dtype} on {p.device} "
                                 f"beside {first.dtype} on {first.device}")
            if members is not None and (p.dim() == 0 or p.shape[0] != members):
                raise ValueError(f"every parameter needs the member axis ({members}) first; got shape {tuple(p.shape)}")
        self.rows = 1 if members is None else int(members)
        lengths = [p.numel() // self.rows for p in self.params]
        self.tensor = torch.empty(self.rows, sum(lengths), dtype=first.dtype, device=first.device)
        self._grad = torch.zeros_like(self.tensor)
        self.offsets: list[tuple[int, int]] = []
        self._ptrs: list[int] = []
        offset = 0
        with torch.no_grad():
            for p, n in zip(self.params, lengths):
                view = self.tensor[:, offset : offset + n]
                view.copy_(p.detach().reshape(self.rows, n))
                p.data = view.view(p.shape)
                self.offsets.append((offset, n))
                self._ptrs.append(p.data_ptr())
                offset += n
        self.tensor.requires_grad_(True)
        setattr(self.tensor, _ATTR, self)

    def view_of(self, i: int, flat_like: Tensor) -> Tensor:
        """Parameter ``i``'s slice of a tensor shaped like :attr:`tensor` (an optimizer moment), as a
        view shaped like the parameter."""
        offset, n = self.offsets[i]
        return flat_like[:, offset : offset + n].view(self.params[i].shape)

    def gather(self) -> None:
        """Move every parameter's gradient into ``tensor.grad`` (see the module docstring)."""
        any_grad = False
        with torch.no_grad():
            for p, (offset, n), ptr in zip(self.params, self.offsets, self._ptrs):
                if p.data_ptr() != ptr:
                    raise RuntimeError(
                        f"a parameter of shape {tuple(p.shape)} no longer lives in its FlatParameters buffer "
                        "(its .data was replaced); build the FlatParameters and the optimizer again")
                dst = self._grad[:, offset : offset + n]
                if p.grad is None:
                    dst.zero_()
                else:
                    dst.copy_(p.grad.reshape(self.rows, n))
                    any_grad = True
                p.grad = None
        self.tensor.grad = self._grad if any_grad else None

    def attach(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Gather the gradients before every ``optimizer.step()``."""
        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self.gather()
        return optimizer.register_step_pre_hook(hook)


def flat_of(t: Tensor) -> FlatParameters | None:
    """The :class:`FlatParameters` whose buffer ``t`` is, or ``None``."""
    found = getattr(t, _ATTR, None)
    return found if isinstance(found, FlatParameters) else None


def flat_optimizer(params: Iterable[Tensor], factory: Any, *, members: int | None = None,
                   **kwargs: Any) -> torch.optim.Optimizer:
    """``factory([flat], **kwargs)`` over the :class:`FlatParameters` of ``params``, with the gather hook
    attached (e.g. ``flat_optimizer(model.parameters(), torch.optim.Adam, lr=1e-3, fused=True)``)."""
    flat = FlatParameters(params, members=members)
    optimizer: torch.optim.Optimizer = factory([flat.tensor], **kwargs)
    flat.attach(optimizer)
    return optimizer
