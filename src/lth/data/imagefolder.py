"""ImageNet-style folders (`root/train/<wnid>/*.JPEG`, `root/val/<wnid>/*.JPEG`), streamed from disk.

The images do not fit in memory, so this dataset decodes them in DataLoader worker processes
while offering the interface `train()` uses for in-memory data: `train_loader(...).batch(i)` is
a pure function of (seed, i). Epoch e's order is the permutation seeded by order_seed(seed, e)
(as in DeviceLoader), and the crop/flip of the image at position p of iteration i is seeded by
(augment_seed(seed, i), p); so a run resumed at iteration i sees the same batches as one that got there.
Workers decode consecutive iterations ahead of the training loop and hand back uint8 batches;
the normalisation to float happens on the device.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError, DataError
from . import transforms
from ..seeds import augment_seed, order_seed
from .loader import Batch

EXTENSIONS = (".jpeg", ".jpg", ".png")
LAYOUT = "pass --data-root DIR containing train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (one folder per class)"


def default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(8, cores)


def scan(split: Path, classes: list[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(class names, relative paths, labels) of one split; class names from `classes` or sorted folders."""
    if not split.is_dir():
        raise DataError(f"image folder {split} not found; {LAYOUT}")
    folders = sorted(entry.name for entry in os.scandir(split) if entry.is_dir())
    if classes is None:
        classes = folders
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for folder in folders:
        if folder not in index:
            raise DataError(f"class folder {split / folder} does not exist in the training split; {LAYOUT}")
        files = sorted(entry.name for entry in os.scandir(split / folder)
                       if entry.is_file() and entry.name.lower().endswith(EXTENSIONS))
        if not files and classes is folders:
            raise DataError(f"class folder {split / folder} holds no images (.JPEG/.jpg/.png); {LAYOUT}")
        paths += [f"{folder}/{name}" for name in files]
        labels += [index[folder]] * len(files)
    if not paths:
        raise DataError(f"image folder {split} holds no class folders with images; {LAYOUT}")
    # One bytes array instead of a list of str: forked workers would otherwise copy every page of
    # the list as they touch the strings' reference counts.
    return classes, np.array([p.encode() for p in paths]), np.array(labels, dtype=np.int64)


class _Decoder(Dataset):
    """Decodes one whole batch per item; an item is (iteration, sample indices) and the result is
    (uint8 images, int64 labels, error message or "")."""

    def __init__(self, root: Path, paths: np.ndarray, labels: np.ndarray, seed: int | None,
                 size: int, resize: int, scale: tuple[float, float], ratio: tuple[float, float], streams: int = 2):
        self.root, self.paths, self.labels, self.seed = root, paths, labels, seed
        self.size, self.resize, self.scale, self.ratio, self.streams = size, resize, scale, ratio, streams

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, job: tuple[int, np.ndarray]):
        from PIL import Image

        iteration, indices = job
        images = torch.empty((len(indices), 3, self.size, self.size), dtype=torch.uint8)
        for position, index in enumerate(indices):
            path = self.root / self.paths[index].decode()
            try:
                with Image.open(path) as file:
                    image = file.convert("RGB")
                if self.seed is None:
                    images[position] = transforms.eval_transform(image, self.size, self.resize)
                else:
                    rng = np.random.default_rng([augment_seed(self.seed, iteration, self.streams), position])
                    images[position] = transforms.train_transform(image, self.size, rng, self.scale, self.ratio)
            except Exception as exc:  # noqa: BLE001 - PIL raises OSError, ValueError, SyntaxError... for bad files
                return images[:0], torch.from_numpy(self.labels[indices[:0]]), \
                    f"cannot decode image {path} ({type(exc).__name__}: {exc}); {LAYOUT}"
        return images, torch.from_numpy(self.labels[indices]), ""


def _unchanged(item):
    return item


class _Jobs(Sampler):
    """(iteration, sample indices) for iterations start, start+1, ... (endless, or up to stop)."""

    def __init__(self, start: int, stop: int | None, indices_of):
        self.start, self.stop, self.indices_of = start, stop, indices_of

    def __iter__(self):
        iteration = self.start
        while self.stop is None or iteration < self.stop:
            yield iteration, self.indices_of(iteration)
            iteration += 1


