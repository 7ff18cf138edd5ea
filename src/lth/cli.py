"""The `lth` command line: parse flags, build a config, call the library, print a table or JSON.

Errors a user can cause print one line on stderr and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .config import ExperimentConfig
from .errors import ConfigError, LthError
from .options import (ExecutorOptions, RunOptions, add_executor_flags, add_run_flags, executor_flag_defaults,
                      executor_options_from_args, from_args as options_from_args)
from .store import CONFIG_FILE, DEFAULT_STORE
from .terminal import claims_json, print_claims, print_levels, print_runs

MAY_BE_EMPTY = {"baseline_rewinds"}  # '' means none; every other '' (--store '', --preset '') is refused


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
    """--preset, --config, one flag per config option that names one (config.option), and --set."""
    from .config import config_fields, scalar_type

    g = p.add_argument_group("experiment")
    g.add_argument("--preset", help="named preset with the papers' hyperparameters (see `lth presets`)")
    g.add_argument("--config", metavar="FILE", help="a JSON config (as in a run's config.json) instead of a preset")
    for key, f in config_fields():
        meta = f.metadata
        if meta.get("flag"):
            g.add_argument(meta["flag"], dest=_dest(key), type=scalar_type(f), choices=meta["choices"],
                           metavar=meta["metavar"] or (None if meta["choices"] else key.split(".")[-1].upper()),
                           help=f"{meta['help']} ({key})")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set train.warmup=1000it (repeatable; "
                   "`lth presets --keys` lists them)")


def _dest(key: str) -> str:
    return "config_" + key.replace(".", "_")


def _add_store_flag(p, default: str | None = DEFAULT_STORE) -> None:
    p.add_argument("--store", default=default, metavar="DIR", help=f"where runs are kept (default ./{DEFAULT_STORE})")


def _add_json_flag(p) -> None:
    p.add_argument("--json", action="store_true", help="print one machine-readable JSON object on stdout")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running")
    _add_store_flag(g)
    add_run_flags(g)  # lth.options.RunOptions: --data-root, --device, --checkpoint-every, --no-wait, ...
    _add_json_flag(g)


def _add_executor_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("executor", "fan the independent trainings out over processes or a SLURM cluster "
                             "(submitit); all jobs share --store, finished work is never redone")
    add_executor_flags(g)  # lth.options.ExecutorOptions: --executor, --workers, --gpus-per-job, ...


def _executor(args: argparse.Namespace) -> ExecutorOptions | None:
    """Where the command's jobs run: None inline (in this process), else --executor local/slurm's options."""
    if getattr(args, "executor", "inline") == "inline":
        return None
    return executor_options_from_args(args)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    from .config import expand_sections, missing_keys
    from .presets import get_preset

    if args.preset and args.config:
        raise ConfigError("give either --preset or --config, not both")
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"cannot read config file {args.config}: {type(exc).__name__}: {exc}") from None
        missing = missing_keys(raw) if isinstance(raw, dict) else []
        if missing:  # (read alone, they would take the code's defaults, not a preset's)
            raise ConfigError(f"config file {args.config} lacks {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
                              f"; give every key (`lth presets NAME` prints a whole config) or use --preset with --set")
        config = ExperimentConfig.from_dict(raw)
    else:
        config = get_preset(args.preset or "mnist1d_mlp")
    from .config import config_fields

    overrides: dict[str, Any] = {key: getattr(args, _dest(key)) for key, f in config_fields()
                                 if f.metadata.get("flag") and getattr(args, _dest(key), None) is not None}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    overrides = expand_sections(overrides)  # (--set 'train={...}' sets those keys of the preset's section)
    if config.model.options and "model.name" in overrides and overrides["model.name"] != config.model.name:
        overrides["model.options"] = {}  # options of the preset's model do not fit another model
    config = config.override(overrides) if overrides else config
    from .experiment import canonical
    from .replicas import check_replicas
    from .store import Store

    check_replicas(getattr(args, "replicas", "auto"), config.train.precision)  # (before any data is read)

    return canonical([config], Store(args.store), args.data_root)[0]  # steps in iterations: the runs' addresses


def _steps(text: str, flag: str = "--rewind-points") -> tuple[str, ...]:
    """Comma-separated steps (--rewind-points, --baseline-rewinds), each checked: `0it,50it,2ep`; only
    --baseline-rewinds may be empty (no extra chains)."""
    from .steps import check_steps

    steps = check_steps(part.strip() for part in text.split(",") if part.strip())
    if not steps and flag != "--baseline-rewinds":
        raise ConfigError(f"{flag} needs at least one step, e.g. 0it,50it; got {text!r}")
    return steps


def _parse_seeds(text: str | None, flag: str = "--seeds") -> list[int] | None:
    """Comma-separated distinct integers (seeds, levels)."""
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{flag} needs distinct integers, got {text!r}")
    return seeds


def seed_configs(config: ExperimentConfig, args: argparse.Namespace) -> list[ExperimentConfig]:
    """One config per --seeds entry (init seed = s, data-order seed = s), or just `config`."""
    seeds = _parse_seeds(getattr(args, "seeds", None))
    if seeds is None:
        return [config]
    if getattr(args, _dest("seed")) is not None or getattr(args, _dest("data_seed")) is not None:
        raise ConfigError("--seeds sets both seeds of each run; drop --seed/--data-seed")
    return [config.override({"seed": s, "data_seed": None}) for s in seeds]


def resolve_levels(config: ExperimentConfig, args: argparse.Namespace) -> int:
    if getattr(args, "target_weights", None) is not None and args.levels is not None:
        raise ConfigError("give --levels or --target-weights, not both (the target decides the levels)")
    if getattr(args, "target_weights", None) is not None:
        from .masks import levels_for_target
        from .models import build_model

        return levels_for_target(build_model(config.model.name, config.model.options, config.seed), config.prune,
                                 args.target_weights)
    from .plans import DEFAULT_LEVELS

    levels = DEFAULT_LEVELS if args.levels is None else args.levels
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    return levels


def _run_options(args: argparse.Namespace) -> RunOptions:
    return options_from_args(args, quiet=args.quiet or args.json)  # (--json: stdout is for the JSON)


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import PRESETS, get_preset, preset_rows

    if args.keys:  # every config option, from its one definition (config.option)
        from .config import config_fields, describe_type

        keys = [{"key": key, "type": describe_type(f), "flag": f.metadata.get("flag"), "help": f.metadata["help"]}
                for key, f in config_fields()]
        if args.json:
            print(json.dumps(keys, indent=2))
            return 0
        for row in keys:
            flag = f" ({row['flag']})" if row["flag"] else ""
            print(f"{row['key']:<22} {row['type']:<32} {row['help']}{flag}")
        return 0
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


def _report_levels(args: argparse.Namespace, config: ExperimentConfig, results: list, what: str) -> None:
    from .aggregate import aggregate_rows

    if len(results) == 1:
        levels, note = results[0].levels, f"trained {results[0].trained} level(s)"
    else:
        levels = aggregate_rows([r.levels for r in results], ["test_accuracy", "weights_remaining"])
        note = f"{len(results)} seeds, mean ± std; trained {sum(r.trained for r in results)} level(s)"
    if args.json:
        out = {"run_dir": results[0].run_dir, "levels": levels}
        if len(results) > 1:
            out["run_dirs"] = [r.run_dir for r in results]
        print(json.dumps(out))
        return
    runs = ", ".join(Path(r.run_dir).name for r in results)
    print_levels(levels, f"{what} {config.preset or config.model.name} (rewind {config.rewind}); "
                          f"run {runs} in {Path(results[0].run_dir).parent}; {note}")


def cmd_imp(args: argparse.Namespace) -> int:
    from .api import run_imp_many

    config = config_from_args(args)
    levels = 0 if args.command == "train" else resolve_levels(config, args)
    results = run_imp_many(seed_configs(config, args), levels, args.store, _run_options(args), _executor(args))
    _report_levels(args, config, results, "IMP" if levels else "dense")
    return 0


def cmd_branch(args: argparse.Namespace) -> int:
    from .api import run_branch_many

    config = config_from_args(args)
    levels = resolve_levels(config, args)
    results = run_branch_many(args.kind, seed_configs(config, args), levels, args.store,
                              options=_run_options(args), executor=_executor(args))
    _report_levels(args, config, results, f"branch {args.kind} of")
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    from .aggregate import aggregate_rows
    from .api import stability_sweep_many
    from .experiment import canonical_steps
    from .stability import StabilitySettings, find_rewind
    from .store import Store

    config = config_from_args(args)
    settings = StabilitySettings(args.interpolation_points, args.batch_norm)  # (checked before anything trains)
    asked = _steps(args.rewind_points or config.rewind)
    points = list(canonical_steps(asked, config, Store(args.store), args.data_root))
    per_seed = stability_sweep_many(seed_configs(config, args), args.level, points, args.store, settings=settings,
                                    options=_run_options(args), executor=_executor(args))
    metrics = ["test_accuracy", "pruning_l2", "pruning_l2_normalized", "pruning_angle", "data_order_l2",
               "data_order_l2_normalized", "data_order_angle", "barrier_test", "barrier_train"]
    rows = per_seed[0] if len(per_seed) == 1 else aggregate_rows(per_seed, metrics, key="rewind")
    found = find_rewind(rows, args.threshold) if args.find_rewind else None
    if args.json:
        print(json.dumps({"rows": rows, "find_rewind": found["rewind"] if found else None} if args.find_rewind
                         else {"rows": rows}))
        return 0
    first = rows[0]
    print(f"stability of the level-{args.level} ticket ({100 * first['weights_remaining']:.1f}% weights) of "
          f"{config.preset or config.model.name}; batch norm: {first['batch_norm']}"
          f"{'; mean of %d seeds' % len(per_seed) if len(per_seed) > 1 else ''}")
    print(f"{'rewind':>8}  {'ticket acc':>10}  {'prune L2':>9}  {'prune rel':>9}  {'prune °':>7}  "
          f"{'order L2':>9}  {'order rel':>9}  {'order °':>7}  {'barrier test':>12}  {'barrier train':>13}")
    for r in rows:
        print(f"{r['rewind']:>8}  {100 * r['test_accuracy']:>9.2f}%  {r['pruning_l2']:>9.3f}  {r['pruning_l2_normalized']:>9.3f}"
              f"  {r['pruning_angle']:>7.2f}  {r['data_order_l2']:>9.3f}  {r['data_order_l2_normalized']:>9.3f}"
              f"  {r['data_order_angle']:>7.2f}  {100 * r['barrier_test']:>11.2f}%  {100 * r['barrier_train']:>12.2f}%")
    if args.find_rewind:
        print(f"earliest stable rewind point (test barrier < {100 * args.threshold:.1f}%): "
              f"{found['rewind'] if found else 'none of ' + ','.join(points)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_ticket, find_run

    run_dir = find_run(args.store, args.run)
    suffix = ".safetensors" if args.format == "safetensors" else ".pt"
    out = args.out or f"ticket_{run_dir.name}_level{args.level}_{args.weights}{suffix}"
    path = export_ticket(run_dir, args.level, out, args.format, args.weights)
    print(json.dumps({"path": str(path)}) if args.json else f"wrote {path}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .report import write_report
    from .reproduce import check_plan, default_plan, plan_in_iterations, reproduce
    from .store import Store

    config = config_from_args(args)
    check_out_dir(Path(args.out) if args.out else Path(args.store) / "report", "--out")
    rewind_points = _steps(args.rewind_points) if args.rewind_points else None
    baseline_levels = _parse_seeds(args.baseline_levels, "--baseline-levels")
    baseline_rewinds = None if args.baseline_rewinds is None else _steps(args.baseline_rewinds, "--baseline-rewinds")
    seeds = _parse_seeds(args.seeds)
    plan = default_plan(config).edited(levels=args.levels, rewind_points=rewind_points,
                                       stability_level=args.stability_level,
                                       baseline_levels=None if baseline_levels is None else tuple(baseline_levels),
                                       baseline_rewinds=baseline_rewinds, seeds=tuple(seeds) if seeds else None)
    plan = plan_in_iterations(plan, config, Store(args.store), args.data_root)
    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    log(f"reproducing {config.preset or config.model.name}: levels 0..{plan.levels}, baselines, stability of level "
        f"{plan.stability_level} at rewind {','.join(plan.rewind_points)}; seeds {','.join(map(str, plan.seeds))}")
    check_plan(plan)
    began = time.perf_counter()
    summary = reproduce(config, plan, args.store, log=log, options=_run_options(args), executor=_executor(args))
    summary["seconds"] = round(time.perf_counter() - began, 1)
    reports = write_report(args.store, args.out, margin=args.margin / 100)
    if args.json:
        print(json.dumps({**summary, "reports": [str(r) for r in reports], "claims": claims_json(reports)}))
        return 0
    print_claims(reports)
    print(f"done in {summary['seconds']:.0f} s; report: {', '.join(str(r / 'report.html') for r in reports)}")
    return 0


def check_out_dir(out: Path, flag: str) -> None:
    """An output folder that can be written, checked before any work (naming --out, not the store)."""
    import tempfile

    if out.exists() and not out.is_dir():
        raise LthError(f"{flag} {out} is a file, not a folder; pass {flag} DIR")
    run_dir = next((d for d in (out.resolve(), *out.resolve().parents) if (d / CONFIG_FILE).is_file()), None)
    if run_dir is not None:  # (its files would mix with the run's)
        raise LthError(f"{flag} {out} lies inside the run directory {run_dir}; pass {flag} DIR outside the store's runs")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise LthError(f"cannot write to {flag} {out}: {exc.strerror or exc}; pass another {flag} DIR") from None


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    if args.target is not None and args.store is not None and Path(args.target) != Path(args.store):
        raise ConfigError(f"two stores given ({args.target} and --store {args.store}): name one")
    target = Path(args.target or args.store or DEFAULT_STORE)
    if not target.is_dir():
        raise LthError(f"no store at {target}: not a directory; name a store (or one run directory) to report on")
    check_out_dir(Path(args.out) if args.out else target / "report", "--out")
    reports = write_report(target, args.out, margin=args.margin / 100)
    if args.json:
        print(json.dumps({"reports": [str(r) for r in reports], "claims": claims_json(reports)}))
        return 0
    print_claims(reports)
    for report in reports:
        print(f"wrote {report}/report.md, report.html, claims.json, results.csv and figures")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from .kinds import DENSE
    from .store import Store

    if not Path(args.store).is_dir():  # ("no runs" would hide a mistyped path)
        raise LthError(f"no store at {args.store}: not a directory; pass --store DIR of an existing store")
    rows: list[dict[str, Any]] = []
    for run in Store(args.store).runs():
        done = run.levels_done()
        summaries = [run.summary(level) for level in done]
        executions: list[dict[str, Any]] = []  # the distinct ways its levels were run (older summaries record none)
        for s in summaries:
            if "execution" in s and s["execution"] not in executions:
                executions.append(s["execution"])
        rows.append({"run": run.hash, "preset": run.config.preset, "kind": run.config.kind,
                     "rewind": None if run.config.kind == DENSE else run.config.rewind,  # (it saves every chain's)
                     "seed": run.config.seed, "data_seed": run.config.order_seed, "levels_done": len(done),
                     "best_accuracy": max((s["test_accuracy"] for s in summaries), default=None),
                     "min_weights": min((s["weights_remaining"] for s in summaries), default=None),
                     "executions": executions, "status": run.status(), "dir": str(run.dir)})
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no runs in {args.store}")
        return 0
    print_runs(rows)
    return 0


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the margin is a number of points of accuracy, got {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"the margin is in points of accuracy, in (0, 100); got {text}")
    return value


def _add_margin_flag(p: argparse.ArgumentParser) -> None:
    from .claims import DEFAULT_MARGIN

    p.add_argument("--margin", type=_margin, default=100 * DEFAULT_MARGIN, metavar="POINTS",
                   help="the equivalence margin of 'matches' claims and of 'no winning ticket' (TOST), and the "
                   f"non-inferiority margin of 'matches or beats dense', in points (default {100 * DEFAULT_MARGIN:g})")


def _add_level_flags(p: argparse.ArgumentParser) -> None:
    from .plans import DEFAULT_LEVELS

    p.add_argument("--levels", type=int, help=f"pruning levels after the dense level 0 (default {DEFAULT_LEVELS})")
    p.add_argument("--target-weights", type=_fraction, metavar="F",
                   help="instead of --levels: prune until at most this fraction of weights remains")
    p.add_argument("--seeds", metavar="S,S,...", help="run each seed (init and data order) and report mean ± std")


def _version() -> str:
    import torch

    from . import __version__

    return f"lth {__version__} (torch {torch.__version__}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    from .kinds import BRANCHES

    parser = _Parser(prog="lth", description="Lottery tickets at scale: iterative magnitude pruning with rewinding, "
                     "baselines and stability analysis. Start with `lth presets`, then `lth imp --preset mnist1d_mlp`.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("presets", help="list the presets, or print one's full config",
                       description="List presets (model, dataset, parameter count, training length), or print one's config.")
    p.add_argument("name", nargs="?", help="print this preset's full config as JSON")
    p.add_argument("--keys", action="store_true", help="list every config key (for --set KEY=VALUE): its type, "
                   "meaning and flag")
    _add_json_flag(p)
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train the dense network once (IMP level 0)",
                       description="Train the dense network (level 0 of an IMP run) and store it.")
    _add_config_flags(p)
    _add_run_flags(p)
    p.set_defaults(func=cmd_imp)

    p = sub.add_parser("imp", help="iterative magnitude pruning with rewinding",
                       description="Train, prune --prune-fraction of the remaining weights by magnitude, rewind the "
                       "survivors to --rewind, retrain; --levels times. Finished levels are read from the store. "
                       "One-shot pruning: --levels 1 --prune-fraction 0.7.")
    _add_level_flags(p)
    _add_config_flags(p)
    _add_run_flags(p)
    _add_executor_flags(p)
    p.set_defaults(func=cmd_imp)

    p = sub.add_parser("branch", help="baselines on an IMP run: reset-init, reinit, random-prune, data-order, "
                       "pruning at init (snip, grasp, synflow, magnitude-init)",
                       description="Train a baseline at every level of the IMP run of the same config (running the IMP "
                       "levels first if missing). reset-init: ticket mask, initial weights, from step 0. reinit: ticket "
                       "mask, fresh random weights, from step 0. random-prune: random mask with the ticket's per-layer "
                       "counts, rewound weights. data-order: the ticket retrained with another data order. "
                       "Pruning at initialization [PaI], one shot from the rewound weights W_k to the ticket's count of "
                       "weights, trained from step k: magnitude-init (|w|), snip (|w dL/dw| on the first training "
                       "batch), grasp (keeps the lowest -w Hg; logits / 200), synflow (100 data-free rounds); all rank "
                       "globally over the prunable layers (less prune.ignore), as their papers do. Sanity checks: "
                       "METHOD+shuffle (mask shuffled within each layer), METHOD+reinit (fresh weights), METHOD+invert "
                       "(keep what the method prunes first).")
    p.add_argument("kind", choices=BRANCHES, metavar="KIND", help=f"one of: {', '.join(BRANCHES)}")
    _add_level_flags(p)
    _add_config_flags(p)
    _add_run_flags(p)
    _add_executor_flags(p)
    p.set_defaults(func=cmd_branch)

    p = sub.add_parser("stability", help="stability to pruning and data order, linear mode connectivity",
                       description="For the level-L ticket found with each rewind point: L2 distance and angle to the "
                       "dense network (stability to pruning) and to a copy trained with another data order "
                       "(stability to data order), and the error barrier on the straight line between the copies.")
    from .stability import BARRIER_THRESHOLD, BATCH_NORM, BATCH_NORM_MODES, POINTS, STABILITY_LEVEL

    p.add_argument("--level", type=int, default=STABILITY_LEVEL,
                   help=f"the IMP level whose ticket is measured (default {STABILITY_LEVEL}, as in a study plan)")
    p.add_argument("--rewind-points", metavar="STEPS", help="comma-separated rewind steps, e.g. 0it,50it,200it "
                   "(default: the preset's rewind step)")
    p.add_argument("--interpolation-points", type=int, default=POINTS,
                   help=f"alphas on the linear path (default {POINTS})")
    p.add_argument("--batch-norm", choices=BATCH_NORM_MODES, default=BATCH_NORM,
                   help=f"at each alpha, recompute BN statistics on training data or interpolate them (default {BATCH_NORM})")
    p.add_argument("--find-rewind", action="store_true", help="report the earliest rewind point with a barrier "
                   "below --threshold")
    p.add_argument("--threshold", type=float, default=BARRIER_THRESHOLD,
                   help=f"barrier threshold as a fraction (default {BARRIER_THRESHOLD})")
    p.add_argument("--seeds", metavar="S,S,...", help="run each seed and report mean ± std")
    _add_config_flags(p)
    _add_run_flags(p)
    _add_executor_flags(p)
    p.set_defaults(func=cmd_stability)
    p = sub.add_parser("reproduce", help="the paper's study in one command: IMP, baselines, stability sweep, report",
                       description="For each seed: IMP with the preset's rewind step, the baselines reset-init, reinit "
                       "and random-prune (also off the chains of --baseline-rewinds, e.g. 0it beside the preset's k), "
                       "and stability at each rewind point; then `lth report` and the papers' claims judged against "
                       "the noise of the seeds (printed at the end). Everything already in the store is skipped.")
    p.add_argument("--levels", type=int, help="pruning levels (default: the preset's study plan)")
    p.add_argument("--rewind-points", metavar="STEPS", help="rewind points of the stability sweep, e.g. 0it,50it,200it")
    p.add_argument("--stability-level", type=int, help="the level whose ticket's stability is measured")
    p.add_argument("--baseline-rewinds", metavar="STEPS", help="rewind points whose IMP chains also get every "
                   "baseline, besides the preset's own rewind step, e.g. 0it to contrast resetting with rewinding "
                   "(default: the preset's study plan; '' for none)")
    p.add_argument("--baseline-levels", metavar="L,L,...", help="train the baselines at these levels only, e.g. "
                   "4,7,10 (default: the preset's study plan; most plans: every level)")
    p.add_argument("--seeds", metavar="S,S,...", help="seeds (default: the preset's study plan, e.g. 0,...,14 for "
                   "mnist1d_mlp_scale, 0,1,2 for mnist1d_mlp; 0 for presets without one)")
    p.add_argument("--out", metavar="DIR", help="report directory (default <store>/report)")
    _add_margin_flag(p)
    _add_config_flags(p)
    _add_run_flags(p)
    _add_executor_flags(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("report", help="tables and figures from the store",
                       description="Write accuracy_vs_weights.png, early_stopping.png, stability_vs_rewind.png, "
                       "accuracy_vs_stability.png, interpolation.png, report.md, report.html, claims.json and results.csv for each study in a store. "
                       "The report opens with the papers' claims that the study can test, each judged from the "
                       "paired differences over seeds and judged with the study's other claims as one family (Holm): "
                       "holds / contradicted / undecided, or for a 'matches' claim equivalent / not equivalent / "
                       "undecided within --margin.")
    p.add_argument("target", nargs="?", help=f"a store or one run directory (default: --store, ./{DEFAULT_STORE})")
    _add_store_flag(p, default=None)
    p.add_argument("--out", metavar="DIR", help="output directory (default <store>/report)")
    _add_margin_flag(p)
    _add_json_flag(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("ls", help="list the runs in a store", description="List runs: hash, preset, kind, rewind, "
                       "seed, levels done, best accuracy, status: ok, locked/running, interrupted (rerun to resume) or "
                       "failed (with its error and log).")
    _add_store_flag(p)
    _add_json_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("export", help="write a ticket (mask + weights) for plain PyTorch",
                       description="Export one level of a stored run: --format torch-prune writes a state_dict in "
                       "torch.nn.utils.prune's form (weight_orig + weight_mask); --format safetensors writes weights/* "
                       "and masks/*. Load either with lth.load_ticket(path, model).")
    p.add_argument("run", help="run directory, or its hash (a unique prefix will do) in --store")
    p.add_argument("--level", type=int, required=True, help="the pruning level to export (0: the dense network)")
    p.add_argument("--format", choices=["torch-prune", "safetensors"], default="safetensors",
                   help="file format (default safetensors)")
    p.add_argument("--weights", choices=["final", "rewind"], default="final",
                   help="the trained weights, or the rewound weights the ticket trains from")
    p.add_argument("--out", metavar="FILE", help="output file (default ticket_<run>_level<L>_<weights>.<ext>)")
    _add_store_flag(p)
    _add_json_flag(p)
    p.set_defaults(func=cmd_export)
    return parser


def check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot see: empty values, executor flags that inline would ignore, numbers out of range."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if action.dest not in MAY_BE_EMPTY and (value == "" or (isinstance(value, list) and "" in value)):
            name = action.option_strings[-1] if action.option_strings else action.dest.upper()
            raise ConfigError(f"{name} is empty; give it a value or leave it out")
    if getattr(args, "executor", None) == "inline":
        given = [flag for key, (flag, default) in executor_flag_defaults().items() if getattr(args, key) != default]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to --executor local or slurm (inline trains in this "
                              "process; for several GPUs run it under torchrun)")
    for key in ("workers", "cpus_per_job", "timeout_min", "slurm_array_parallelism", "interpolation_points"):
        if getattr(args, key, None) is not None and getattr(args, key) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}")
    if getattr(args, "gpus_per_job", 0) < 0:
        raise ConfigError(f"--gpus-per-job must be 0 or more, got {args.gpus_per_job}")
    if getattr(args, "threshold", None) is not None and not 0 <= args.threshold < 1:  # (nan fails both)
        raise ConfigError(f"--threshold is a barrier as a fraction of accuracy, in [0, 1); got {args.threshold}")
    if getattr(args, "level", None) is not None and args.level < 0:
        raise ConfigError(f"--level must be 0 or more, got {args.level}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_flags(parser, args)
        if hasattr(args, "device"):
            from .distributed import init_from_env, is_main

            args.device = init_from_env(args.device)
            if not is_main():  # one rank speaks for all
                args.quiet = True
                sys.stdout = open(os.devnull, "w")
        return args.func(args)
    except LthError as exc:
        print(f"lth: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lth: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lth ls | head`: the reader left; nothing is lost
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
