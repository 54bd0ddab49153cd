"""Classification data: scikit-learn's digits (shipped, no download) and MNIST-format IDX files.

MNIST and Fashion-MNIST are read from the standard IDX files in a user folder, gzipped or not:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sciprune.core.seeding import numpy_generator
from sciprune.errors import InputError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {1: 2049, 3: 2051}  # labels (1-D), images (3-D), unsigned bytes


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


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (unsigned bytes, 1-D labels or 3-D images), gzipped or not."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 8:
        raise InputError(f"IDX file {str(path)!r} is truncated ({len(raw)} bytes); expected a header of at least 8 bytes")
    ndim = raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if ndim not in _MAGIC or magic != _MAGIC[ndim]:
        raise InputError(f"IDX file {str(path)!r} has magic number {magic}; expected 2049 (labels) or 2051 (images)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise InputError(f"IDX file {str(path)!r} holds {len(body)} values; its header promises {int(np.prod(dims))} (truncated?)")
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
    """MNIST / Fashion-MNIST from ``folder`` (the four standard IDX files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data directory {str(folder)!r} does not exist; expected a folder with the MNIST IDX files")
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise InputError(f"{part} images and labels in {str(folder)!r} differ in count: "
                             f"{len(arrays[f'{part}_images'])} vs {len(arrays[f'{part}_labels'])}")
    xtr, ytr = arrays["train_images"], arrays["train_labels"]
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
