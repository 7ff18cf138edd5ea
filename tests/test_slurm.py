"""--executor slurm against a real SLURM scheduler (`sudo .ci/slurm-up` starts a one-node cluster).

What a stand-in `sbatch` cannot show: a study with dependencies equal to inline bit for bit, a
driver killed and restarted, `--json` clean of the scheduler's chatter (this cluster has no
accounting database: sacct fails, and submitit used to log that to stdout at every poll), a
preempted job requeued by SLURM and resumed, a failing job and its dependants, array parallelism,
and a cancelled job noticed without sacct. Every job is a small MNIST-1D training on 1 CPU; each
pays ~3 s to start Python and torch. Without a cluster these tests skip (with the reason); with
LTH_REQUIRE_SLURM=1 (CI) they fail instead.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from submitit.core.utils import DelayedSubmission

from conftest import tiny_config
from lth.data import load_dataset
from lth.executors import ExecutorOptions, make_executor
from lth.api import run_imp
from lth.jobs import imp_jobs
from lth.reproduce import StudyPlan, reproduce
from lth.store import Store, load_tensors
from lth.options import RunOptions
from test_executors import RUN, _same_tensors, _stored, _threads

pytestmark = pytest.mark.slow
LTH = [sys.executable, "-m", "lth"]
SLURM = ["--executor", "slurm", "--cpus-per-job", "1", "--device", "cpu"]
TIMEOUT = 300  # seconds for one driver: generous, as the cluster may be shared with another test session


def _cluster_problem() -> str | None:
    """Why no job can run on SLURM here, or None."""
    hint = "`sudo .ci/slurm-up` starts a one-node cluster"
    missing = [tool for tool in ("sinfo", "sbatch", "srun", "squeue", "scancel") if not shutil.which(tool)]
    if missing:
        return f"no SLURM here ({', '.join(missing)} not on PATH); {hint}"
    try:
        result = subprocess.run(["sinfo", "--noheader", "--responding", "--format=%a %T"], capture_output=True,
                                text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer in 30 s; {hint}"
    if result.returncode != 0:
        return f"SLURM does not answer (sinfo: {(result.stderr.strip().splitlines() or ['?'])[-1]}); {hint}"
    if not re.search(r"^up (idle|mixed|allocated|completing)", result.stdout, re.MULTILINE):
        return f"no SLURM node takes jobs (sinfo: {' / '.join(result.stdout.split(chr(10))) or 'no nodes'}); {hint}"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Path:
    """Skip (or, with LTH_REQUIRE_SLURM=1, fail) without a cluster; else MNIST-1D generated once (2 s),
    a cache to copy into each store (`_store`)."""
    problem = _cluster_problem()
    if problem and os.environ.get("LTH_REQUIRE_SLURM") == "1":
        pytest.fail(f"LTH_REQUIRE_SLURM=1 but {problem}")
    if problem:
        pytest.skip(problem)
    cache = tmp_path_factory.mktemp("mnist1d")
    load_dataset("mnist1d", cache_dir=cache)
    return cache


def _default_partition() -> str:
    names = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=30).stdout
    return next(name.rstrip("*") for name in names.split() if name.endswith("*"))


def _store(path: Path, cache: Path) -> Path:
    shutil.copytree(cache, Store(path).cache_dir, dirs_exist_ok=True)
    return path


def _config_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config(**changes).to_dict()))
    return path


def _submitted(store: Path) -> dict[str, str]:
    """Each job the drivers submitted to this store: SLURM job id -> the store job's key."""
    return {path.name.removesuffix("_submitted.pkl"): DelayedSubmission.load(path).function.job.key
            for path in (store / "_jobs").glob("*_submitted.pkl")}


def _summaries(store: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in store.glob("*/level_*/summary.json")}


def _wait_for(condition, seconds: float, what: str, driver: subprocess.Popen | None = None) -> None:
    deadline = time.time() + seconds
    while not condition():
        if driver is not None and driver.poll() is not None:
            pytest.fail(f"the driver exited ({driver.returncode}) before {what}: {driver.stderr.read()}")
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _log_span(job_id: str, store: Path) -> tuple[datetime, datetime]:
    """When the job's Python process logged its first and last line (submitit's timestamps)."""
    stamps = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f") for path in (store / "_jobs").glob(f"{job_id}_0_log.*")
              for m in re.findall(r"^submitit \w+ \(([\d\- :,]+)\)", path.read_text(), re.MULTILINE)]
    return min(stamps), max(stamps)


