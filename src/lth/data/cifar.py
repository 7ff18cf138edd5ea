"""CIFAR-10 / CIFAR-100 from the "python version" archives (pickled batches); nothing is downloaded.

Each batch is a pickled dict with b"data" (uint8, N x 3072, channel-major 32x32 planes) and
b"labels" (CIFAR-10) or b"fine_labels" (CIFAR-100). Pickle can run code while loading, so the
unpickler below resolves only the numpy names an array needs and refuses everything else.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .loader import TensorDataset

# Each dataset's own per-channel training-set statistics. The LTH reference code
# (facebookresearch/open_lth, datasets/cifar10.py) normalises CIFAR-10 with the ImageNet
# statistics (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) instead, which is wrong for CIFAR.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
# name: (subdirectory of the official archive, train files, test files, label key, classes)
FORMATS = {
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels", 10),
    "cifar100": ("cifar-100-python", ("train",), ("test",), "fine_labels", 100),
}
PADDING = 4


def _layout(name: str) -> str:
    directory, train, test, _, _ = FORMATS[name]
    return f"pass --data-root DIR containing {directory}/{{{','.join(train + test)}}} (the python version of {name})"


class _ArrayUnpickler(pickle.Unpickler):
    """Allows exactly the globals a pickled numpy array refers to (numpy 1 and 2 spellings)."""

    SAFE = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
            ("__builtin__", "bytes"), ("builtins", "bytes")}  # (bytes: how protocol 2 pickles an empty array's b"")

    def find_class(self, module, name):
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # numpy 2 renamed numpy.core
        if (module, name) not in self.SAFE:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _get(batch: dict, key: str):
    return batch[key.encode()] if key.encode() in batch else batch.get(key)


def read_batch(path: Path, label_key: str, num_classes: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x 3 x 32 x 32, int64 labels) of one pickled batch, validated."""
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except OSError as exc:
        raise DataError(f"cannot read CIFAR file {path} ({exc.strerror or exc}); {layout}") from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign pickles raise many types
        raise DataError(f"CIFAR file {path} is not a valid python-version batch ({type(exc).__name__}: {exc}); {layout}") from None
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR file {path} holds a {type(batch).__name__}, expected a dict with data and {label_key}; {layout}")
    data, labels = _get(batch, "data"), _get(batch, label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataError(f"CIFAR file {path}: 'data' must be a uint8 array of shape (N, 3072), got {got}; {layout}")
    try:  # integers only: a float label (3.7) would be truncated to a class silently
        labels = np.asarray(labels)
        labels = labels.astype(np.int64) if (labels.dtype.kind in "iu" or labels.size == 0) and labels.ndim == 1 else None
    except (TypeError, ValueError):
        labels = None
    if labels is None or labels.shape != (len(data),):
        raise DataError(f"CIFAR file {path}: '{label_key}' must hold {len(data)} integer labels; {layout}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"CIFAR file {path} has labels outside 0..{num_classes - 1}; {layout}")
    return data.reshape(-1, 3, 32, 32), labels


def _find(root: Path, name: str) -> Path:
    directory = FORMATS[name][0]
    return root / directory if (root / directory).is_dir() else root  # the files may also lie in root itself


def _split(directory: Path, files: tuple[str, ...], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, _, label_key, num_classes = FORMATS[name]
    parts = []
    for file in files:
        path = directory / file
        if not path.is_file():
            raise DataError(f"CIFAR file {path} not found; {_layout(name)}")
        parts.append(read_batch(path, label_key, num_classes, _layout(name)))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    mean, std = (torch.tensor(s, dtype=torch.float32).view(1, 3, 1, 1) for s in STATS[name])
    x = torch.from_numpy(images).float().div_(255.0).sub_(mean).div_(std)
    return x, torch.from_numpy(labels)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after 4-pixel zero padding, then a horizontal flip with probability 1/2.

    Batched and on x's device: one gather builds every shifted/flipped image, and every random
    number comes from `generator` (on the same device), so a batch's augmentation is a pure
    function of the generator's seed. The zeros are padded after normalisation, i.e. the padding
    has the dataset's mean colour (torchvision pipelines pad black before normalising).
    """
    n, c, h, w = x.shape
    device = x.device
    padded = F.pad(x, (PADDING, PADDING, PADDING, PADDING))
    dy = torch.randint(0, 2 * PADDING + 1, (n, 1), generator=generator, device=device)
    dx = torch.randint(0, 2 * PADDING + 1, (n, 1), generator=generator, device=device)
    flip = torch.randint(0, 2, (n, 1), generator=generator, device=device).bool()
    rows = dy + torch.arange(h, device=device)
    columns = torch.arange(w, device=device).expand(n, w)
    columns = dx + torch.where(flip, columns.flip(1), columns)
    # flat index into each padded plane; gather is ~5x faster on CPU than 4-tensor advanced indexing
    index = (rows.view(n, h, 1) * (w + 2 * PADDING) + columns.view(n, 1, w)).view(n, 1, h * w).expand(n, c, h * w)
    return padded.view(n, c, -1).gather(2, index).view(n, c, h, w)


def load_cifar(name: str, root: Path | None) -> TensorDataset:
    """Train 50000 / test 10000 images as float32 (N, 3, 32, 32), normalised; int64 labels."""
    if root is None or not Path(root).is_dir():
        where = "no --data-root was given" if root is None else f"{root} is not a directory"
        raise DataError(f"{name} needs its pickled batches: {where}; {_layout(name)}")
    directory = _find(Path(root), name)
    _, train, test, _, num_classes = FORMATS[name]
    x_train, y_train = _split(directory, train, name)
    x_test, y_test = _split(directory, test, name)
    return TensorDataset(name, x_train, y_train, x_test, y_test, num_classes, augment=random_crop_flip)
