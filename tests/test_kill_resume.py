"""SIGKILL a real `lth imp` process mid-training, rerun the same command: the final weights are
bit-identical to an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lth.store import load_tensors

ARGS = ["imp", "--levels", "1", "--quiet", "--iterations", "600it", "--rewind", "20it", "--checkpoint-every", "50it",
        "--set", "model.options={\"hidden\": 64}", "--set", "train.eval_every=100it", "--json"]


# one thread per process: two busy-waiting OpenMP pools on 2 cores slow everything down ~30x
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _lth(store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lth", *ARGS, "--store", str(store), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _finals(store: Path) -> list[dict[str, torch.Tensor]]:
    (run,) = [p for p in store.iterdir() if (p / "config.json").exists()
              and json.loads((p / "config.json").read_text())["kind"] == "imp"]  # (not the dense run it adopted)
    return [load_tensors(run / f"level_{level}" / "final.safetensors") for level in (0, 1)]


def _killed_and_resumed(tmp_path: Path, resume_file: str, *extra: str) -> Path:
    """Run to the end in one store; in another, SIGKILL the same command once level 1 has written
    `resume_file` (mid-level, after level 0 finished), then rerun it there. Returns that store."""
    reference = _lth(tmp_path / "reference", *extra)
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    store = tmp_path / "killed"
    process = _lth(store, *extra)
    deadline = time.time() + 120
    while not list(store.glob(f"*/level_1/{resume_file}")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; lower the checkpoint cadence"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(store.glob("*/level_1/summary.json"))
    listing = subprocess.run([sys.executable, "-m", "lth", "ls", "--store", str(store)], capture_output=True, text=True,
                             env=ENV)
    assert "interrupted in level 1 (rerun the command to resume)" in listing.stdout
    resumed = _lth(store, *extra)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    return store


@pytest.mark.slow
def test_a_sigkilled_imp_run_resumes_to_the_same_bits(tmp_path):
    store = _killed_and_resumed(tmp_path, "resume.pt")
    for expected, got in zip(_finals(tmp_path / "reference"), _finals(store)):
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.slow
def test_a_run_killed_before_its_first_resume_file_restarts_the_level_to_the_same_bits(tmp_path):
    store = _killed_and_resumed(tmp_path, "start.safetensors", "--checkpoint-every", "auto")  # (every 2 minutes)
    for expected, got in zip(_finals(tmp_path / "reference"), _finals(store)):
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.slow
def test_a_sigkilled_stacked_group_resumes_to_the_same_bits(tmp_path):
    """Two seeds trained as stacked replicas keep one resume file for the group."""
    store = _killed_and_resumed(tmp_path, "resume_group_*.pt", "--seeds", "0,1", "--replicas", "2")
    finals = sorted(p.relative_to(store) for p in store.glob("*/level_*/final.safetensors"))
    assert len(finals) == 6 and not list(store.glob("*/level_*/resume*.pt"))  # 2 dense runs, 2 IMP runs x 2 levels
    for name in finals:
        expected, got = load_tensors(tmp_path / "reference" / name), load_tensors(store / name)
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    summary = json.loads(next(store.glob("*/level_1/summary.json")).read_text())
    assert summary["replicas"] == 2


@pytest.mark.slow
def test_no_wait_names_the_holder_of_the_run(tmp_path):
    from lth.cli import build_parser, config_from_args
    from lth.store import Store

    config = config_from_args(build_parser().parse_args(ARGS))
    run = Store(tmp_path).run(config).create()
    with run.training([0]):  # this test process holds the run
        impatient = _lth(tmp_path, "--no-wait")
        assert impatient.wait(timeout=120) == 2
        assert f"being trained by another process (pid {os.getpid()}" in impatient.stderr.read()
    assert not run.levels_done()


@pytest.mark.slow
def test_a_second_process_on_the_same_run_waits_and_trains_nothing(tmp_path):
    store = tmp_path / "shared"
    first = _lth(store)
    deadline = time.time() + 120
    while not list(store.glob("*/level_0.owner.json")) and time.time() < deadline:
        time.sleep(0.05)
    patient = subprocess.run([sys.executable, "-m", "lth", *[a for a in ARGS if a != "--json"], "--store", str(store)],
                             capture_output=True, text=True, timeout=300, env=ENV)
    assert first.wait(timeout=300) == 0
    assert patient.returncode == 0 and "trained 0 level(s)" in patient.stdout


def test_probing_a_level_never_takes_its_lock(tmp_path, monkeypatch, capsys):
    """`lth ls` and the executor driver ask whether a level is being trained; if the probe took the
    level's lock, a `--no-wait` run starting at that moment would fail for nothing."""
    import fcntl
    import threading

    import lth.store
    from lth.cli import build_parser, config_from_args, main
    from lth.store import Store

    config = config_from_args(build_parser().parse_args(ARGS))
    run, looker = Store(tmp_path).run(config).create(), Store(tmp_path).run(config)
    assert not looker.level_locked(0)
    with run.training([0], wait=False):  # a trainer: other processes' probes see it
        assert looker.level_locked(0) and "locked/running" in looker.status()
    assert not looker.level_locked(0) and looker.status() == "ok"

    taken = []
    real_acquire = lth.store.FileLock.acquire
    monkeypatch.setattr(lth.store.FileLock, "acquire", lambda self, *a, **k: taken.append(self) or real_acquire(self, *a, **k))
    assert main(["ls", "--store", str(tmp_path)]) == 0 and "ok" in capsys.readouterr().out
    assert not looker.level_locked(0) and taken == []  # the probes took no lock

    # a probe in progress (its shared flock on level_0.running) while a --no-wait run starts: it waits
    # the probe out (a moment) instead of failing
    probe = os.open(tmp_path / config.hash() / "level_0.running", os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    threading.Timer(0.3, os.close, [probe]).start()
    began = time.monotonic()
    with run.training([0], wait=False):
        assert time.monotonic() - began >= 0.25
