"""The data a run is trained on, by content: a fingerprint recorded in the run (<run>/data.json)
and checked before the run is read or extended, so other data never returns a run's numbers or
adds levels to it (docs/store.md, "A run is a function of its config and its data").

A run's address stays its config's hash: stores written before keep their addresses, and a run
with no record (written before records existed) is read as it is and records the data it is
extended with.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from .config import ExperimentConfig, section_key
from .data import load_dataset
from .store import DataRecord, Store

_ATTRIBUTE = "_lth_data_record"  # the record, computed once per dataset object
_LOADED: dict[tuple, Any] = {}  # one dataset: the last one loaded (see load)


def record(data: Any) -> DataRecord | None:
    """The fingerprint of a dataset's content: every tensor of a TensorDataset (inputs after
    normalisation, labels, both splits); of an image folder (ImageNet), its listing (classes, file
    paths, labels), as hashing the images would take longer than training. None for other objects."""
    cached = getattr(data, _ATTRIBUTE, None)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    if all(hasattr(data, name) for name in ("x_train", "y_train", "x_test", "y_test")):
        parts = [data.x_train, data.y_train, data.x_test, data.y_test]
        digest.update(f"{getattr(data, 'num_classes', '')}".encode())
        for tensor in parts:
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(_bytes(tensor))
        examples = (len(data.y_train), len(data.y_test))
    elif all(hasattr(data, name) for name in ("classes", "train_paths", "train_labels", "val_paths", "val_labels")):
        for part in (data.classes, data.train_paths, data.train_labels, data.val_paths, data.val_labels):
            digest.update(json.dumps([str(v) for v in part]).encode())
        examples = (len(data.train_labels), len(data.val_labels))
    else:
        return None
    found = DataRecord(str(getattr(data, "name", type(data).__name__)), digest.hexdigest(), examples)
    try:
        setattr(data, _ATTRIBUTE, found)
    except AttributeError:  # (a frozen or slotted object: fingerprinted again next time)
        pass
    return found


def _bytes(tensor: torch.Tensor) -> memoryview:
    array = tensor.detach().cpu().contiguous()
    if array.dtype == torch.bfloat16:  # (numpy has no bfloat16)
        array = array.view(torch.int16)
    return memoryview(array.numpy()).cast("B")  # type: ignore[arg-type]  # (an ndarray is a buffer; the stubs do not say)


def load(config: ExperimentConfig, data_root: str | Path | None, cache_dir: str | Path | None) -> Any:
    """The config's dataset, loaded once per command: the last one loaded is kept while its files
    (names, sizes, modification times two folders deep) stay as they were."""
    key = (config.data.dataset, json.dumps(dict(config.data.options), sort_keys=True), str(data_root),
           str(cache_dir), _stamp(data_root))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_dataset(config.data.dataset, data_root, cache_dir, config.data.options)
    return _LOADED[key]


def _stamp(root: str | Path | None, depth: int = 2) -> tuple:
    if root is None or not Path(root).is_dir():
        return ()
    found = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                stat = entry.stat()
                found.append((entry.name, stat.st_size, stat.st_mtime_ns))
                if depth > 1 and entry.is_dir():
                    found.append(_stamp(entry.path, depth - 1))
    except OSError:
        return ("unreadable",)
    return tuple(sorted(found, key=str))


def bind(store: Store, data_root: str | Path | None = None, data: Any = None) -> None:
    """From now on, runs of `store` record the data they are created with (`data`, or their dataset
    from `data_root`) and are refused when stored with other data (lth.store.Run.check_data). The data
    is loaded and fingerprinted only when a run is read or created, so a refused command writes nothing."""
    records: dict[str, DataRecord | None] = {}

    def source(config: ExperimentConfig) -> DataRecord | None:
        key = section_key(config.data)
        if key not in records:
            records[key] = record(data if data is not None else load(config, data_root, store.cache_dir))
        return records[key]

    store.use_data(source)