class StreamingLoader:
    """Training batches by iteration number, decoded ahead by `num_workers` processes.

    Asking for the iteration after the last one continues the running workers; any other
    iteration restarts them from there. Incomplete last batches of an epoch are dropped.
    """

    def __init__(self, folder: ImageFolderDataset, batch_size: int, seed: int, device: torch.device,
                 augment: bool, num_workers: int, streams: int = 2):
        if batch_size > folder.num_train:
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({folder.num_train} examples)")
        self.folder, self.batch_size, self.seed, self.device = folder, batch_size, seed, torch.device(device)
        self.iterations_per_epoch = folder.num_train // batch_size
        self.decoder = folder._decoder("train", seed if augment else None, streams)
        self.streams = streams
        self.num_workers = num_workers
        self.normalize = transforms.Normalize(folder.mean, folder.std, self.device)
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)
        self._stream: Iterator | None = None
        self._next = -1

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(order_seed(self.seed, epoch, self.streams))
            self._order = torch.randperm(self.folder.num_train, generator=generator).numpy()
            self._epoch = epoch
        return self._order

    def indices(self, iteration: int) -> np.ndarray:
        epoch, position = divmod(iteration, self.iterations_per_epoch)
        return self.order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]

    def batch(self, iteration: int) -> Batch:
        if self._stream is None or iteration != self._next:
            self.close()
            self._stream = iter(self.folder._dataloader(self.decoder, _Jobs(iteration, None, self.indices),
                                                        self.num_workers, self.device))
        x, y, error = next(self._stream)
        if error:
            self.close()
            raise DataError(error)
        self._next = iteration + 1
        return self.normalize(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def batches(self, start: int, stop: int) -> Iterator[Batch]:
        for iteration in range(start, stop):
            yield self.batch(iteration)

    def close(self) -> None:
        """Stops the workers (they also stop when the loader is garbage-collected)."""
        self._stream, self._next = None, -1


class ImageFolderDataset:
    """A class-per-folder image dataset with train/ and val/ splits, decoded on the fly.

    size/resize: training crops and evaluation centre crops are size x size; evaluation first
    resizes the shorter side to `resize` (224/256 for ImageNet). scale/ratio: RandomResizedCrop's.
    """

    def __init__(self, root: str | Path | None, name: str = "imagenet", size: int = 224, resize: int = 256,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 num_workers: int | None = None, mean=transforms.IMAGENET_MEAN, std=transforms.IMAGENET_STD):
        if root is None or not Path(root).is_dir():
            where = "no --data-root was given" if root is None else f"{root} is not a directory"
            raise DataError(f"{name} needs its image folders: {where}; {LAYOUT}")
        if resize < size:
            raise ConfigError(f"resize ({resize}) must be at least the crop size ({size})")
        self.root, self.name = Path(root), name
        self.size, self.resize, self.scale, self.ratio = size, resize, (scale[0], scale[1]), (ratio[0], ratio[1])
        self.num_workers = default_workers() if num_workers is None else num_workers
        self.mean, self.std = mean, std
        self.classes, self.train_paths, self.train_labels = scan(self.root / "train")
        _, self.val_paths, self.val_labels = scan(self.root / "val", self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_train(self) -> int:
        return len(self.train_labels)

    @property
    def num_test(self) -> int:
        return len(self.val_labels)

    def train_loader(self, batch_size: int, seed: int, device: torch.device, augment: bool = False,
                     streams: int = 2) -> StreamingLoader:
        """augment=False feeds training the evaluation transform (resize + centre crop) instead."""
        return StreamingLoader(self, batch_size, seed, device, augment, self.num_workers, streams)

    def test_batches(self, device: torch.device, batch_size: int = 256) -> Iterator[Batch]:
        return self._in_order("val", torch.device(device), batch_size)

    def train_eval_batches(self, device: torch.device, batch_size: int = 256) -> Iterator[Batch]:
        return self._in_order("train", torch.device(device), batch_size)

    def train_eval_sample(self, device: torch.device, examples: int, batch_size: int = 256) -> Iterator[Batch]:
        """`examples` training images (evaluation transform) spread evenly over the classes; the
        files are sorted by class, so the first N would cover only N / 1281 of ImageNet's classes."""
        chosen = spread_sample(self.train_labels, examples)
        return self._in_order("train", torch.device(device), batch_size, chosen)

    def _decoder(self, split: str, seed: int | None, streams: int = 2) -> _Decoder:
        paths, labels = (self.train_paths, self.train_labels) if split == "train" else (self.val_paths, self.val_labels)
        return _Decoder(self.root / split, paths, labels, seed, self.size, self.resize, self.scale, self.ratio, streams)

    def _dataloader(self, decoder: _Decoder, jobs: _Jobs, num_workers: int, device: torch.device) -> DataLoader:
        # batch_size=None: each job is already a whole batch, so one worker decodes one iteration
        # and the workers together keep 2 * num_workers consecutive iterations in flight.
        return DataLoader(decoder, batch_size=None, sampler=jobs, num_workers=num_workers,
                          collate_fn=_unchanged, pin_memory=device.type == "cuda",
                          prefetch_factor=2 if num_workers > 0 else None)

    def _in_order(self, split: str, device: torch.device, batch_size: int,
                  chosen: np.ndarray | None = None) -> Iterator[Batch]:
        """The split's examples (or those at `chosen`), in order, with the evaluation transform."""
        decoder = self._decoder(split, None)
        chosen = np.arange(len(decoder)) if chosen is None else chosen
        chunks = (len(chosen) + batch_size - 1) // batch_size
        indices = lambda i: chosen[i * batch_size:(i + 1) * batch_size]  # noqa: E731
        normalize = transforms.Normalize(self.mean, self.std, device)
        for x, y, error in self._dataloader(decoder, _Jobs(0, chunks, indices), self.num_workers, device):
            if error:
                raise DataError(error)
            yield normalize(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)


SAMPLE_SEED = 0  # one fixed sample: the same examples for every alpha, seed and run of a study


def spread_sample(labels: np.ndarray, count: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Indices of `count` examples spread evenly over the classes: shuffle each class (seeded),
    then take every class's first example, then every class's second one, and so on (a class that
    runs out is skipped). Sorted, so the files are read in folder order."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]  # grouped by class, shuffled within
    sorted_labels = labels[by_class]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - starts  # position of each example within its class
    class_order = rng.permutation(int(labels.max()) + 1 if len(labels) else 0)  # which class goes first in a round
    picked = by_class[np.lexsort((class_order[sorted_labels], rank))[:count]]
    return np.sort(picked)


def load_imagenet(root: Path | None, cache_dir: Path | None = None) -> ImageFolderDataset:
    """ImageNet (ILSVRC-2012) in the class-per-folder layout; classes in sorted wnid order (other sizes
    and workers: build an ImageFolderDataset)."""
    return ImageFolderDataset(root, "imagenet")
