"""The config's type coercer: values turned into the declared types of a dataclass's fields, with the
errors a user reads. A command-line string (`--set KEY=VALUE`) becomes the type of the value it replaces
(`coerce`); a JSON mapping becomes a tree of dataclasses, lists tuples (`build`); every field is checked
against its type hint (`check_types`, named for errors by `type_name`). It knows no schema and sits below
config.py, whose dataclasses it is given."""
from __future__ import annotations

import collections.abc
import dataclasses
import json
import types
import typing
from dataclasses import fields
from typing import Any, Mapping

from .errors import ConfigError


def coerce(key: str, value: Any, current: Any) -> Any:
    """Turn a command-line string into the type of the field it replaces."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        if isinstance(current, int) or (current is None and value.lstrip("-").isdigit()):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, (list, dict)):
            if value.strip().startswith(("[", "{")):
                return json.loads(value)
            return [v for v in value.split(",") if v] if isinstance(current, list) else json.loads(value)
    except ValueError:
        raise ConfigError(f"bad value {value!r} for {key!r} (expected {type(current).__name__})") from None
    return value


def build(cls: type, raw: Mapping[str, Any], where: str = "") -> Any:
    """A `cls` from its JSON form: a section as its dataclass, a list as a tuple and a mapping as a dict
    where the field's default is one; `where` is the dotted prefix of the keys that errors name."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(repr(where + k) for k in unknown)}; known: {', '.join(known)}")
    kwargs = {}
    for name, value in raw.items():
        factory = known[name].default_factory
        default = factory() if factory is not dataclasses.MISSING else known[name].default
        if dataclasses.is_dataclass(default):
            kwargs[name] = build(type(default), value, f"{where}{name}.")
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):  # (tuple("fc1") would be three layer names)
                raise ConfigError(f"config value {where}{name} must be a list, got {value!r}")
            kwargs[name] = tuple(value)
        elif isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config value {where}{name} must be a mapping, got {value!r}")
            kwargs[name] = dict(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"bad config section {where or 'root'!r}: {exc}") from None


def check_types(section: Any, where: str = "") -> None:
    """Every field holds a value of its declared type (an int for a float is fine), e.g.
    `--set data_seed=abc` is refused here instead of failing somewhere inside training."""
    hints = typing.get_type_hints(type(section))
    for f in fields(section):
        value, key = getattr(section, f.name), where + f.name
        if dataclasses.is_dataclass(value):
            check_types(value, key + ".")
        elif not has_type(value, hints[f.name]):
            raise ConfigError(f"config value {key} must be {type_name(hints[f.name])}, got {value!r}")


def has_type(value: Any, hint: Any) -> bool:
    """Whether `value` is of the type `hint` (a type of the config's fields; others are a TypeError)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(has_type(value, arg) for arg in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(has_type(v, args[0]) for v in value)
    if origin in (Mapping, collections.abc.Mapping):
        return isinstance(value, Mapping) and all(has_type(k, args[0]) and has_type(v, args[1])
                                                  for k, v in value.items())
    raise TypeError(f"no type check for {hint}")  # a new field's type: add it here


def type_name(hint: Any) -> str:
    """A type hint in words, for errors and `lth presets --keys`."""
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin is tuple:
        return f"a list of {type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
    return f"a mapping of {type_name(args[0]).removeprefix('a ')}s to {type_name(args[1]).removeprefix('a ').removeprefix('an ')}s" \
        if args[1] is not Any else f"a mapping of {type_name(args[0]).removeprefix('a ')}s to values"
