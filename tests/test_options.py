"""Each config option is defined once (config.option): its flag, --set coercion, validation,
`lth presets --keys` and the flag list of docs/commands.md all come from that definition."""
import inspect
import json
from pathlib import Path

import pytest

from lth.cli import main
from lth.config import Bounds, config_fields, scalar_type
from lth.options import RunOptions

COMMANDS_DOC = (Path(__file__).parent.parent / "docs" / "commands.md").read_text()
FLAGS = {key: f.metadata["flag"] for key, f in config_fields() if f.metadata["flag"]}
BAD_VALUES = {int: "abc", float: "abc", bool: "maybe"}


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's own checks
        return exit.code


def test_every_flag_is_generated_and_listed_in_the_commands_doc(capsys):
    assert set(FLAGS.values()) >= {"--lr", "--seed", "--rewind", "--prune-fraction", "--optimizer", "--precision"}
    with pytest.raises(SystemExit):
        main(["imp", "--help"])
    help_text = capsys.readouterr().out
    commands = COMMANDS_DOC[COMMANDS_DOC.index("## Commands"):COMMANDS_DOC.index("| command |")]
    for key, flag in FLAGS.items():
        assert flag in help_text and f"({key})" in " ".join(help_text.split()), flag
        assert f"`{flag}" in commands, f"docs/commands.md's flag list lacks {flag}"


