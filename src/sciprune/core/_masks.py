"""Masks as state: named boolean buffers stored beside the parameters they prune.

A mask for parameter ``layers.0.weight`` is the boolean buffer ``layers.0.weight_mask`` registered
on the same module (``True`` = kept). Because it is a buffer it travels with ``state_dict``,
``deepcopy`` and ``.to(device)``. Masks are *enforced*, not re-applied on every forward: the masked
entries are zeroed in place when a mask is set, after every optimizer step (:func:`enforce_masks`)
and at load time (:func:`load_state_dict`). The forward pass stays a plain dense pass, with no
per-call hook, which matters for neural ODEs that call the network hundreds of times per solve.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from sciprune.core._flat import FlatParameters, flat_of
from sciprune.errors import InputError

MASK_SUFFIX = "_mask"


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The submodule holding parameter ``name`` and the parameter's local name."""
    path, _, local = name.rpartition(".")
    try:
        module = model.get_submodule(path) if path else model
    except AttributeError:
        raise InputError(f"no parameter {name!r} in {type(model).__name__}") from None
    if not isinstance(getattr(module, local, None), nn.Parameter):
        raise InputError(f"no parameter {name!r} in {type(model).__name__}")
    return module, local


def set_mask(model: nn.Module, name: str, mask: Tensor) -> None:
    """Store ``mask`` (``True`` = keep) for parameter ``name`` and zero the masked entries.

    A parameter that already has a mask keeps its pruned entries pruned: the new mask is
    intersected with the old one, so pruned weights never come back.
    """
    module, local = _owner(model, name)
    param: nn.Parameter = getattr(module, local)
    if mask.shape != param.shape:
        raise InputError(f"mask for {name!r} has shape {tuple(mask.shape)}; expected {tuple(param.shape)}")
    mask = mask.to(device=param.device, dtype=torch.bool)
    buffer = local + MASK_SUFFIX
    old = getattr(module, buffer, None)
    if isinstance(old, Tensor):
        mask = mask & old
    module.register_buffer(buffer, mask.clone())
    with torch.no_grad():
        param.masked_fill_(~mask, 0.0)


def iter_masks(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, Tensor]]:
    """``(parameter name, parameter, mask)`` for every masked parameter, in module order."""
    for mod_name, module in model.named_modules():
        for local, param in module.named_parameters(recurse=False):
            mask = getattr(module, local + MASK_SUFFIX, None)
            if isinstance(mask, Tensor):
                yield (f"{mod_name}.{local}" if mod_name else local), param, mask


