"""Every bad input: one line on stderr, exit status 2, results on disk untouched."""

import gzip
import re
import hashlib

import pytest
import torch

from sciprune.core import save_checkpoint
from tests.runner.helpers import TINY, cli


def _one_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def _expect_error(capsys, monkeypatch, pattern, *args):
    code, _, err = cli(capsys, monkeypatch, *args)
    assert code == 2, err
    line = _one_line(err)
    assert re.search(pattern, line), line
    return line


def test_malformed_yaml(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: classify\ntrain: {epochs: 3\n")
    _expect_error(capsys, monkeypatch, r"not valid YAML at line \d+", "run", str(bad), "--out", str(tmp_path / "o"))


def test_unknown_field(capsys, monkeypatch, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("study: classify\ntrain: {epochz: 3}\n")
    _expect_error(capsys, monkeypatch, r"unknown field 'train.epochz'", "run", str(cfg), "--out", str(tmp_path / "o"))


def test_unknown_study(capsys, monkeypatch, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("study: regress\n")
    _expect_error(capsys, monkeypatch, r"unknown study 'regress'; expected one of classify", "run", str(cfg))


@pytest.mark.parametrize("value", ["1.0", "-0.2", "1.5"])
def test_sparsity_out_of_range(capsys, monkeypatch, tmp_path, value):
    _expect_error(capsys, monkeypatch, rf"prune.sparsities.*{value}.*\[0, 1\)", "classify", "--out", str(tmp_path / "o"),
                  "--set", f"prune.sparsities=[0.5, {value}]")


def test_unknown_method_lists_valid_ones(capsys, monkeypatch, tmp_path):
    _expect_error(capsys, monkeypatch, r"prune.methods.*'l3'.*expected a method or criterion: .*lamp.*unit, weight", "classify",
                  "--out", str(tmp_path / "o"), "--set", "prune.methods=[l3]")


def test_bad_override_syntax(capsys, monkeypatch, tmp_path):
    _expect_error(capsys, monkeypatch, r"override 'train.epochs' is not of the form field=value", "classify",
                  "--out", str(tmp_path / "o"), "--set", "train.epochs")


def test_missing_data_file(capsys, monkeypatch, tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\0\0\0\0" * 3))
    _expect_error(capsys, monkeypatch, r"missing data file train-labels-idx1-ubyte\[.gz\] in .*mnist",
                  "classify", "--dataset", "mnist", "--data-dir", str(data), "--out", str(tmp_path / "o"))
    _expect_error(capsys, monkeypatch, r"pass --data-dir", "classify", "--dataset", "mnist", "--out", str(tmp_path / "o"))


def test_corrupt_and_pickle_checkpoints(capsys, monkeypatch, tmp_path, mlp):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, mlp)
    code, out, _ = cli(capsys, monkeypatch, "inspect", str(path))
    assert code == 0 and "layers.0.weight" in out
    path.write_bytes(path.read_bytes()[:100])
    _expect_error(capsys, monkeypatch, r"corrupt or truncated", "inspect", str(path))
    evil = tmp_path / "evil.pt"
    torch.save(torch.nn.Linear(2, 2), evil)  # a whole pickled module
    _expect_error(capsys, monkeypatch, r"refusing to load it.*--trust-pickle", "inspect", str(evil))
    code, out, _ = cli(capsys, monkeypatch, "inspect", str(evil), "--trust-pickle")
    assert code == 0 and "weight" in out


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_results_are_never_touched(capsys, monkeypatch, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(capsys, monkeypatch, "classify", "--out", str(out), "--quiet", *TINY)
    assert code == 0, err
    before = _digest(out)
    _expect_error(capsys, monkeypatch, r"already holds a run; pass --resume", "classify", "--out", str(out), *TINY)
    _expect_error(capsys, monkeypatch, r"config differs", "classify", "--out", str(out), "--resume", *TINY,
                  "--set", "train.epochs=4")
    _expect_error(capsys, monkeypatch, r"sparsities", "classify", "--out", str(out), "--resume", *TINY,
                  "--set", "prune.sparsities=[2]")
    assert _digest(out) == before
