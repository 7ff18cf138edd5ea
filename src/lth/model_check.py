"""Does the model fit the data? One forward pass of two test examples before any training, so a
model that cannot be trained on this data (wrong input shape, class count, dtype; a tuple for
logits; nothing to train; tied weights the store cannot keep) is named in one line, both shapes
given, instead of failing deep inside the training loop."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .errors import ConfigError

_CHECKED: set[tuple] = set()  # (model section, data): each pair is probed once per process


def check_parameters(model: nn.Module, name: str) -> None:
    """Parameters lth can store, prune and rewind by name: none shared, none lazy, some trainable."""
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    unique = [n for n, _ in model.named_parameters()]
    if len(names) != len(unique):
        tied = sorted(set(names) - set(unique))
        raise ConfigError(f"model {name} ties weights ({', '.join(tied[:3])} share a parameter with another name); lth "
                          "stores, prunes and rewinds each parameter by its name: give each layer its own weights")
    lazy = [n for n, p in model.named_parameters() if isinstance(p, nn.parameter.UninitializedParameter)]
    if lazy:
        raise ConfigError(f"model {name} has lazy layers ({', '.join(lazy[:3])}) whose shapes are unknown until a first "
                          "batch; give their sizes (e.g. nn.Linear instead of nn.LazyLinear)")
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model {name} has no trainable parameter: nothing to train or prune")


def check_fits(build: Callable[[], nn.Module], data: Any, name: str, model_key: str) -> None:
    """Raise ConfigError unless the model `build` makes (named `name`, its config section `model_key`)
    maps inputs of `data` to float32 logits of its classes."""
    if not hasattr(data, "x_test"):  # (an image folder is decoded lazily: not probed)
        return
    key = (model_key, id(data), tuple(data.x_test.shape), data.num_classes)
    if key in _CHECKED:
        return
    for split in ("x_train", "x_test"):  # (NaN inputs would surface as a diverged loss, blamed on the lr)
        if not bool(torch.isfinite(getattr(data, split)).all()):
            raise ConfigError(f"{data.name} data has NaN or infinite values in its {split.removeprefix('x_')} inputs")
    model = build()
    check_parameters(model, name)
    x = data.x_test[:2].to(next(model.parameters()).device)
    what = f"{data.name} inputs of shape {tuple(x.shape[1:])} and {data.num_classes} classes"
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            out = model(x)
            model.train(was_training)
    except Exception as exc:  # noqa: BLE001 - a model's forward can raise anything
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"model {name} does not fit {what}: {type(exc).__name__}: {detail}") from None
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"model {name} returns a {type(out).__name__}, not a tensor of logits, on {what}")
    if tuple(out.shape) != (len(x), data.num_classes):
        raise ConfigError(f"model {name} outputs shape {tuple(out.shape)} for a batch of {len(x)}, expected "
                          f"({len(x)}, {data.num_classes}): it does not fit {what}")
    if out.dtype != torch.float32:
        raise ConfigError(f"model {name} outputs {out.dtype} logits; lth trains float32 models (precision is "
                          "train.precision's, autocast): build it in float32")
    _CHECKED.add(key)