def test_a_study_killed_and_restarted_on_slurm_equals_inline_and_prints_one_json_object(slurm, tmp_path):
    """The dense run, IMP levels 0-2, the three baselines at level 1, the data-order copy and the
    stability measurement, for 2 seeds stacked as inline stacks them (9 jobs, each waiting for what it
    needs); the driver is killed once two levels are done and started again."""
    store = _store(tmp_path / "slurm", slurm)
    command = [*LTH, "reproduce", "--config", str(_config_file(tmp_path)), "--seeds", "0,1", "--levels", "2",
               "--rewind-points", "10it", "--stability-level", "1", "--baseline-levels", "1",
               "--baseline-rewinds", "", "--replicas", "2", "--store", str(store), "--json", *SLURM]
    # (--replicas 2, not auto: auto's timings on a loaded machine could choose one job per seed)
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: len(_summaries(store)) >= 2, TIMEOUT, "two levels were done", driver)
    driver.kill()
    driver.communicate()
    finished, before = _summaries(store), _submitted(store)
    assert 2 <= len(finished) < 18

    restarted = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert restarted.returncode == 0, restarted.stderr
    result = json.loads(restarted.stdout)  # all of stdout is one JSON object: no scheduler chatter
    assert restarted.stdout.count("\n") == 1 and {"imp", "branches", "stability", "claims"} <= result.keys()
    assert "sacct" not in restarted.stdout and "submitit" not in restarted.stdout
    assert "9 job(s) on the slurm executor" in restarted.stderr

    resubmitted = {job_id: key for job_id, key in _submitted(store).items() if job_id not in before}
    finished_keys = {str(path.parent.relative_to(store)) for path in finished}
    assert resubmitted and not finished_keys & set(resubmitted.values())  # nothing finished is submitted again
    assert all(_summaries(store)[path] == mtime for path, mtime in finished.items())  # nor redone

    plan = StudyPlan(levels=2, rewind_points=("10it",), stability_level=1, seeds=(0, 1), baseline_rewinds=(),
                     baseline_levels=(1,))
    with _threads(1):  # the jobs' thread count (--cpus-per-job 1): CPU kernels split sums by thread
        reproduce(tiny_config(), plan, _store(tmp_path / "inline", slurm), log=lambda _: None,
                  options=RunOptions(quiet=True, replicas=2, **RUN))
    on_slurm, inline = _stored(store), _stored(tmp_path / "inline")
    assert len(on_slurm) > 40 and _same_tensors(on_slurm, inline)
    measured = [json.loads(p.read_text()) for p in sorted(store.glob("*/level_1/stability_*.json"))]
    expected = [json.loads(p.read_text()) for p in sorted((tmp_path / "inline").glob("*/level_1/stability_*.json"))]
    assert len(measured) == 2 and measured == expected


def test_a_preempted_slurm_job_is_requeued_and_resumes_to_the_same_bits(slurm, tmp_path):
    store = _store(tmp_path / "slurm", slurm)
    changes = {"train.iterations": "2000it"}
    driver = subprocess.Popen([*LTH, "imp", "--config", str(_config_file(tmp_path, **changes)), "--levels", "0",
                               "--checkpoint-every", "100it", "--store", str(store), "--json", *SLURM],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: list(store.glob("*/level_0/resume.pt")), TIMEOUT, "the job's first checkpoint", driver)
    [job_id] = _submitted(store)
    # what SLURM sends on preemption (and before a time limit): submitit checkpoints, `scontrol requeue`s it
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
    out, err = driver.communicate(timeout=TIMEOUT)
    assert driver.returncode == 0, err
    assert json.loads(out)["levels"][0]["iterations"] == 2000
    log = (store / "_jobs" / f"{job_id}_0_log.out").read_text()
    assert "this job is preempted" in log and f"Requeued job {job_id}" in log
    assert log.count("Starting with JobEnvironment") == 2  # the same job ran again, from the checkpoint
    with _threads(1):
        reference = run_imp(tiny_config(**changes), 0, _store(tmp_path / "inline", slurm),
                            options=RunOptions(quiet=True, **RUN))
    name = f"{tiny_config(**changes).hash()}/level_0/final.safetensors"
    assert _same_tensors({0: load_tensors(store / name)}, {0: load_tensors(Path(reference.run_dir).parent / name)})


