"""Classification data: scikit-learn's digits (shipped, no download) and MNIST-format IDX files.

MNIST and Fashion-MNIST are read from the standard IDX files in a user folder, gzipped or not:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sciprune.core import numpy_generator
from sciprune.errors import InputError
from sciprune.validate import input_dir, input_file

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {1: 2049, 3: 2051}  # labels (1-D), images (3-D), unsigned bytes
MAX_IDX_BYTES = 1 << 31  # 2 GiB unpacked: ~40x MNIST


@dataclass(frozen=True)
class Split:
    """Inputs scaled to [0, 1], flattened, float32; integer class labels."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    image_shape: tuple[int, int]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz`` (at most :data:`MAX_IDX_BYTES`)."""
    path = input_file(path, "IDX file", "an MNIST-format IDX file")
    if path.suffix != ".gz":
        if path.stat().st_size > MAX_IDX_BYTES:
            raise InputError(f"IDX file {str(path)!r} is {path.stat().st_size} bytes; expected at most {MAX_IDX_BYTES}")
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"IDX file {str(path)!r} is not a valid gzip file ({' '.join(str(err).split()) or type(err).__name__}); "
                         "expected a gzipped IDX file, or the file without .gz") from None
    if len(raw) > MAX_IDX_BYTES:
        raise InputError(f"IDX file {str(path)!r} unpacks to more than {MAX_IDX_BYTES} bytes; expected an MNIST-sized IDX file")
    return raw


def read_idx(path: Path, *, ndim: int | None = None) -> np.ndarray:
    """An IDX array (unsigned bytes, 1-D labels or 3-D images), gzipped or not; ``ndim`` if given is required."""
    raw = _bytes(path)
    if len(raw) < 8:
        raise InputError(f"IDX file {str(path)!r} is truncated ({len(raw)} bytes); expected a header of at least 8 bytes")
    dims_n = raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if dims_n not in _MAGIC or magic != _MAGIC[dims_n]:
        raise InputError(f"IDX file {str(path)!r} has magic number {magic}; expected 2049 (labels) or 2051 (images)")
    if ndim is not None and dims_n != ndim:
        kind = "labels (1-D, magic 2049)" if ndim == 1 else "images (3-D, magic 2051)"
        raise InputError(f"IDX file {str(path)!r} holds a {dims_n}-D array; expected {kind}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims_n)]
    body = raw[4 + 4 * dims_n :]
    promised = math.prod(dims)  # Python integers: no overflow
    if len(body) != promised:
        shape = "x".join(map(str, dims))
        raise InputError(f"IDX file {str(path)!r} holds {len(body)} values; its header promises {promised} ({shape}; truncated?)")
    if promised == 0:
        raise InputError(f"IDX file {str(path)!r} has dimensions {dims}: no data; expected at least one image / label")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(
        f"missing data file {stem}[.gz] in {str(folder)!r}; expected the four standard IDX files "
        f"({', '.join(IDX_FILES.values())}, optionally gzipped) — sciprune does not download data"
    )


def load_idx_folder(folder: str | Path, *, limit_train: int | None = None) -> Split:
    """MNIST / Fashion-MNIST from ``folder`` (the four standard IDX files), checked against each other."""
    folder = input_dir(folder, "data directory", "a folder with the MNIST IDX files")
    paths = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}  # all four present before any is read
    arrays = {key: read_idx(path, ndim=1 if key.endswith("labels") else 3) for key, path in paths.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise InputError(f"{part} images and labels in {str(folder)!r} differ in count: "
                             f"{len(arrays[f'{part}_images'])} vs {len(arrays[f'{part}_labels'])}")
    xtr, ytr = arrays["train_images"], arrays["train_labels"]
    if xtr.shape[1:] != arrays["test_images"].shape[1:]:
        raise InputError(f"images in {str(folder)!r} differ in size: training {xtr.shape[1]}x{xtr.shape[2]}, test "
                         f"{arrays['test_images'].shape[1]}x{arrays['test_images'].shape[2]}; expected one image size")
    if limit_train is not None:
        xtr, ytr = xtr[:limit_train], ytr[:limit_train]
    shape = (int(xtr.shape[1]), int(xtr.shape[2]))
    return Split(_images(xtr), torch.as_tensor(ytr.astype(np.int64)),
                 _images(arrays["test_images"]), torch.as_tensor(arrays["test_labels"].astype(np.int64)), shape)


def _images(a: np.ndarray) -> Tensor:
    return torch.as_tensor(a.reshape(len(a), -1).astype(np.float32) / 255.0)


def load_digits_split(*, seed: int, test_fraction: float = 0.25) -> Split:
    """scikit-learn's 8×8 digits (1 797 images, shipped with the package), split by ``seed``."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = numpy_generator(seed, "digits-split").permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    xs = torch.as_tensor(x.astype(np.float32) / 16.0)
    ys = torch.as_tensor(y, dtype=torch.long)
    return Split(xs[train], ys[train], xs[test], ys[test], (8, 8))


def load_data(name: str, *, data_dir: str | None, seed: int, test_fraction: float, limit_train: int | None) -> Split:
    """The data set ``name``: ``digits``, ``mnist`` or ``fashion-mnist`` (the latter two from ``data_dir``)."""
    if name == "digits":
        return load_digits_split(seed=seed, test_fraction=test_fraction)
    if data_dir is None:
        raise InputError(f"data set {name!r} is read from IDX files: pass --data-dir FOLDER (sciprune does not download data)")
    return load_idx_folder(data_dir, limit_train=limit_train)
