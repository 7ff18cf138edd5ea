"""MNIST-1D (Greydanus 2020): generated procedurally by the `mnist1d` package, no download.

The arrays are generated once with the package's default arguments (4000 train / 1000 test
sequences of length 40, 10 classes), or with those `data.options` changes (e.g. more samples,
more noise), and cached in the store under a key of all the arguments, so later runs load them in ms.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError
from .loader import TensorDataset


def _arguments(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """mnist1d's default generation arguments with `options` applied (unknown names refused)."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)
    unknown = sorted(set(options or {}) - set(args))
    if unknown:
        raise ConfigError(f"unknown mnist1d data.options {', '.join(unknown)}; known: {', '.join(sorted(args))}")
    split = (options or {}).get("train_split", args["train_split"])
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 < split < 1:
        raise ConfigError(f"mnist1d data.options train_split is the fraction of examples trained on, in (0, 1); "
                          f"got {split!r}")
    return {**args, **(options or {})}


def _generate(args: dict[str, Any]) -> dict[str, np.ndarray]:
    from mnist1d.data import make_dataset  # procedural; never the download path

    try:
        data = make_dataset(SimpleNamespace(**args))
    except Exception as exc:  # noqa: BLE001 - the package's own checks raise many types
        raise ConfigError(f"mnist1d cannot generate data with data.options {args}: {type(exc).__name__}: {exc}") from None
    return {"x": data["x"], "y": data["y"], "x_test": data["x_test"], "y_test": data["y_test"]}


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """The sha256 of the four arrays, stored in the cache beside them: a damaged or swapped cache file
    is regenerated, never trusted."""
    digest = hashlib.sha256()
    for key in ("x", "y", "x_test", "y_test"):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _arguments_key(args: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]


def load_mnist1d(cache_dir: Path | None = None, options: Mapping[str, Any] | None = None) -> TensorDataset:
    arrays = None
    args = _arguments(options)
    cache = Path(cache_dir) / f"mnist1d-{_arguments_key(args)}.npz" if cache_dir is not None else None
    if cache is not None and cache.exists():
        try:
            with np.load(cache) as stored:
                arrays = {k: stored[k] for k in ("x", "y", "x_test", "y_test")}
                if str(stored["sha256"]) != _digest(arrays):
                    arrays = None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            arrays = None  # a damaged cache (or one written before it held its sha256) is regenerated, never trusted
    if arrays is None:
        arrays = _generate(args)
        if cache is not None:
            from ..store import atomic_write

            try:
                with atomic_write(cache) as handle:
                    np.savez(handle, **arrays, sha256=np.array(_digest(arrays)))  # type: ignore[arg-type]  # (numpy's stubs type **kwds as bool)
            except OSError:
                pass  # the cache only saves time; an unwritable store is reported when the run is created
    as_float = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    as_label = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    return TensorDataset("mnist1d", as_float(arrays["x"]), as_label(arrays["y"]),
                         as_float(arrays["x_test"]), as_label(arrays["y_test"]), num_classes=10)
