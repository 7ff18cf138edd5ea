"""--executor local/slurm: the same stored results as inline, a driver that can be killed and
restarted, failures reported with their logs, preempted jobs that resume, SLURM job parameters.

Local jobs are real processes (submitit's LocalExecutor, 2 workers); each pays ~3 s of start-up."""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from lth.cli import main
from lth.executors import ExecutorOptions, StoreJob, make_executor, run_jobs, submit_ready
from lth.dense import dense_config
from lth.api import run_imp, run_imp_many
from lth.jobs import imp_jobs, study_jobs
from lth.options import RunOptions
from lth.reproduce import StudyPlan, reproduce
from lth.store import Store, load_tensors

LOCAL = ExecutorOptions("local", workers=2, poll_seconds=0.2)
RUN = {"device": "cpu"}  # RunOptions fields, as keywords of the library calls
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _stored(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {str(p.relative_to(root)): load_tensors(p) for p in sorted(root.glob("*/level_*/*.safetensors"))}


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(x.keys() == b[k].keys() and all(torch.equal(x[n], b[k][n]) for n in x)
                                        for k, x in a.items())


@contextmanager
def _threads(count: int):
    """Run the inline reference with the jobs' thread count: CPU kernels split sums by thread, so
    the same bits need the same count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_a_study_on_the_local_executor_stores_exactly_what_inline_stores(tmp_path):
    config = tiny_config()
    plan = StudyPlan(levels=2, rewind_points=("10it",), stability_level=1, seeds=(0, 1))
    jobs = study_jobs(config, plan, replicas=2)
    # the two seeds stacked, as inline stacks them: the dense run, IMP 0-2, three baselines at 1-2,
    # the data-order copy, the measurement
    assert len(jobs) == 12 and all(len(job.configs) == 2 for job in jobs)
    outcome = run_jobs(jobs, tmp_path / "local", LOCAL, RunOptions(**RUN, replicas=2), quiet=True, log=lambda _: None)
    assert not outcome.failed and len(outcome.done) == 12
    with _threads(LOCAL.threads):  # the jobs' thread count
        reproduce(config, plan, tmp_path / "inline", log=lambda _: None,
                  options=RunOptions(quiet=True, replicas=2, **RUN))
    local, inline = _stored(tmp_path / "local"), _stored(tmp_path / "inline")
    # per seed: the dense run's 4 files (with step_10it), IMP's 10 (level 0's linked to the dense run's),
    # 3 per other training
    assert len(local) == 2 * 35 and _same_tensors(local, inline)
    summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / "local").glob("*/level_2/summary.json"))]
    assert summaries and all(s["replicas"] == 2 for s in summaries)  # trained stacked, not one by one
    measured = [json.loads(p.read_text()) for p in sorted((tmp_path / "local").glob("*/level_1/stability_*.json"))]
    expected = [json.loads(p.read_text()) for p in sorted((tmp_path / "inline").glob("*/level_1/stability_*.json"))]
    assert len(measured) == 2 and measured == expected
    again = run_jobs(jobs, tmp_path / "local", LOCAL, RunOptions(**RUN, replicas=2), quiet=True, log=lambda _: None)
    assert again.submitted == 0 and len(again.done) == 12  # nothing in the store is submitted twice


@pytest.mark.slow
def test_a_killed_driver_restarted_finishes_the_study_without_redoing_finished_runs(tmp_path):
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(tiny_config().to_dict()))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "lth", "imp", "--config", str(config_file), "--levels", "2", "--seeds", "0,1",
               "--executor", "local", "--workers", "2", "--store", str(store), "--quiet", "--device", "cpu",
               "--replicas", "2"]  # (not auto: its timings on a loaded machine decide the stacking, then the bits)
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 240
    while len(list(store.glob("*/level_*/summary.json"))) < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
    assert driver.poll() is None, "the driver finished before it could be killed"
    driver.kill()
    driver.wait()
    finished = {p: p.stat().st_mtime_ns for p in store.glob("*/level_*/summary.json")}
    assert 2 <= len(finished) < 8
    restarted = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert restarted.returncode == 0, restarted.stderr
    assert "2 seeds, mean ± std" in restarted.stdout
    assert len(list(store.glob("*/level_*/summary.json"))) == 8  # 2 dense runs, 2 chains of 3 levels
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())  # nothing finished was redone
    with _threads(1):  # inline with the jobs' thread count: the two seeds stacked the same way
        references = run_imp_many([tiny_config(seed=seed) for seed in (0, 1)], 2, tmp_path / "inline",
                                  options=RunOptions(quiet=True, replicas=2, **RUN))
    for seed, reference in zip((0, 1), references):
        config = tiny_config(seed=seed)
        for level in range(3):
            name = f"{config.hash()}/level_{level}/final.safetensors"
            assert _same_tensors({0: load_tensors(store / name)}, {0: load_tensors(Path(reference.run_dir).parent / name)})


@pytest.mark.slow
def test_a_failing_job_is_reported_with_its_log_while_the_others_complete(tmp_path, capsys):
    good = tiny_config()
    bad = tiny_config(**{"train.lr": 1e6, "rewind": "0it"})  # the loss becomes nan at once
    jobs = imp_jobs([good], 1) + imp_jobs([bad], 1)  # each: the dense run, IMP levels 0 and 1
    outcome = run_jobs(jobs, tmp_path, LOCAL, RunOptions(**RUN), quiet=True, log=lambda _: None)
    assert sorted(outcome.done) == sorted(job.key for job in jobs[:3])
    failed = outcome.failed[jobs[3].key]  # the bad config's dense run
    assert "became nan" in failed["error"] or "became inf" in failed["error"]
    assert Path(failed["log"]).exists() and "TrainingDiverged" in Path(failed["log"]).read_text()
    assert outcome.blocked == [jobs[4].key, jobs[5].key]  # the failed chain never ran
    assert main(["ls", "--store", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "failed: level 0: the training loss became" in listing and f"(log: {failed['log']})" in listing


@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_resumes_to_the_same_bits(tmp_path):
    config = tiny_config(**{"train.iterations": "3000it"})
    store = Store(tmp_path / "store")
    job = imp_jobs([config], 0)[0]
    executor = make_executor(ExecutorOptions("local", workers=1), store.root / "_jobs")
    handle = executor.submit(StoreJob(job, str(store.root), RunOptions(**RUN, quiet=True, checkpoint_every="100it"), 1))
    deadline = time.time() + 120
    while not list(store.root.glob("*/level_0/resume.pt")) and time.time() < deadline:
        time.sleep(0.05)
    # what SLURM does on preemption: SIGUSR2 to the task (the controller process's child)
    task = int(Path(f"/proc/{handle._process.pid}/task/{handle._process.pid}/children").read_text().split()[0])
    os.kill(task, signal.SIGUSR2)
    while not handle.done() and time.time() < deadline + 120:
        time.sleep(0.2)
    log = Path(handle.paths.stdout).read_text()
    assert "this job is preempted" in log and "Requeued job" in log and job.done(store)
    with _threads(1):
        reference = run_imp(config, 0, tmp_path / "inline", options=RunOptions(quiet=True, **RUN))
    name = f"{dense_config(config).hash()}/level_0/final.safetensors"
    assert _same_tensors({0: load_tensors(store.root / name)}, {0: load_tensors(Path(reference.run_dir).parent / name)})


def test_slurm_jobs_carry_the_requested_resources(tmp_path, monkeypatch):
    # what a one-node CPU cluster cannot show (tests/test_slurm.py runs the rest on a real one): GPUs,
    # one task per GPU, more CPUs than it has, account and QOS; a fake sbatch records the submission
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\necho 'Submitted batch job 4242'\n")
    (fake.parent / "srun").write_text("#!/bin/sh\n")  # submitit looks for it before submitting
    for tool in ("sbatch", "srun"):
        (fake.parent / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    options = ExecutorOptions("slurm", gpus_per_job=4, cpus_per_job=8, slurm_options={"account": "proj", "qos": "high"})
    store = Store(tmp_path / "store")
    jobs = [imp_jobs([tiny_config(seed=seed)], 0)[0] for seed in (0, 1, 2)]  # the dense runs: ready at once
    submitted = {}
    submit_ready(make_executor(options, store.root / "_jobs"), jobs, store, options, RunOptions(**RUN), submitted, {})
    assert list(submitted) == [job.key for job in jobs]
    handle = submitted[jobs[1].key]
    assert handle.job_id == "4242_1"
    batch = Path(handle.paths.submission_file).read_text()
    for line in ("--gpus-per-node=4", "--ntasks-per-node=4", "--cpus-per-task=8", "--account=proj", "--qos=high"):
        assert f"#SBATCH {line}" in batch, line
    call = handle.submission().function
    assert isinstance(call, StoreJob) and call.job == jobs[1] and call.store_root == str(store.root)
    assert call.threads == 8 and call.options.wait is True


@pytest.mark.parametrize("flags, message", [
    (["--executor", "local", "--workers", "0"], "--workers must be at least 1"),
    (["--executor", "slurm", "--slurm-option", "account"], "--slurm-option takes KEY=VALUE"),
    (["--executor", "cloud"], "invalid choice: 'cloud'"),
    (["--executor", "slurm"], "--executor slurm needs SLURM's sbatch and srun on PATH"),
])
def test_bad_executor_flags_give_one_line_and_exit_2(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, srun here, even where SLURM is installed
    try:
        code = main(["imp", "--levels", "1", "--store", str(tmp_path / "s"), *flags])
    except SystemExit as exit:  # argparse's own checks
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_one_level_goes_from_the_cli_to_the_training_loop_in_five_calls(tmp_path, monkeypatch, capsys):
    """docs/code.md's one execution path: cli.cmd_imp -> api.run_imp_many -> api.execute -> Job.execute
    -> levels.train_level -> train.train_replicas, for every IMP level (the dense run's job adds
    dense.train_dense), inline as in an executor's job."""
    import inspect

    import lth.levels
    from test_bad_input import TINY

    paths = []
    real = lth.levels.train_replicas

    def recorded(*args, **kwargs):
        names = [(Path(f.filename).stem, f.function) for f in inspect.stack()[1:]]
        start = names.index(("cli", "cmd_imp"))
        paths.append([f"{module}.{function}" for module, function in reversed(names[:start + 1])])
        return real(*args, **kwargs)

    monkeypatch.setattr(lth.levels, "train_replicas", recorded)
    assert main(["imp", "--levels", "2", *TINY, "--store", str(tmp_path)]) == 0
    capsys.readouterr()
    level = ["cli.cmd_imp", "api.run_imp_many", "api.execute", "jobs.execute", "levels.train_level"]
    assert paths == [level[:4] + ["dense.train_dense", "levels.train_level"], level, level]  # dense, IMP 1, IMP 2
