"""Property-based fuzzing of the input readers: whatever the bytes, only InputError escapes.

Covers the config loader (YAML text, then the validated study config), the IDX reader, the mesh
checker + MFEM reader, and the checkpoint readers (``inspect`` and the AMR INR loader). Inputs are
random mutations of valid files (so the fuzzing reaches past the first header check) and raw bytes.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciprune.errors import InputError
from sciprune.runner.config import load_preset, validate
from sciprune.validate import load_yaml

FAST = settings(max_examples=int(os.environ.get("SCIPRUNE_FUZZ_EXAMPLES", "60")), deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _only_input_errors(fn, *args) -> None:
    try:
        fn(*args)
    except InputError as err:
        assert "\n" not in str(err) and str(err)


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` with a few bytes flipped, inserted, deleted or the tail cut."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        else:
            del data[i:]
    return bytes(data)


_FOLDER = tempfile.TemporaryDirectory(prefix="sciprune-fuzz-")  # one for the module, removed at exit


def _file(data: bytes, name: str) -> Path:
    """``data`` as the file ``name`` in the module's one temporary folder (each example overwrites it)."""
    path = Path(_FOLDER.name) / name
    path.write_bytes(data)
    return path


# -- configs ------------------------------------------------------------------------------------------
PRESET = yaml.safe_dump(load_preset("classify", "demo")).encode()
AMR_PRESET = yaml.safe_dump(load_preset("amr", "demo")).encode()


def _load_and_validate(text: str) -> None:
    data = load_yaml(text, "fuzzed config")
    if isinstance(data, dict):
        validate(data)


@FAST
@given(st.one_of(mutated(PRESET), mutated(AMR_PRESET), st.binary(max_size=300)))
def test_config_loader(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    _only_input_errors(_load_and_validate, text)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=12)


@FAST
@given(st.sampled_from(["classify", "amr"]), st.lists(st.tuples(st.sampled_from(
    ["seed", "repeats", "train", "train.epochs", "train.lr", "model.hidden", "prune.sparsities", "prune.methods",
     "data.name", "data.data_dir", "timing_batch", "max_it", "threshold", "mesh", "inr", "mode", "rmse_points", "bogus"]),
    _values), max_size=4))
def test_config_validation_of_any_values(study: str, changes: list) -> None:
    config = load_preset(study, "demo")
    for key, value in changes:
        node = config
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else {}
        node[last] = value
    _only_input_errors(validate, config)


# -- IDX ----------------------------------------------------------------------------------------------
def _idx(dims: list[int]) -> bytes:
    magic = 2049 if len(dims) == 1 else 2051
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(int(np.prod(dims)))


@FAST
@given(st.one_of(mutated(_idx([5, 3, 3])), mutated(_idx([7])), st.binary(max_size=64)), st.booleans())
def test_idx_reader(data: bytes, gz: bool) -> None:
    import gzip

    from sciprune.studies.classify.data import read_idx

    if gz:
        data = gzip.compress(data) if data[:1] != b"\x00" else data  # sometimes a valid gzip, sometimes not
    path = _file(data, "train-images-idx3-ubyte" + (".gz" if gz else ""))
    _only_input_errors(read_idx, path)


# -- meshes -------------------------------------------------------------------------------------------
QUAD = (b"MFEM mesh v1.0\n\ndimension\n2\n\nelements\n2\n1 3 0 1 4 3\n1 3 1 2 5 4\n\nboundary\n2\n1 1 0 1\n1 1 1 2\n\n"
        b"vertices\n6\n2\n0 0\n1 0\n2 0\n0 1\n1 1\n2 1\n")


@pytest.mark.mfem
@FAST
@given(mutated(QUAD))
def test_mesh_reader(data: bytes) -> None:
    pytest.importorskip("mfem.ser")
    from sciprune.studies.amr.meshing import load_mesh

    path = _file(data, "fuzz.mesh")
    _only_input_errors(load_mesh, str(path))


# -- checkpoints --------------------------------------------------------------------------------------
def _good_checkpoint() -> bytes:
    from sciprune.core import save_checkpoint
    from sciprune.core import torch_generator
    from sciprune.nn.mlp import MLP

    path = _file(b"", "good.safetensors")
    save_checkpoint(path, MLP([2, 4, 1], "relu", generator=torch_generator(0, "fuzz")))
    return path.read_bytes()


GOOD = _good_checkpoint()


@FAST
@given(st.one_of(mutated(GOOD), st.binary(max_size=200)), st.sampled_from(["m.safetensors", "m.pt", "m.ckpt"]))
def test_checkpoint_readers(data: bytes, name: str) -> None:
    from sciprune.runner.inspect import describe_checkpoint
    from sciprune.studies.amr.inr import load_inr_file

    path = _file(data, name)
    _only_input_errors(describe_checkpoint, path)
    _only_input_errors(load_inr_file, path)
