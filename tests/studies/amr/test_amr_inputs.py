"""INR sources (sciprune, PruningAMR format, hos) and every bad input of the issue: one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sciprune.errors import InputError
from sciprune.nn.mlp import MLP
from sciprune.runner.config import validate
from sciprune.studies.amr.inr import load_inr_file, load_mlp, resolve_inr, save_mlp


def _legacy(path: Path, acts: list[nn.Module] | None = None, **extra: object) -> Path:
    gen = torch.Generator().manual_seed(0)
    sizes = [2, 8, 8, 1]
    weights = nn.ParameterList([nn.Parameter(torch.randn(o, i, generator=gen)) for i, o in zip(sizes, sizes[1:])])
    biases = nn.ParameterList([nn.Parameter(torch.randn(o, generator=gen)) for o in sizes[1:]])
    acts = acts if acts is not None else [nn.Tanh(), nn.ReLU(), nn.Identity()]
    torch.save({"weights_list": weights, "bias_list": biases, "act_list": nn.ModuleList(acts),
                "gauss": torch.empty(0), **extra}, path)
    return path


class NotAnINR:
    def __init__(self) -> None:
        self.payload = 1


def test_sciprune_checkpoint_round_trip(tmp_path: Path) -> None:
    mlp = MLP([2, 6, 1], "tanh", generator=torch.Generator().manual_seed(0))
    save_mlp(tmp_path / "m.safetensors", mlp, meta={"inr": {"default_mesh": "square:3"}})
    loaded, meta = load_mlp(tmp_path / "m.safetensors")
    x = torch.rand(10, 2)
    torch.testing.assert_close(loaded(x), mlp(x), rtol=0, atol=0)
    inr = load_inr_file(tmp_path / "m.safetensors")
    assert inr.default_mesh == "square:3" and inr.n_params == 25
    torch.testing.assert_close(inr(x.double()), mlp.double()(x.double()))


def test_pruningamr_checkpoint_loads_and_evaluates(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "legacy.ckpt")
    inr = load_inr_file(path)
    raw = torch.load(path, weights_only=False)
    x = torch.rand(7, 2, dtype=torch.float64)
    h = x
    for w, b, act in zip(raw["weights_list"], raw["bias_list"], raw["act_list"]):
        h = act(h @ w.double().T + b.double())
    torch.testing.assert_close(inr(x), h.detach())
    assert inr.mlp.activations == ["tanh", "relu", "identity"]


def test_hos_checkpoint_reproduces_its_network(hos_path: Path) -> None:
    inr = resolve_inr("hos")
    assert inr.mlp.sizes == [2, 32, 32, 32, 32, 1] and inr.n_params == 3297
    assert inr.mlp.activations == ["relu"] * 4 + ["identity"]
    raw = torch.load(hos_path, weights_only=False)  # the trusted anchor, as a cross-check only
    x = torch.rand(100, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = x.float()
    for w, b, act in zip(raw["weights_list"], raw["bias_list"], raw["act_list"]):
        h = act(h @ w.T + b)
    torch.testing.assert_close(inr(x).float(), h.detach(), rtol=1e-5, atol=1e-6)
    # the field the spec describes: sin(1/r)-like rings at the origin, smooth elsewhere
    corner_far = inr(torch.tensor([[1.0, 1.0]], dtype=torch.float64)).item()
    assert corner_far == pytest.approx(0.644, abs=0.01)


# ---------------------------------------------------------------------------------------------- bad input
def _one_line(err: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_unknown_activation_in_a_pruningamr_checkpoint(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "leaky.ckpt", acts=[nn.LeakyReLU(), nn.ReLU(), nn.Identity()])
    with pytest.raises(InputError, match=r"unknown activation 'LeakyReLU' in act_list\[0\]; expected one of") as err:
        load_inr_file(path)
    _one_line(err)


def test_a_pickle_that_is_not_an_allowlisted_inr_is_refused(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "evil.ckpt", extra=NotAnINR())
    with pytest.raises(InputError, match="is not an allowlisted INR pickle") as err:
        load_inr_file(path)
    _one_line(err)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    with pytest.raises(InputError, match="expected a PruningAMR dict with weights_list"):
        load_inr_file(tmp_path / "other.ckpt")


def test_missing_and_foreign_inr_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; expected corner, front, spacetime, hos or a checkpoint"):
        resolve_inr(str(tmp_path / "nope.ckpt"))
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="neither a safetensors nor a torch file"):
        resolve_inr(str(tmp_path / "junk.bin"))


@pytest.mark.mfem
def test_missing_and_malformed_mesh_files(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mfem.ser")
    from sciprune.studies.amr.meshing import load_mesh

    with pytest.raises(InputError, match="does not exist; expected an MFEM mesh file") as err:
        load_mesh(str(tmp_path / "none.mesh"))
    _one_line(err)
    bad = tmp_path / "bad.mesh"
    bad.write_text("MFEM mesh v1.0\ndimension\n2\nelements\n1\n1 3 0 1 2 3\n")
    with pytest.raises(InputError, match="could not be read: Verification failed|ends where the section 'boundary'") as err:
        load_mesh(str(bad))
    _one_line(err)
    bad.write_text("garbage\n")
    with pytest.raises(InputError, match="Unknown input mesh format"):
        load_mesh(str(bad))
    tri = tmp_path / "tri.mesh"
    tri.write_text("MFEM mesh v1.0\n\ndimension\n2\n\nelements\n1\n1 2 0 1 2\n\nboundary\n0\n\nvertices\n3\n2\n0 0\n1 0\n0 1\n")
    with pytest.raises(InputError, match="expected an all-quad"):
        load_mesh(str(tri))
    assert capfd.readouterr().err == ""  # MFEM's own abort messages do not leak to stderr


@pytest.mark.mfem
def test_inr_input_dimension_must_match_the_mesh(tmp_path: Path) -> None:
    pytest.importorskip("mfem.ser")
    from tests.studies.amr.conftest import run_study

    with pytest.raises(InputError, match=r"takes 2 inputs but mesh 'cube' is 3-D; expected an INR with 3 inputs \(or 4"):
        run_study(tmp_path, inr="corner", mesh="cube")


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("threshold", 0.0, "greater than 0"),
        ("threshold", float("inf"), "finite"),
        ("prop_threshold", 1.5, "less than or equal to 1"),
        ("prop_threshold", -0.1, "greater than or equal to 0"),
        ("epsilon", 1.0, "less than 1"),
        ("epsilon", 0.0, "greater than 0"),
        ("id_samples", 1, "greater than or equal to 2"),
        ("max_dofs", 0, "greater than or equal to 1"),
        ("mode", "adaptive", "'pruning', 'basic' or 'uniform'"),
        ("inr", " ", "built-in INR name"),
    ],
)
def test_out_of_range_parameters(field: str, value: object, expect: str) -> None:
    with pytest.raises(InputError, match=field) as err:
        validate({"study": "amr", field: value})
    assert expect in _one_line(err)


def test_max_it_below_num_uniform_ref() -> None:
    with pytest.raises(InputError, match="max_it=1 is smaller than num_uniform_ref=2; expected max_it >= num_uniform_ref"):
        validate({"study": "amr", "max_it": 1})
    with pytest.raises(InputError, match="unknown field 'max_iterations'"):
        validate({"study": "amr", "max_iterations": 3})


def _unused_cases() -> list[tuple[dict[str, object], str]]:
    """One non-default value of every mode-dependent field, in a mode that does not read it."""
    return [
        ({"epsilon": 1e-6}, "epsilon=1e-06 needs mode=pruning, or mode=bulk with indicator=excess"),
        ({"mode": "basic", "epsilon": 1e-6}, "got mode=basic"),
        ({"indicator": "residual", "epsilon": 1e-6}, "got mode=bulk, indicator=residual"),
        ({"mode": "pruning", "fraction": 0.3}, "fraction=0.3 needs mode=bulk"),
        ({"mode": "basic", "indicator": "kept"}, "indicator=kept needs mode=bulk"),
        ({"mode": "uniform", "tolerance": 0.1}, "tolerance=0.1 needs mode=bulk"),
        ({"indicator": "excess", "surrogate_epsilon": 1e-6}, "surrogate_epsilon=1e-06 needs mode=bulk with indicator=interpolation"),
        ({"id_samples": 64}, "id_samples=64 needs mode=pruning"),
        ({"mode": "basic", "id_samples": 64}, "id_samples=64"),
        ({"indicator": "kept", "error_samples": 64}, "error_samples=64 needs mode=pruning, basic, or bulk"),
        ({"mode": "uniform", "error_samples": 64}, "error_samples=64"),
        ({"threshold": 0.1}, "threshold=0.1 needs mode=pruning or basic"),
        ({"mode": "basic", "prop_threshold": 0.5}, "prop_threshold=0.5 needs mode=pruning"),
        ({"error_offset": 1.0}, "error_offset=1.0 needs mode=pruning or basic"),
    ]


@pytest.mark.parametrize("fields, message", _unused_cases())
def test_a_field_the_mode_does_not_read_is_refused(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from sciprune.studies.amr.config import AMRConfig

    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AMRConfig(**fields)  # type: ignore[arg-type]


def test_every_field_is_accepted_where_it_is_read() -> None:
    """The same values are accepted in a mode that reads them (and the defaults everywhere)."""
    from sciprune.studies.amr.config import USED_BY, AMRConfig

    for mode in ("bulk", "pruning", "basic", "uniform"):
        AMRConfig(mode=mode)
    AMRConfig(mode="pruning", epsilon=1e-6, id_samples=64, error_samples=64, threshold=0.1, prop_threshold=0.5,
              error_offset=1.0, baseline_max_dofs=10)
    AMRConfig(indicator="excess", epsilon=1e-6, id_samples=64, fraction=0.3, tolerance=0.1)
    AMRConfig(surrogate_epsilon=1e-6, id_samples=64, error_samples=64)
    AMRConfig(mode="basic", threshold=0.1, error_offset=1.0, error_samples=64)
    assert set(USED_BY) <= set(AMRConfig.model_fields)