def test_a_failing_slurm_job_blocks_its_dependants_and_a_rerun_after_the_fix_redoes_nothing(slurm, tmp_path):
    """Level 1 of seed 0 reads a corrupt level-0 file. Its array runs one task at a time
    (--slurm-array-parallelism 1), in the partition and with the time limit asked for."""
    store = _store(tmp_path / "slurm", slurm)
    partition = _default_partition()
    command = [*LTH, "imp", "--config", str(_config_file(tmp_path)), "--seeds", "0,1", "--levels", "2",
               "--store", str(store), "--quiet", "--slurm-array-parallelism", "1", "--slurm-partition", partition,
               "--timeout-min", "30", "--replicas", "off", *SLURM]  # (off: one job per seed)
    for seed in (0, 1):
        run_imp(tiny_config(seed=seed), 0, store, options=RunOptions(quiet=True, **RUN))
    seed0 = {p.stat().st_ino: p for p in store.glob("*/level_0/final.safetensors")  # one path per file:
             if json.loads((p.parent.parent / "config.json").read_text())["seed"] == 0}  # runs share files
    good = {p: p.read_bytes() for p in seed0.values()}
    for path, data in good.items():
        path.write_bytes(data[:-4] + bytes(b ^ 0xFF for b in data[-4:]))
    finished = _summaries(store)
    chains = {seed: imp_jobs([tiny_config(seed=seed)], 2)[1:] for seed in (0, 1)}  # IMP levels 0-2 (after the dense run)

    failed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert failed.returncode == 2, failed.stderr
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("lth: error: 1 job(s) failed and 1 could not run; first: seed 0")
    assert "corrupt tensor file (" in message and f" {store}/" in message  # the job's own error, as the CLI prints it
    log = Path(re.search(r"\(log: (\S+)\)", message)[1])
    assert log.parent == store / "_jobs" and "corrupt tensor file" in log.read_text()
    submitted = _submitted(store)
    assert chains[0][2].key not in submitted.values()  # level 2 of the broken chain never started
    assert chains[1][2].key in submitted.values()  # the other chain went on
    # both levels 1 went in one array, at most one task running at a time
    [array] = {job_id.split("_")[0] for job_id, key in submitted.items() if key in (chains[0][1].key, chains[1][1].key)}
    batch = (store / "_jobs" / f"{array}_submission.sh").read_text()
    for line in ("--array=0-1%1", f"--partition={partition}", "--time=30", "--cpus-per-task=1", "--job-name=lth"):
        assert f"#SBATCH {line}" in batch, line
    first, second = sorted(_log_span(f"{array}_{task}", store) for task in (0, 1))
    assert first[1] < second[0]

    for path, data in good.items():  # the fix
        path.write_bytes(data)
    finished = {**finished, **{p: m for p, m in _summaries(store).items() if p not in finished}}
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr
    again = {key for job_id, key in _submitted(store).items() if job_id not in submitted}
    assert again == {chains[0][1].key, chains[0][2].key}  # only the failed job and the one it blocked
    assert all(_summaries(store)[path] == mtime for path, mtime in finished.items())
    assert len(_summaries(store)) == len(finished) + 2


def test_a_cancelled_slurm_job_is_reported_not_waited_for(slurm, tmp_path):
    """A job that ends without storing its result (cancelled, killed for memory, node lost): submitit
    learns it from sacct, which fails without an accounting database; the driver then asks squeue."""
    lines = []
    executor = make_executor(ExecutorOptions("slurm", cpus_per_job=1, timeout_min=5), tmp_path / "_jobs", lines.append)
    handle = executor.submit(time.sleep, 300)
    _wait_for(handle.paths.stdout.exists, TIMEOUT, "the job to start")
    subprocess.run(["scancel", handle.job_id], check=True, timeout=30)
    _wait_for(handle.done, 120, "the driver to see the job ended")  # before: UNKNOWN, never done
    assert handle.state in ("CANCELLED", "ENDED")  # ENDED: squeue no longer lists it
    # (the driver then reports "the job ended without storing its result (state CANCELLED)" after
    # submitit's 15 s wait for a result file that a shared file system may show late)
