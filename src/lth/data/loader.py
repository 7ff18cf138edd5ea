"""Device-resident data: the whole split lives on the device, batches are gathered by index.

The batch of iteration i is a pure function of (data seed, i): epoch e's order is a permutation
drawn from a generator seeded by (seed, e), and augmentation of iteration i is seeded by (seed, i),
each from its own stream (seeds.py; `streams` = 1: the overlapping streams of lth 0.1).
A run resumed at any iteration therefore sees exactly the batches an uninterrupted run sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import torch

from ..distributed import local_slice, world_size
from ..errors import ConfigError
from ..seeds import augment_seed, order_seed

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


class Loader(Protocol):
    """Training batches by iteration number (DeviceLoader, the image folders' StreamingLoader, stacked
    replicas' ReplicaBatches)."""

    iterations_per_epoch: int

    def batch(self, iteration: int) -> Batch: ...


class Dataset(Protocol):
    """What training and evaluation use of a dataset: TensorDataset, ImageFolderDataset, or a user's own
    object with these methods (`train_loader` may also take `streams`)."""

    @property
    def num_train(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    def train_loader(self, batch_size: int, seed: int, device: torch.device, augment: bool = False,
                     streams: int = 2) -> Loader: ...

    def test_batches(self, device: torch.device) -> Iterator[Batch]: ...

    def train_eval_batches(self, device: torch.device) -> Iterator[Batch]: ...



@dataclass
class TensorDataset:
    """A dataset that fits in memory: inputs and integer labels for both splits."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: Augment | None = None  # batched, on-device, used only when the config asks for it

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    def train_loader(self, batch_size: int, seed: int, device: torch.device, augment: bool = False,
                     streams: int = 2) -> DeviceLoader:
        if augment and self.augment is None:
            raise ConfigError(f"dataset {self.name!r} has no augmentation; set data.augment=false")
        return DeviceLoader(self.x_train, self.y_train, batch_size, seed, device, self.augment if augment else None,
                            streams)

    def test_batches(self, device: torch.device, batch_size: int = 2048) -> Iterator[Batch]:
        return _chunks(self.x_test, self.y_test, device, batch_size)

    def train_eval_batches(self, device: torch.device, batch_size: int = 2048) -> Iterator[Batch]:
        return _chunks(self.x_train, self.y_train, device, batch_size)


def gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor[index] along the first dimension; index_select is ~2.5x faster than advanced indexing
    on CPU (3.6 vs 9.0 us for a batch of 60 MNIST images), which is ~1% of a LeNet-300-100 step."""
    return tensor.index_select(0, index)


def _chunks(x: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int) -> Iterator[Batch]:
    x, y = x.to(device), y.to(device)
    for start in range(0, len(y), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]


class DeviceLoader:
    """Training batches by iteration number; incomplete last batches of an epoch are dropped."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device, augment: Augment | None = None, streams: int = 2):
        if batch_size > len(y):
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(y)} examples)")
        self.x, self.y = x.to(device), y.to(device)
        self.batch_size, self.seed, self.device, self.augment = batch_size, seed, device, augment
        self.streams = streams
        self.iterations_per_epoch = len(y) // batch_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(order_seed(self.seed, epoch, self.streams))
            self._order = torch.randperm(len(self.y), generator=generator).to(self.device)
            self._epoch = epoch
        return self._order

    def indices(self, iteration: int) -> torch.Tensor:
        """Which training examples make up the batch of `iteration`."""
        epoch, position = divmod(iteration, self.iterations_per_epoch)
        return self.order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]

    def batch(self, iteration: int) -> Batch:
        index = self.indices(iteration)
        x, y = gather(self.x, index), gather(self.y, index)
        if self.augment is not None:
            generator = torch.Generator(self.device).manual_seed(augment_seed(self.seed, iteration, self.streams))
            x = self.augment(x, generator)
        if world_size() > 1:  # this rank's share of the global batch, augmented exactly as in one process
            share = local_slice(self.batch_size)
            x, y = x[share], y[share]
        return x, y

    def batches(self, start: int, stop: int) -> Iterator[Batch]:
        for iteration in range(start, stop):
            yield self.batch(iteration)
