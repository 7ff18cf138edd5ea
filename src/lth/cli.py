"""The `lth` command line: parse flags, build a config, call the library, print a table or JSON.

Errors a user can cause print one line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .config import ExperimentConfig
from .errors import ConfigError, LthError
from .store import DEFAULT_STORE, read_json


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return value


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("experiment")
    g.add_argument("--preset", help="named preset with the papers' hyperparameters (see `lth presets`)")
    g.add_argument("--config", metavar="FILE", help="a JSON config (as in a run's config.json) instead of a preset")
    g.add_argument("--model", help="registry name or package.module:factory returning an nn.Module")
    g.add_argument("--dataset", help="dataset name: mnist1d, mnist, cifar10, cifar100, imagenet")
    g.add_argument("--seed", type=int, help="initialisation seed (default 0)")
    g.add_argument("--data-seed", type=int, help="data-order seed (default: the init seed)")
    g.add_argument("--rewind", metavar="STEP", help="rewind step, e.g. 0it (reset to init), 500it, 6ep")
    g.add_argument("--prune-fraction", type=_fraction, metavar="F", help="fraction of remaining weights pruned per level")
    g.add_argument("--prune-strategy", choices=["layerwise", "global"])
    g.add_argument("--iterations", metavar="STEP", help="training length, e.g. 1500it or 160ep")
    g.add_argument("--lr", type=float, help="base learning rate")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--optimizer", choices=["sgd", "adam"])
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set train.warmup=1000it (repeatable)")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running")
    g.add_argument("--store", default=DEFAULT_STORE, metavar="DIR", help=f"where runs are kept (default ./{DEFAULT_STORE})")
    g.add_argument("--data-root", metavar="DIR", help="directory holding the dataset files (not needed for mnist1d)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: cuda if available")
    g.add_argument("--checkpoint-every", default="1ep", metavar="STEP",
                   help="save the full training state this often so a killed run resumes (default 1ep)")
    g.add_argument("--json", action="store_true", help="print one machine-readable JSON object on stdout")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


FLAG_FIELDS = {"model": "model.name", "dataset": "data.dataset", "seed": "seed", "data_seed": "data_seed",
               "rewind": "rewind", "prune_fraction": "prune.fraction", "prune_strategy": "prune.strategy",
               "iterations": "train.iterations", "lr": "train.lr", "batch_size": "train.batch_size",
               "optimizer": "train.optimizer"}


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    from .presets import get_preset

    if args.preset and args.config:
        raise ConfigError("give either --preset or --config, not both")
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config file {args.config}: {exc}") from None
        config = ExperimentConfig.from_dict(raw)
    else:
        config = get_preset(args.preset or "mnist1d_mlp")
    overrides: dict[str, Any] = {key: getattr(args, flag) for flag, key in FLAG_FIELDS.items()
                                 if getattr(args, flag, None) is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    if config.model.options and "model.name" in overrides and overrides["model.name"] != config.model.name:
        overrides["model.options"] = {}  # options of the preset's model do not fit another model
    return config.override(overrides) if overrides else config


def _print_levels(levels: list[dict[str, Any]], title: str) -> None:
    print(title)
    print(f"{'level':>5}  {'% weights':>10}  {'test acc':>8}  {'iterations':>10}  {'seconds':>8}")
    for row in levels:
        print(f"{row['level']:>5}  {100 * row['weights_remaining']:>9.2f}%  {100 * row['test_accuracy']:>7.2f}%"
              f"  {row['iterations']:>10}  {row['seconds']:>8.1f}")


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import PRESETS, get_preset, preset_rows

    if args.name:
        print(json.dumps(get_preset(args.name).to_dict(), indent=2))
        return 0
    rows = preset_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'preset':<18} {'model':<14} {'dataset':<9} {'params':>11} {'training':>9}  description")
    for row in rows:
        print(f"{row['name']:<18} {row['model']:<14} {row['dataset']:<9} {row['parameters']:>11,} {row['iterations']:>9}  "
              f"{PRESETS[row['name']].description}")
    return 0


def cmd_imp(args: argparse.Namespace) -> int:
    from .imp import run_imp

    config = config_from_args(args)
    levels = 0 if args.command == "train" else args.levels
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    result = run_imp(config, levels, args.store, data_root=args.data_root, device=args.device,
                     quiet=args.quiet or args.json, checkpoint_every=args.checkpoint_every)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        where = f"run {Path(result.run_dir).name} in {Path(result.run_dir).parent}"
        note = f"trained {result.trained} level(s)" if result.trained else "all levels read from the store"
        _print_levels(result.levels, f"{config.preset or config.model.name}: {where} ({note}); rewind {config.rewind}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lth", description="Lottery tickets at scale: iterative magnitude pruning with rewinding, "
                     "baselines and stability analysis. Start with `lth presets`, then `lth imp --preset mnist1d_mlp`.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("presets", help="list the presets, or print one's full config",
                       description="List presets (model, dataset, parameter count, training length), or print one's config.")
    p.add_argument("name", nargs="?", help="print this preset's full config as JSON")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train the dense network once (IMP level 0)",
                       description="Train the dense network (level 0 of an IMP run) and store it.")
    _add_config_flags(p)
    _add_run_flags(p)
    p.set_defaults(func=cmd_imp)

    p = sub.add_parser("imp", help="iterative magnitude pruning with rewinding",
                       description="Train, prune --prune-fraction of the remaining weights by magnitude, rewind the "
                       "survivors to --rewind, retrain; --levels times. Finished levels are read from the store.")
    p.add_argument("--levels", type=int, default=5, help="pruning levels after the dense level 0 (default 5)")
    _add_config_flags(p)
    _add_run_flags(p)
    p.set_defaults(func=cmd_imp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LthError as exc:
        print(f"lth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lth: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
