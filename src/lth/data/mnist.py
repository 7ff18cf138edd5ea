"""MNIST from the four IDX files of LeCun's distribution (plain or gzipped); nothing is downloaded.

IDX layout (big-endian): int32 magic (2051 images / 2049 labels), one int32 per dimension, then
the uint8 payload. Every size is checked against the header so a truncated download is reported
with the file's name instead of failing later inside training.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .loader import TensorDataset

# MNIST's own training-set statistics, as in the LTH papers' code (open_lth datasets/mnist.py).
MEAN, STD = 0.1307, 0.3081

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
LAYOUT = ("pass --data-root DIR containing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
          "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (or DIR/MNIST/raw/ with them)")


def find_file(root: Path, name: str) -> Path:
    # torchvision keeps the files in MNIST/raw/; Kaggle copies spell 'idx3-ubyte' as '.idx3-ubyte'.
    spellings = (name, name.replace("-idx", ".idx"))
    for directory in (root, root / "MNIST" / "raw"):
        for spelling in spellings:
            for suffix in ("", ".gz"):
                path = directory / (spelling + suffix)
                if path.is_file():
                    return path
    raise DataError(f"MNIST file {name}[.gz] not found in {root}; {LAYOUT}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut .gz is an EOFError
        raise DataError(f"cannot read MNIST file {path} ({exc}); {LAYOUT}") from None


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file whose header must carry `magic` and `ndim` dimensions."""
    raw = _read_bytes(path)
    header_size = 4 * (1 + ndim)
    if len(raw) < header_size:
        raise DataError(f"MNIST file {path} is truncated: {len(raw)} bytes, shorter than its IDX header; {LAYOUT}")
    header = np.frombuffer(raw, dtype=">i4", count=1 + ndim)
    if int(header[0]) != magic:
        raise DataError(f"MNIST file {path} has magic number {int(header[0])}, expected {magic} "
                        f"(IDX uint8 with {ndim} dimension(s)); {LAYOUT}")
    shape = tuple(int(d) for d in header[1:])
    expected = header_size + math.prod(shape)  # (exact: a forged header cannot overflow it)
    if min(shape) < 0 or len(raw) != expected:
        raise DataError(f"MNIST file {path} has {len(raw)} bytes, but its header {shape} needs {expected} "
                        f"(truncated or corrupt); {LAYOUT}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _images(path: Path) -> torch.Tensor:
    array = read_idx(path, IMAGE_MAGIC, 3)
    if array.shape[1:] != (28, 28):
        raise DataError(f"MNIST file {path} holds images of {array.shape[1]}x{array.shape[2]} pixels, expected 28x28; {LAYOUT}")
    x = torch.from_numpy(array.astype(np.float32)).unsqueeze(1)  # (N, 1, 28, 28)
    return x.div_(255.0).sub_(MEAN).div_(STD)


def _labels(path: Path, count: int, images: Path) -> torch.Tensor:
    array = read_idx(path, LABEL_MAGIC, 1)
    if len(array) != count:
        raise DataError(f"MNIST file {path} has {len(array)} labels but {images.name} has {count} images; {LAYOUT}")
    if len(array) and array.max() > 9:
        raise DataError(f"MNIST file {path} has label {int(array.max())}, expected 0..9; {LAYOUT}")
    return torch.from_numpy(array.astype(np.int64))


def load_mnist(root: Path | None, cache_dir: Path | None = None) -> TensorDataset:
    """Train 60000 / test 10000 images as float32 (N, 1, 28, 28), normalised; int64 labels."""
    if root is None or not Path(root).is_dir():
        where = "no --data-root was given" if root is None else f"{root} is not a directory"
        raise DataError(f"MNIST needs its IDX files: {where}; {LAYOUT}")
    root = Path(root)
    paths = {key: find_file(root, name) for key, name in FILES.items()}
    x_train, x_test = _images(paths["x_train"]), _images(paths["x_test"])
    y_train = _labels(paths["y_train"], len(x_train), paths["x_train"])
    y_test = _labels(paths["y_test"], len(x_test), paths["x_test"])
    return TensorDataset("mnist", x_train, y_train, x_test, y_test, num_classes=10)