def get_masks(model: nn.Module) -> dict[str, Tensor]:
    """Parameter name -> boolean mask, for every masked parameter."""
    return {name: mask for name, _, mask in iter_masks(model)}


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Zero every masked entry in place (idempotent, cheap: one ``masked_fill_`` per parameter)."""
    for _, param, mask in iter_masks(model):
        param.masked_fill_(~mask, 0.0)


def remove_masks(model: nn.Module) -> None:
    """Drop all masks; the zeros stay in the weights (like ``torch.nn.utils.prune.remove``)."""
    for name, _, _ in list(iter_masks(model)):
        module, local = _owner(model, name)
        delattr(module, local + MASK_SUFFIX)


def _owners(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """``id(param)`` -> every ``(module, mask buffer name)`` that holds it (a shared parameter has several)."""
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for local, param in module.named_parameters(recurse=False):
            owners.setdefault(id(param), []).append((module, local + MASK_SUFFIX))
    return owners


def _mask_of_param(owners: list[tuple[nn.Module, str]]) -> list[Tensor]:
    """The masks any owner stores for one parameter (a shared parameter keeps what every owner prunes)."""
    found = [getattr(module, buffer, None) for module, buffer in owners]
    return [m for m in found if isinstance(m, Tensor)]


def _intersection(masks: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """What every one of ``masks`` keeps (a shared parameter's owners may each prune it)."""
    keep = masks[0]
    for m in masks[1:]:
        keep = keep & m
    return keep


class _FloatMasks:
    """Float copies of boolean masks, rebuilt whenever a mask is replaced or edited in place.

    The cache holds a reference to the very mask tensor it was built from and compares
    *identity* (``is``) and the version counter: a replaced mask is a new object, and since the
    old one is kept alive by the cache its address cannot be reused, so a stale copy never
    matches (defect D1: keying on ``id(mask)`` alone let a freed mask's address come back).
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[tuple[Tensor, ...], tuple[int, ...], Tensor]] = {}

    def get(self, p: Tensor, masks: list[Tensor]) -> Tensor:
        versions = tuple(m._version for m in masks)
        hit = self._cache.get(id(p))
        if (
            hit is None or len(hit[0]) != len(masks) or any(a is not b for a, b in zip(hit[0], masks))
            or hit[1] != versions or hit[2].dtype != p.dtype or hit[2].device != p.device
        ):
            hit = (tuple(masks), versions, _intersection(masks).to(p.dtype))
            self._cache[id(p)] = hit
        return hit[2]


class _FlatFloatMasks:
    """The float keep-factor of a whole :class:`~sciprune.core._flat.FlatParameters` buffer (``1`` where
    the entry is kept or unmasked), rebuilt when any of its parameters' masks is replaced or edited
    (the same identity-and-version test as :class:`_FloatMasks`); ``None`` when none is masked."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[tuple[tuple[Tensor, ...], ...], tuple[tuple[int, ...], ...], Tensor | None]] = {}

    def get(self, flat: FlatParameters, owners: dict[int, list[tuple[nn.Module, str]]]) -> Tensor | None:
        masks = tuple(tuple(_mask_of_param(owners.get(id(p), []))) for p in flat.params)
        versions = tuple(tuple(m._version for m in ms) for ms in masks)
        hit = self._cache.get(id(flat))
        if (hit is None or len(hit[0]) != len(masks) or hit[1] != versions
                or any(len(a) != len(b) or any(x is not y for x, y in zip(a, b)) for a, b in zip(hit[0], masks))):
            keep: Tensor | None = None
            if any(masks):
                keep = torch.ones_like(flat.tensor, requires_grad=False)
                for i, ms in enumerate(masks):
                    if ms:
                        flat.view_of(i, keep).copy_(_intersection(ms))
            hit = (masks, versions, keep)
            self._cache[id(flat)] = hit
        return hit[2]


def enforce_masks(model: nn.Module, optimizer: torch.optim.Optimizer, *, gradients: bool = False) -> Handles:
    """Re-zero masked entries after every ``optimizer.step()``; returns the hooks' :class:`Handles`.

    Masked entries are exactly zero after any number of steps of any optimizer (momentum or
    weight decay cannot revive them), and their optimizer state (momenta) is zeroed too. Masks set,
    replaced or edited in place after this call are honoured: the buffer is looked up at every step.
    A parameter shared by several modules keeps the entries pruned by any of them. An optimizer over
    a :class:`~sciprune.core._flat.FlatParameters` buffer is served by one factor laid out like the
    buffer (its parameters' masks side by side), so the buffer and its moments take one multiply each.

    The hook multiplies by a cached floating-point copy of each mask (``x * 0 == 0`` exactly), which
    is far cheaper per step than a boolean ``masked_fill_``; the copy is rebuilt whenever the mask
    tensor is replaced or its version counter shows an in-place change.

    ``gradients=True`` also masks the gradients as they are accumulated (:func:`mask_gradients`),
    so gradient clipping, L-BFGS and gradient-based criteria see zeros at pruned entries; the
    handle then removes both hooks.
    """
    owners = _owners(model)
    cache, flat_cache = _FloatMasks(), _FlatFloatMasks()

    @torch.no_grad()
    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        targets: list[Tensor] = []
        factors: list[Tensor] = []
        for group in opt.param_groups:
            for p in group["params"]:
                flat = flat_of(p)
                if flat is not None:  # one factor for the whole buffer (its parameters' masks, laid out flat)
                    found = flat_cache.get(flat, owners)
                    if found is None:
                        continue
                    keep = found
                else:
                    masks = _mask_of_param(owners.get(id(p), []))
                    if not masks:
                        continue
                    keep = cache.get(p, masks)
                targets.append(p)
                factors.append(keep)
                for value in opt.state.get(p, {}).values():
                    if isinstance(value, Tensor) and value.shape == p.shape and value.is_floating_point():
                        targets.append(value)
                        factors.append(keep if value.dtype == keep.dtype else keep.to(value.dtype))
        if targets:
            torch._foreach_mul_(targets, factors)  # one fused call for every masked tensor

    handles = Handles([optimizer.register_step_post_hook(hook)])
    if gradients:
        handles.handles.extend(mask_gradients(model).handles)
    return handles


class Handles:
    """Removes a list of hook handles at once."""

    def __init__(self, handles: list[RemovableHandle]) -> None:
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def mask_gradients(model: nn.Module) -> Handles:
    """Zero the gradient of every masked entry as soon as it is accumulated (defect D3).

    One ``register_post_accumulate_grad_hook`` per parameter multiplies ``p.grad`` by the float
    mask (looked up at each backward, so masks set later are honoured). Use it with gradient
    clipping, L-BFGS, or any criterion that reads gradients; plain first-order training does not
    need it (:func:`enforce_masks` already re-zeroes weights and moments). Cost: see
    ``benchmarks/bench_masks.py``. Returns an object whose ``remove()`` drops the hooks.
    """
    owners = _owners(model)
    cache = _FloatMasks()
    handles = []
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        who = owners.get(id(p), [])

        def hook(param: Tensor, who: list[tuple[nn.Module, str]] = who) -> None:
            masks = _mask_of_param(who)
            if masks and param.grad is not None:
                with torch.no_grad():
                    param.grad.mul_(cache.get(param, masks))

        handles.append(p.register_post_accumulate_grad_hook(hook))
    return Handles(handles)


def _register_masks_from(model: nn.Module, state_dict: dict[str, Tensor]) -> None:
    for key, value in state_dict.items():
        if not key.endswith(MASK_SUFFIX):
            continue
        name = key[: -len(MASK_SUFFIX)]
        module, local = _owner(model, name)
        param: Tensor = getattr(module, local)
        module.register_buffer(local + MASK_SUFFIX, value.to(device=param.device, dtype=torch.bool).clone())


def load_state_dict(model: nn.Module, state_dict: dict[str, Tensor], *, strict: bool = True) -> None:
    """Load a state dict that may carry masks into ``model`` (masked or not) and enforce them.

    A state dict written by ``torch.nn.utils.prune`` (``weight_orig`` + ``weight_mask``) is
    accepted too: ``weight_orig`` becomes the weight and ``weight_mask`` its sciprune mask.
    """
    sd = dict(state_dict)
    for key in [k for k in sd if k.endswith("_orig")]:
        sd[key[: -len("_orig")]] = sd.pop(key)
    for name in [k for k, _, _ in iter_masks(model)]:
        if name + MASK_SUFFIX not in sd:  # the model has a mask the state dict does not: drop it
            module, local = _owner(model, name)
            delattr(module, local + MASK_SUFFIX)
    _register_masks_from(model, sd)
    model.load_state_dict(sd, strict=strict)
    apply_masks(model)


def import_torch_prune(model: nn.Module) -> dict[str, Tensor]:
    """Convert a model pruned with ``torch.nn.utils.prune`` to sciprune masks, in place.

    Every ``<name>_orig`` / ``<name>_mask`` pair becomes a plain parameter ``<name>`` with a
    sciprune mask; the forward pre-hooks are removed. Returns the imported masks.
    """
    from torch.nn.utils import prune

    imported: dict[str, Tensor] = {}
    for mod_name, module in list(model.named_modules()):
        hooks = [h for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
        for hook in hooks:
            names = [m._tensor_name for m in hook] if isinstance(hook, prune.PruningContainer) else [hook._tensor_name]
            for local in dict.fromkeys(names):
                mask = getattr(module, local + MASK_SUFFIX).detach().clone().to(torch.bool)
                prune.remove(module, local)
                full = f"{mod_name}.{local}" if mod_name else local
                set_mask(model, full, mask)
                imported[full] = mask
    return imported
