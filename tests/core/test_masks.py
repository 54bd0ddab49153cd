import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from sciprune.core import (
    apply_masks, enforce_masks, get_masks, import_torch_prune, load_state_dict, prune, remove_masks, set_mask,
)
from sciprune.errors import InputError
from sciprune.nn.mlp import MLP


def _train(model, steps, gen, weight_decay=0.1):
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=weight_decay)
    enforce_masks(model, opt)
    x = torch.randn(64, model.sizes[0], generator=gen)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return opt


def test_sparsity_is_exact_and_persists_through_adam(mlp, gen):
    prune(mlp, 0.7, criterion="magnitude")
    zeros_before = {n: int((p == 0).sum()) for n, p in mlp.named_parameters() if n.endswith("weight")}
    assert zeros_before["layers.0.weight"] == round(0.7 * 60)
    opt = _train(mlp, 200, gen)
    for name, mask in get_masks(mlp).items():
        param = mlp.get_parameter(name)
        assert torch.all(param[~mask] == 0), name  # exactly zero, none revived
        assert int((param == 0).sum()) == int((~mask).sum())
        state = opt.state[param]
        assert torch.all(state["exp_avg"][~mask] == 0)


def test_masks_survive_deepcopy_and_state_dict(mlp, gen):
    prune(mlp, 0.5, criterion="neuron_l2")
    twin = copy.deepcopy(mlp)
    assert get_masks(twin).keys() == get_masks(mlp).keys()
    fresh = MLP(mlp.sizes, mlp.activations, generator=None)
    load_state_dict(fresh, mlp.state_dict())
    x = torch.randn(7, 5, generator=gen)
    assert torch.equal(fresh(x), mlp(x))
    assert all(torch.equal(get_masks(fresh)[k], v) for k, v in get_masks(mlp).items())


def test_loading_enforces_masks_on_dirty_weights(mlp):
    prune(mlp, 0.5)
    sd = {k: v.clone() for k, v in mlp.state_dict().items()}
    sd["layers.0.weight"] += 1.0  # someone edited the file: masked entries are non-zero now
    fresh = MLP(mlp.sizes, mlp.activations, generator=None)
    load_state_dict(fresh, sd)
    mask = get_masks(fresh)["layers.0.weight"]
    assert torch.all(fresh.layers[0].weight[~mask] == 0)


def test_new_mask_never_revives(mlp):
    first = torch.zeros(12, 5, dtype=torch.bool)
    first[:, 0] = True
    set_mask(mlp, "layers.0.weight", first)
    set_mask(mlp, "layers.0.weight", torch.ones(12, 5, dtype=torch.bool))
    assert torch.equal(get_masks(mlp)["layers.0.weight"], first)


def test_remove_masks_keeps_zeros_and_plain_state_dict(mlp):
    prune(mlp, 0.5)
    remove_masks(mlp)
    assert get_masks(mlp) == {}
    MLP(mlp.sizes, mlp.activations, generator=None).load_state_dict(mlp.state_dict())  # strict, plain keys
    assert int((mlp.layers[0].weight == 0).sum()) == 30


def test_import_from_torch_nn_utils_prune(mlp, gen):
    torch_prune.l1_unstructured(mlp.layers[0], "weight", amount=0.4)
    torch_prune.l1_unstructured(mlp.layers[0], "weight", amount=0.2)  # a PruningContainer
    x = torch.randn(4, 5, generator=gen)
    before = mlp(x)
    expected = mlp.layers[0].weight_mask.clone().bool()
    imported = import_torch_prune(mlp)
    assert list(imported) == ["layers.0.weight"]
    assert torch.equal(imported["layers.0.weight"], expected)
    assert not mlp.layers[0]._forward_pre_hooks
    assert torch.equal(mlp(x), before)
    copy.deepcopy(mlp)  # torch's re-parametrisation cannot be deep-copied; ours can


def test_torch_prune_state_dict_loads(mlp):
    torch_prune.l1_unstructured(mlp.layers[1], "weight", amount=0.5)
    sd = mlp.state_dict()
    assert "layers.1.weight_orig" in sd
    fresh = MLP(mlp.sizes, mlp.activations, generator=None)
    load_state_dict(fresh, sd)
    assert int((~get_masks(fresh)["layers.1.weight"]).sum()) == 60


def test_bad_mask_shape_and_name(mlp):
    with pytest.raises(InputError, match="shape"):
        set_mask(mlp, "layers.0.weight", torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(InputError, match="no parameter 'layers.9.weight'"):
        set_mask(mlp, "layers.9.weight", torch.ones(3, 3, dtype=torch.bool))


def test_apply_masks_idempotent(mlp):
    prune(mlp, 0.3)
    w = mlp.layers[0].weight.detach().clone()
    apply_masks(mlp)
    apply_masks(mlp)
    assert torch.equal(w, mlp.layers[0].weight)


def test_loaded_masks_live_on_the_parameters_device():
    """A state dict read on the CPU loads into a model on another device: its masks follow the parameters
    (the ``meta`` device stands in for a GPU; before the fix the masks stayed on the CPU)."""
    src = nn.Linear(3, 2)
    set_mask(src, "weight", torch.tensor([[True, False, True], [False, True, True]]))
    dst = nn.Linear(3, 2, device="meta")
    with pytest.warns(UserWarning, match="meta parameter"):  # torch: copying into meta is a no-op
        load_state_dict(dst, src.state_dict())
    assert dst.weight_mask.device.type == "meta" and dst.weight_mask.dtype == torch.bool
