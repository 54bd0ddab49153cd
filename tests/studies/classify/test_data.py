import gzip

import numpy as np
import pytest
import torch

from sciprune.errors import InputError
from sciprune.files import read_csv
from sciprune.studies.classify.data import load_digits_split, load_idx_folder, read_idx
from tests.runner.helpers import cli


def _idx(array: np.ndarray) -> bytes:
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, *, n_train=60, n_test=30, gz=("train-images-idx3-ubyte",), seed=0):
    """A small MNIST-format folder: labels follow a simple rule on the pixels, so it is learnable."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, y in enumerate(labels):
            images[i, 2 * y : 2 * y + 3, :] = 250  # a bright band whose row encodes the label
        files[f"{part}-images-idx3-ubyte"] = _idx(images)
        files[f"{part}-labels-idx1-ubyte"] = _idx(labels)
    for name, data in files.items():
        if name in gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return files


def test_idx_folder_plain_and_gzipped(tmp_path):
    files = write_mnist(tmp_path / "m", gz=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    split = load_idx_folder(tmp_path / "m")
    assert split.x_train.shape == (60, 784) and split.x_test.shape == (30, 784)
    assert split.x_train.dtype == torch.float32 and float(split.x_train.max()) == pytest.approx(250 / 255)
    raw = np.frombuffer(files["train-labels-idx1-ubyte"][8:], dtype=np.uint8)
    assert split.y_train.tolist() == raw.tolist()
    assert load_idx_folder(tmp_path / "m", limit_train=10).x_train.shape == (10, 784)


def test_idx_errors_name_the_file_and_the_expectation(tmp_path):
    write_mnist(tmp_path / "m", gz=())
    path = tmp_path / "m" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte' holds 984 values; its header promises 23520"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x07" + b"\x00" * 20)
    with pytest.raises(InputError, match="magic number 2055; expected 2049 .* or 2051"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(InputError, match="truncated"):
        read_idx(path)
    with pytest.raises(InputError, match="does not exist"):
        load_idx_folder(tmp_path / "nowhere")


def test_digits_split_is_seeded_and_disjoint():
    a, b = load_digits_split(seed=0), load_digits_split(seed=0)
    assert torch.equal(a.x_test, b.x_test)
    assert len(a.y_train) + len(a.y_test) == 1797
    c = load_digits_split(seed=1)
    assert not torch.equal(a.x_test, c.x_test)


def test_classify_runs_on_mnist_format_files(capsys, monkeypatch, tmp_path):
    write_mnist(tmp_path / "fmnist", n_train=200, n_test=50)
    out = tmp_path / "run"
    code, _, err = cli(capsys, monkeypatch, "classify", "--preset", "demo", "--dataset", "fashion-mnist",
                       "--data-dir", str(tmp_path / "fmnist"), "--out", str(out), "--quiet",
                       "--set", "repeats=1", "--set", "model.hidden=[16]", "--set", "train.epochs=15",
                       "--set", "prune.sparsities=[0.0, 0.5]", "--set", "prune.retrain_epochs=0",
                       "--set", "prune.id_samples=50", "--set", "timing_batch=16")
    assert code == 0, err
    rows = read_csv(out / "metrics.csv")
    dense = [r for r in rows if r["method"] == "dense"][0]
    assert dense["params_total"] == 784 * 16 + 16 + 16 * 10 + 10
    assert dense["accuracy"] > 50  # the band rule is learnable: far above chance (10 %)
