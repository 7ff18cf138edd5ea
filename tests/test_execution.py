"""How a run was executed (threads, device, precision, stacking, versions): recorded per level,
shown by `lth ls`, and a warning when a run is resumed or extended with other settings."""
import json
import sys

import pytest
import torch

import lth
from lth import run_imp
from lth.cli import main
from lth.hardware import blas, cpu_model, hardware
from lth.dense import dense_config
from lth.report import write_report
from lth.options import RunOptions
from conftest import tiny_config

TRAIN_MODULE = sys.modules["lth.train"]  # (`lth.train` is the function)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_each_level_records_how_it_was_executed_and_ls_shows_it(tmp_path, mnist1d, capsys, threads):
    torch.set_num_threads(2)
    result = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert result.levels[1]["execution"] == {"processes": 1, "device": "cpu", "precision": "fp32", "replicas": 1,
                                             "threads": 2, "compile": False, "torch": torch.__version__,
                                             "lth": lth.__version__, "hardware": hardware(),
                                             "replicas_why": "one training"}
    assert hardware() == f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}, {blas()})"
    assert cpu_model() and blas() in torch.__config__.show()
    assert "warning" not in capsys.readouterr().err  # trained in one go: nothing to warn about
    torch.set_num_threads(1)
    extended = run_imp(tiny_config(), 2, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert extended.levels[2]["execution"]["threads"] == 1 and extended.levels[1]["execution"]["threads"] == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lth: warning: run {tiny_config().hash()} level 2 runs with other "
                                               "settings than level 1 (threads 2 -> 1)")
    assert main(["ls", "--store", str(tmp_path)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(tiny_config().hash())]
    here = f"torch {torch.__version__} lth {lth.__version__} on {hardware()}"
    assert line.endswith(f"ok; cpu 2thr fp32 {here} | cpu 1thr fp32 {here} (levels differ)")
    assert main(["ls", "--store", str(tmp_path), "--json"]) == 0
    [row] = [row for row in json.loads(capsys.readouterr().out) if row["run"] == tiny_config().hash()]
    assert [e["threads"] for e in row["executions"]] == [2, 1]


def test_a_level_resumed_with_other_settings_warns(tmp_path, mnist1d, capsys, monkeypatch, threads):
    config = tiny_config(rewind="0it")
    real_record = TRAIN_MODULE._record

    def interrupted_at_40(model, data, device, iteration, *rest):
        if iteration == 40:
            raise KeyboardInterrupt  # a kill after the resume file of iteration 20 was saved
        return real_record(model, data, device, iteration, *rest)

    torch.set_num_threads(2)
    monkeypatch.setattr(TRAIN_MODULE, "_record", interrupted_at_40)
    with pytest.raises(KeyboardInterrupt):
        run_imp(config, 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d, checkpoint_every="20it"))
    level = tmp_path / dense_config(config).hash() / "level_0"  # (the dense run, which IMP's level 0 adopts)
    assert (level / "resume.pt").exists() and json.loads((level / "execution.json").read_text())["threads"] == 2
    monkeypatch.setattr(TRAIN_MODULE, "_record", real_record)
    torch.set_num_threads(1)
    run_imp(config, 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d, checkpoint_every="20it"))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "level 0 runs with other settings than level 0 before it was interrupted " \
        "(threads 2 -> 1)" in err[0]
    assert json.loads((level / "summary.json").read_text())["execution"]["threads"] == 1


def _move_to_other_hardware(run_dir, level: int, name: str = "Other CPU (AVX2, openblas)") -> None:
    """Rewrite a level's execution record as if it had been computed on another machine."""
    from lth.store import read_json, write_json

    path = run_dir / f"level_{level}" / "summary.json"
    summary = read_json(path)
    summary["execution"]["hardware"] = name
    path.unlink()  # (adopted levels are hard links: write a file of this run's own)
    write_json(path, summary)  # (with its checksum: an edit by hand is a damaged file)


def test_extending_or_comparing_runs_from_other_hardware_warns(tmp_path, mnist1d, capsys):
    config = tiny_config()
    first = run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    _move_to_other_hardware(tmp_path / config.hash(), 1)
    capsys.readouterr()
    run_imp(config, 2, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"hardware Other CPU (AVX2, openblas) -> {hardware()}" in err[0], err
    assert main(["ls", "--store", str(tmp_path)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(config.hash())]
    assert "on Other CPU (AVX2, openblas)" in line and f"on {hardware()}" in line and "(levels differ)" in line
    (report,) = write_report(tmp_path, tmp_path / "report")
    claims = json.loads((report / "claims.json").read_text())
    assert sorted(claims["hardware"]) == sorted([hardware(), "Other CPU (AVX2, openblas)"])
    [warning] = [w for w in claims["warnings"] if "different hardware" in w]
    assert "Other CPU (AVX2, openblas)" in warning and "\n" not in warning
    assert "Computed on: " in (report / "report.md").read_text() and first.trained == 1  # (level 0: the dense run)