def test_presets_keys_lists_every_option_with_its_type(capsys):
    assert main(["presets", "--keys", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["key"] for row in listed] == [key for key, _ in config_fields()]
    by_key = {row["key"]: row for row in listed}
    assert by_key["train.optimizer"]["type"] == "sgd | adam" and by_key["train.lr"]["flag"] == "--lr"
    assert by_key["rewind"]["type"] == "a step: <n>it or <n>ep"
    assert all(row["help"] for row in listed)


@pytest.mark.parametrize("key, f", [(key, f) for key, f in config_fields() if key not in ("kind", "preset")],
                         ids=[key for key, _ in config_fields() if key not in ("kind", "preset")])
def test_a_bad_value_for_any_option_exits_2_with_one_line(key, f, tmp_path, capsys):
    if f.metadata["choices"]:
        bad = "bogus"
    elif f.metadata["metavar"] == "STEP":
        bad = "5parsecs"
    elif scalar_type(f) is not str or isinstance(f.default, bool):
        bad = BAD_VALUES[bool if isinstance(f.default, bool) else scalar_type(f)]
    elif key in ("data.dataset", "model.name"):
        bad = "no_such_thing"
    else:  # mappings and lists: a value of the wrong shape
        bad = '{"x": "y"}' if key.endswith(("options", "layer_fractions")) and key != "model.options" else '"x"'
    code = _exit_code(["imp", "--levels", "0", "--iterations", "1it", "--store", str(tmp_path / "s"),
                       "--set", f"{key}={bad}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("lth"), (key, err)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").glob("*/level_0/summary.json"))


BOUNDED = [(key, f) for key, f in config_fields() if f.metadata["bounds"]]


@pytest.mark.parametrize("key, f", BOUNDED, ids=[key for key, _ in BOUNDED])
def test_a_value_outside_an_options_bounds_exits_2_naming_them(key, f, tmp_path, capsys):
    bounds = Bounds.parse(f.metadata["bounds"])
    outside = bounds.low if not bounds.low_closed else bounds.low - 1  # the first value below the interval
    inside = bounds.low + 0.5 if bounds.high == float("inf") else (bounds.low + bounds.high) / 2
    assert outside not in bounds and inside in bounds
    value = json.dumps({"output": outside}) if f.default_factory is dict else repr(scalar_type(f)(outside))
    code = _exit_code(["imp", "--levels", "0", "--iterations", "1it", "--store", str(tmp_path / "s"),
                       "--set", f"{key}={value}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{f.metadata['what']}" in err[0] and f"must be {bounds}" in err[0], err


def test_bounds_read_as_intervals():
    assert [v in Bounds.parse("(0, 1)") for v in (0, 0.5, 1)] == [False, True, False]
    assert [v in Bounds.parse("[1, inf)") for v in (0, 1, 10**9)] == [False, True, True]
    assert str(Bounds.parse("(0, inf)")) == "positive" and str(Bounds.parse("[0, 1)")) == "in [0, 1)"


def test_run_options_are_defined_once_and_reach_the_run_functions(tmp_path, mnist1d, capsys):
    """lth.options.RunOptions: its flagged fields are the CLI's running flags; the run functions take it as
    one record and show it in their signature; an unknown keyword is an error, not silently ignored."""
    from dataclasses import fields

    from conftest import tiny_config
    from lth import api
    from lth.api import run_imp
    from lth.reproduce import reproduce

    with pytest.raises(SystemExit):
        main(["imp", "--help"])
    help_text = capsys.readouterr().out
    flagged = [f.metadata["flag"] for f in fields(RunOptions) if f.metadata["flag"]]
    assert flagged == ["--data-root", "--device", "--checkpoint-every", "--no-wait", "--compile", "--replicas", "--quiet"]
    assert all(flag in help_text for flag in flagged)
    assert all(f"`{flag}" in COMMANDS_DOC for flag in flagged)
    whole = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert capsys.readouterr().err == ""  # quiet: no progress bar
    again = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(data=mnist1d).replace(quiet=True))
    assert whole.trained == 1 and again.trained == 0 and whole.run_dir == again.run_dir  # read, not retrained
    runs = [getattr(api, name) for name in dir(api) if name.startswith(("run_", "measure_", "stability_"))
            and getattr(api, name).__module__ == "lth.api"]
    assert len(runs) == 8  # run_imp, run_branch, measure_stability, stability_sweep and their _many forms
    for run in (*runs, reproduce):
        parameters = inspect.signature(run).parameters  # no keyword bag: every parameter is shown
        assert parameters["options"].annotation in (RunOptions, "RunOptions"), run.__name__
        assert parameters["executor"].annotation in ("ExecutorOptions | None",), run.__name__
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values()), run.__name__
    run_imp(tiny_config(), 2, tmp_path, options=RunOptions(data=mnist1d, quiet=False))
    assert "imp level 2" in capsys.readouterr().err  # not quiet: level 2's progress bar
    with pytest.raises(TypeError):
        run_imp(tiny_config(), 0, tmp_path, quite=True, options=RunOptions(data=mnist1d))  # a typo is an error
    with pytest.raises(TypeError):
        run_imp(tiny_config(), 0, tmp_path, quiet=True)  # how runs execute travels as one RunOptions


EXECUTOR_FLAGS = {"--workers": "3", "--gpus-per-job": "1", "--cpus-per-job": "4", "--timeout-min": "30",
                  "--slurm-partition": "gpu", "--slurm-array-parallelism": "8", "--slurm-option": "--qos=high"}


def test_executor_options_are_defined_once_and_are_the_executor_flags(capsys):
    """lth.options.ExecutorOptions: its flagged fields are the CLI's executor flags (beside --executor, which
    picks its kind), their parsed defaults are its own, and --executor inline refuses each of them."""
    from dataclasses import fields

    from lth.cli import build_parser, check_flags
    from lth.errors import ConfigError
    from lth.executors import ExecutorOptions as FromExecutors
    from lth.options import ExecutorOptions, executor_options_from_args

    assert FromExecutors is ExecutorOptions  # (still importable where it was)
    with pytest.raises(SystemExit):
        main(["imp", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    flagged = [f.metadata["flag"] for f in fields(ExecutorOptions) if f.metadata["flag"]]
    assert flagged == list(EXECUTOR_FLAGS)
    assert all(flag in help_text for flag in ["--executor {inline,local,slurm}", *flagged])
    assert "--workers WORKERS local: trainings at once (default 2)" in help_text  # (the default, from the field)
    assert "most jobs of one submitted array running at once (default 256)" in help_text
    parser = build_parser()
    assert executor_options_from_args(parser.parse_args(["imp", "--executor", "local"])) == ExecutorOptions()
    given = [f"{flag}={value}" for flag, value in EXECUTOR_FLAGS.items()]  # (--slurm-option=--qos=high: KEY's -- dropped)
    options = executor_options_from_args(parser.parse_args(["imp", "--executor", "local", *given,
                                                            "--slurm-option", "account=proj"]))
    assert options == ExecutorOptions("local", workers=3, gpus_per_job=1, cpus_per_job=4, timeout_min=30,
                                      slurm_partition="gpu", slurm_array_parallelism=8,
                                      slurm_options={"qos": "high", "account": "proj"})
    for flag, value in EXECUTOR_FLAGS.items():  # inline has no use for any of them
        with pytest.raises(ConfigError, match=f"^{flag} only apply to --executor local or slurm"):
            check_flags(parser, parser.parse_args(["imp", f"{flag}={value}"]))
    with pytest.raises(ConfigError, match="--slurm-option takes KEY=VALUE, got 'account'"):
        executor_options_from_args(parser.parse_args(["imp", "--executor", "local", "--slurm-option", "account"]))
