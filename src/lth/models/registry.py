"""Model constructors by name, and `package.module:factory` for a user's own model.

Every model is built under a fixed init seed, so the initialisation is reproducible and does
not disturb the caller's random state.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import ConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def decorate(factory):
        MODELS[name] = factory
        return factory
    return decorate


def resolve(name: str) -> Callable[..., nn.Module]:
    if name in MODELS:
        return MODELS[name]
    if name.startswith("instance:"):
        raise ConfigError(f"run made with a model object ({name}); pass the same nn.Module as model= in Python")
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # noqa: BLE001 - importing a user's module runs its code (SyntaxError, ...)
            raise ConfigError(f"cannot import model factory {name!r}: {type(exc).__name__}: {exc}") from None
        if not callable(factory):
            raise ConfigError(f"model factory {name!r} is not callable")
        return factory
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))} (or 'package.module:factory')")


def build_model(name: str, options: Mapping[str, Any] | None = None, seed: int = 0) -> nn.Module:
    factory = resolve(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory(**dict(options or {}))
        except TypeError as exc:
            raise ConfigError(f"bad options for model {name!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a factory can raise anything (a negative width, ...)
            if torch.empty(0).device.type == "meta":
                raise  # (levels.shape_model then builds it for real, where this message comes from)
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise ConfigError(f"model {name!r} cannot be built with options {dict(options or {})}: "
                              f"{type(exc).__name__}: {detail}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
