import json
import pickle

import pytest
import torch

from sciprune.core import (
    get_masks, load_checkpoint, load_model, load_state, prune, save_checkpoint, save_state, torch_load,
)
from sciprune.errors import InputError


class Opaque:  # a class no allowlist knows: loading it would run arbitrary code
    pass


def test_safetensors_round_trip_with_masks(mlp, tmp_path, gen):
    prune(mlp, 0.6)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, mlp, meta={"note": "x"})
    back = load_model(path)
    x = torch.randn(3, 5, generator=gen)
    assert torch.equal(back(x), mlp(x))
    assert get_masks(back).keys() == get_masks(mlp).keys()
    assert load_checkpoint(path).meta["note"] == "x"


def test_truncated_checkpoint_is_one_clear_error(mlp, tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, mlp)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_model(path)


def test_truncated_torch_file(tmp_path):
    path = tmp_path / "s.pt"
    save_state(path, {"a": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError, match="corrupt"):
        load_state(path)


def test_pickle_with_objects_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Opaque()}, path)
    with pytest.raises(InputError, match="refusing to load it.*--trust-pickle"):
        torch_load(path)
    assert isinstance(torch_load(path, trust_pickle=True)["obj"], Opaque)


def test_legacy_pickle_and_garbage(tmp_path):
    path = tmp_path / "legacy.pkl"
    path.write_bytes(pickle.dumps({"obj": Opaque()}))
    with pytest.raises(InputError, match="refusing|corrupt"):
        load_checkpoint(path)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(InputError, match="neither a safetensors nor a torch file"):
        load_checkpoint(junk)
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_plain_state_dict_file(mlp, tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(mlp.state_dict(), path)
    assert set(load_checkpoint(path).tensors) == set(mlp.state_dict())


def test_a_safetensors_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path) -> None:
    from safetensors.torch import save_file

    from sciprune.core import load_checkpoint

    path = tmp_path / "m.safetensors"
    for pad in range(300):  # find metadata whose header length has low byte 0x80 (a pickle's magic)
        save_file({"w": torch.zeros(2)}, str(path), metadata={"sciprune": json.dumps({"pad": "x" * pad})})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    ckpt = load_checkpoint(path)
    assert ckpt.format == "safetensors" and ckpt.meta["pad"].startswith("x")


def test_an_unregistered_family_is_one_clear_error(tmp_path) -> None:
    from safetensors.torch import save_file

    from sciprune.core import load_model

    path = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"sciprune": json.dumps({"arch": {"class": "Nope"}})})
    with pytest.raises(InputError, match=r"unknown network family 'Nope'; registered families are .*MLP.*StackedMLP"):
        load_model(path)


def test_a_module_held_under_two_names_round_trips(tmp_path):
    """A CNF holds its field twice (``field`` and ``dynamics.field``): the state dict names each tensor
    twice, which safetensors refuses as shared memory unless each name is written as a copy."""
    from sciprune.core import torch_generator
    from sciprune.nn.mlp import MLP
    from sciprune.nn.ode import CNF, Autonomous, Solver

    cnf = CNF(Autonomous(MLP([2, 5, 2], "tanh", generator=torch_generator(0, "f"))),
              Solver("rk4", steps=2, adjoint=False), trace="exact")
    prune(cnf, 0.5)
    path = tmp_path / "cnf.safetensors"
    save_checkpoint(path, cnf)
    back = load_model(path)
    assert back.dynamics.field is back.field and get_masks(back).keys() == get_masks(cnf).keys()
    x = torch.randn(6, 2, generator=torch_generator(1, "x"))
    with torch.no_grad():
        assert torch.equal(back.log_prob(x, generator=None), cnf.log_prob(x, generator=None))
