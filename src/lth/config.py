"""Experiment configuration: frozen dataclasses, canonical JSON and the hash that names a run.

A run is a pure function of its config, so the hash of the canonical JSON names its directory
in the store. Fields that do not change the result (a preset's label) are left out of the hash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .coerce import build, check_types, coerce, type_name  # (the type coercer: --set strings, JSON values, type checks)
from .errors import ConfigError
from .kinds import KINDS
from .steps import Step, check_steps, to_iterations


def option(default: Any = dataclasses.MISSING, *, help: str, flag: str | None = None,
           choices: tuple[Any, ...] | None = None, bounds: str | None = None, metavar: str | None = None,
           what: str | None = None, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its one definition: `help`, the CLI `flag` that sets it (if any), the
    `choices` or the interval `bounds` (e.g. "(0, 1)", "[1, inf)"; of each value of a mapping) that
    validation enforces, and `what` to call it in errors. `--set KEY=VALUE`, the generated flags,
    `lth presets --keys` and docs/commands.md's flag list (tests/test_options.py) read it."""
    if bounds is not None:
        Bounds.parse(bounds)  # a typo fails at import, not in a user's run
    metadata = {"help": help, "flag": flag, "choices": choices, "bounds": bounds, "metavar": metavar, "what": what}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Bounds:
    """An interval in the usual notation: "(0, 1)" open, "[1, inf)" closed at 1."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> Bounds:
        low, high = (float(part) for part in text[1:-1].split(","))
        return cls(low, high, text[0] == "[", text[-1] == "]")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"at least {self.low:g}" if self.low_closed else ("positive" if self.low == 0 else f"> {self.low:g}")
        return f"in {'[' if self.low_closed else '('}{self.low:g}, {self.high:g}{']' if self.high_closed else ')'}"


SEED_BOUNDS = "[0, 9223372036854775808)"  # 2^63: derived seeds (data-order copies) use all 63 bits
SECTIONS = ("data", "model", "train", "prune")  # the config's sections: `--set train={...}` sets some of their keys
SAFE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a preset label becomes a file name (the report's folder)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("mnist1d", flag="--dataset", help="dataset name: mnist1d, mnist5k, mnist, cifar10, cifar100, imagenet")
    augment: bool = option(False, help="on-device augmentation (random crop + flip) for image datasets")
    options: Mapping[str, Any] = option(factory=dict, help="the dataset's generation arguments (mnist1d only: keys of "
                                        "mnist1d's get_dataset_args, e.g. num_samples, corr_noise_scale, iid_noise_scale)")


@dataclass(frozen=True)
class ModelConfig:
    name: str = option("mnist1d_mlp", flag="--model", metavar="NAME",
                       help="registry name or package.module:factory returning an nn.Module")
    options: Mapping[str, Any] = option(factory=dict, help="keyword arguments of the model's constructor")


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = option("adam", flag="--optimizer", choices=("sgd", "adam"), what="optimizer", help="optimizer")
    lr: float = option(1e-3, flag="--lr", bounds="(0, inf)", what="learning rate", help="base learning rate")
    momentum: float = option(0.0, bounds="[0, 1)", what="momentum", help="SGD momentum")
    weight_decay: float = option(0.0, bounds="[0, inf)", what="weight decay", help="L2 weight decay")
    nesterov: bool = option(False, help="Nesterov momentum (SGD)")
    batch_size: int = option(100, flag="--batch-size", bounds="[1, inf)", what="batch size", help="examples per iteration")
    iterations: str = option("1500it", flag="--iterations", metavar="STEP", help="training length, e.g. 1500it or 160ep")
    warmup: str = option("0it", metavar="STEP", help="linear learning-rate warm-up from 0 over this many steps")
    lr_drops: tuple[str, ...] = option((), help="steps at which the learning rate is multiplied by lr_gamma")
    lr_gamma: float = option(0.1, bounds="(0, inf)", what="lr_gamma", help="the factor of each learning-rate drop")
    eval_every: str = option("100it", metavar="STEP", help="evaluate on the test set this often")
    precision: str = option("fp32", flag="--precision", choices=("fp32", "bf16", "fp16"), what="precision",
                            help="fp32 (default), or mixed precision: bf16/fp16 autocast of the forward pass (GPUs)")
    # Random streams (data order, augmentation, reinitialisation, random pruning, the data-order
    # copy's seed): 2 gives each purpose its own independent stream (seeds.py); 1 is the scheme of
    # lth 0.1, whose streams overlap (seed 1000's network was seed 0's reinitialisation). Stored
    # configs without the field are 1, so old runs keep their addresses and bits.
    streams: int = option(2, choices=(1, 2), what="train.streams value",
                          help="random streams: 2, one independent stream per purpose; 1, lth 0.1's overlapping ones")


@dataclass(frozen=True)
class PruneConfig:
    fraction: float = option(0.2, flag="--prune-fraction", metavar="F", bounds="(0, 1)", what="prune fraction",
                             help="fraction of remaining weights pruned per level")
    strategy: str = option("layerwise", flag="--prune-strategy", choices=("layerwise", "global"), what="pruning strategy",
                           help="prune each layer by its fraction, or rank all layers together")
    # Per-layer fractions (layer-wise only). Keys: a parameter name, "output" (the last prunable
    # layer), "conv" or "linear" (all such layers); an exact name beats "output" beats a type.
    layer_fractions: Mapping[str, float] = option(factory=dict, bounds="(0, 1)", what="prune fraction",
                                                  help="per-layer fractions (layer-wise): a parameter name, output, "
                                                  "conv or linear -> fraction")
    ignore: tuple[str, ...] = option((), help="layers never pruned, same keys as layer_fractions")


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    rewind: str = option("0it", flag="--rewind", metavar="STEP",
                         help="rewind step, e.g. 0it (reset to init, the original LTH), 500it, 6ep")
    rewind_optimizer: str = option("reset", flag="--rewind-optimizer", choices=("reset", "rewind"),
                                   help="at the rewind step, start a fresh optimizer (reset, the papers' default) "
                                   "or restore its state")
    seed: int = option(0, flag="--seed", bounds=SEED_BOUNDS, what="seed", help="initialisation seed (default 0)")
    data_seed: int | None = option(None, flag="--data-seed", bounds=SEED_BOUNDS, what="data seed",
                                   help="data-order seed (default: the init seed)")
    kind: str = option("imp", choices=tuple(KINDS), help="imp, dense, or a branch kind (lth branch --help)")
    preset: str = option("", help="the preset's name: a label, not hashed")

    def __post_init__(self) -> None:
        validate(self)

    @property
    def order_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentConfig:
        """A config from its JSON form; a field added later that `raw` does not name takes the value
        configs had before it existed (ADDED_LATER), so a stored config means what it meant then."""
        if isinstance(raw, Mapping):
            raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
            for (section, name), before in ADDED_LATER.items():
                node = raw.setdefault(section, {}) if section else raw
                if isinstance(node, dict):
                    node.setdefault(name, before)
        return build(cls, raw)

    def canonical_json(self) -> str:
        hashed = self.to_dict()
        hashed.pop("preset")
        for (section, name), before in ADDED_LATER.items():  # hashed only when not as before: old stores keep their addresses
            node = hashed[section] if section else hashed
            if node[name] == before:
                del node[name]
        return json.dumps(hashed, sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        return config_hash(self)

    def uses_epochs(self) -> bool:
        """Whether any step of this config is written in epochs (which only the data can resolve)."""
        t = self.train
        return any(Step.parse(s).unit == "ep" for s in (t.iterations, t.warmup, t.eval_every, self.rewind, *t.lr_drops))

    def in_iterations(self, iterations_per_epoch: int) -> ExperimentConfig:
        """This config with every step in iterations ("2ep" -> "782it" at 391 iterations per epoch),
        so a run written in epochs and the same run written in iterations have one address."""
        def it(step: str) -> str:
            return f"{to_iterations(step, iterations_per_epoch)}it"

        t = self.train
        train = dataclasses.replace(t, iterations=it(t.iterations), warmup=it(t.warmup), eval_every=it(t.eval_every),
                                    lr_drops=tuple(map(it, t.lr_drops)))
        return dataclasses.replace(self, train=train, rewind=it(self.rewind))

    def override(self, assignments: Mapping[str, Any]) -> ExperimentConfig:
        """Return a copy with dotted keys replaced, e.g. {"train.lr": "0.1", "seed": 3}; a section
        given whole ({"train": {"lr": 0.01}}) sets the keys it names and keeps the others."""
        raw = self.to_dict()
        for key, value in expand_sections(assignments).items():
            *parents, leaf = key.split(".")
            node = raw
            for part in parents:
                if not isinstance(node.get(part), dict) or part not in node:
                    raise ConfigError(f"unknown config key {key!r}; `lth presets --keys` lists them")
                node = node[part]
            if leaf not in node:
                raise ConfigError(f"unknown config key {key!r}; `lth presets --keys` lists them")
            node[leaf] = coerce(key, value, node[leaf])
        return ExperimentConfig.from_dict(raw)


# Fields added after 0.1.0 ((section, name); section "" is the top level), with the value every
# config had before the field existed: left out of the hash at that value, and assumed where a
# config (a run's config.json) does not name the field.
ADDED_LATER = {("train", "precision"): "fp32", ("train", "streams"): 1, ("data", "options"): {}}


def expand_sections(assignments: Mapping[str, Any]) -> dict[str, Any]:
    """{"train": '{"lr": 0.01}'} -> {"train.lr": 0.01}: a whole section sets only the keys it names
    (replacing the section would put code defaults in place of the preset's other values)."""
    expanded: dict[str, Any] = {}
    for key, value in assignments.items():
        if key.strip() not in SECTIONS:
            expanded[key] = value
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                value = None
        if not isinstance(value, Mapping):
            raise ConfigError(f"--set {key}=... takes a JSON object of {key}'s keys, e.g. --set '{key}={{\"KEY\": "
                              f"VALUE}}' (or --set {key}.KEY=VALUE); `lth presets --keys` lists them")
        expanded.update({f"{key.strip()}.{name}": v for name, v in value.items()})
    return expanded


def missing_keys(raw: Mapping[str, Any]) -> list[str]:
    """The keys a config file leaves out (but those added after 0.1.0, which mean what they meant
    before, and the preset label): read alone, they would silently take the code's defaults."""
    missing = []
    for key, _ in config_fields():
        *parents, leaf = key.split(".")
        node: Any = raw
        for part in parents:
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        if isinstance(node, Mapping) and leaf not in node and key != "preset" \
                and (".".join(parents), leaf) not in ADDED_LATER:
            missing.append(key)
    return missing


def config_hash(config: ExperimentConfig) -> str:
    return hashlib.sha256(config.canonical_json().encode()).hexdigest()[:16]


def validate(config: ExperimentConfig) -> None:
    check_types(config)  # first: the checks below compare and parse the values
    t, p = config.train, config.prune
    for key, f in config_fields():
        choices, bounds, what = f.metadata["choices"], f.metadata["bounds"], f.metadata["what"] or key
        value = value_of(config, key)
        if choices and value not in choices:
            raise ConfigError(f"unknown {what} {value!r}: use {', '.join(map(str, choices))}")
        if bounds:
            for name, v in (value.items() if isinstance(value, Mapping) else [(None, value)]):
                where = f" of {name!r}" if name is not None else ""
                if isinstance(v, float) and not math.isfinite(v):  # (inf is no learning rate, though above 0)
                    raise ConfigError(f"{what}{where} must be a finite number, got {v}")
                if v is not None and v not in Bounds.parse(bounds):
                    raise ConfigError(f"{what}{where} must be {Bounds.parse(bounds)}, got {v}")
    check_steps((t.iterations, t.warmup, t.eval_every, config.rewind, *t.lr_drops))
    if Step.parse(t.iterations).amount < 1:
        raise ConfigError("training length must be at least 1 iteration")
    if t.nesterov and (t.optimizer != "sgd" or t.momentum <= 0):
        raise ConfigError("Nesterov momentum needs --optimizer sgd with train.momentum above 0 (e.g. --set "
                          f"train.momentum=0.9), got {t.optimizer} with momentum {t.momentum}")
    if config.preset and not SAFE_LABEL.fullmatch(config.preset):
        raise ConfigError(f"preset label {config.preset!r} must be a plain name (letters, digits, _ . + -): it names "
                          "the report's folder")
    if p.strategy == "global" and p.layer_fractions:
        raise ConfigError("per-layer prune fractions only apply to layer-wise pruning; use `ignore` with global pruning")


def config_fields(cls: type = ExperimentConfig, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    """Every config field as (dotted key, field), in declaration order: the one list of options."""
    found = []
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            found += config_fields(type(default), f"{prefix}{f.name}.")
        else:
            found.append((prefix + f.name, f))
    return found


def value_of(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def describe_type(f: dataclasses.Field) -> str:
    """What a field takes, for `lth presets --keys` and errors."""
    if f.metadata.get("choices"):
        return " | ".join(map(str, f.metadata["choices"]))
    if f.metadata.get("bounds"):
        return f"{type_name(typing.get_type_hints(_owner(f))[f.name])}, each in {f.metadata['bounds']}" \
            if f.default_factory is dict else f"{type_name(scalar_type(f))} in {f.metadata['bounds']}"
    if f.metadata.get("metavar") == "STEP":
        return "a step: <n>it or <n>ep"
    return type_name(typing.get_type_hints(_owner(f))[f.name])


def scalar_type(f: dataclasses.Field) -> type:
    """int, float or str: what a command-line value of the field is parsed as (None left out)."""
    hint = typing.get_type_hints(_owner(f))[f.name]
    base = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return base[0] if base[0] in (int, float) else str


def _owner(f: dataclasses.Field) -> type:
    return next(cls for cls in (DataConfig, ModelConfig, TrainConfig, PruneConfig, ExperimentConfig)
                if f in fields(cls))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def section_key(section: Any) -> str:
    """A config section as a dict key (its mapping fields, e.g. model.options, are not hashable)."""
    return json.dumps(dataclasses.asdict(section), sort_keys=True)
