"""What stacking saves on a whole study: the trainings of `lth reproduce --preset P`'s plan, counted
from its job graph (jobs.study_jobs, what every executor runs), timed from step rates measured here.

    .venv/bin/python benchmarks/study_time.py [--preset resnet20_cifar10] [--seeds 3] [--k 8] [--device cuda]

It measures one optimizer step of the preset's network at its batch (train.step_seconds: real
steps, masks off, random CIFAR/MNIST-shaped tensors) alone and as K stacked replicas, then adds up
every training job of the plan: trained one by one (each training's iterations at the K = 1 rate)
and stacked (each job's group at the rate of its group size). Evaluation, stability measurements
and pruning are left out (minutes against the trainings' hours); IMP level 0 adopts the dense run,
so it costs nothing. Figures: the wall time of the study, and of one IMP chain, at each rate.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from lth.config import ExperimentConfig
from lth.jobs import STABILITY, study_jobs
from lth.kinds import DENSE, IMP, KINDS
from lth.models import build_model
from lth.presets import get_preset
from lth.replicas import stack_models
from lth.reproduce import default_plan
from lth.steps import to_iterations
from lth.train import step_seconds

from replicas import dataset

REAL_TRAIN_SET = {"cifar10": 50_000, "mnist": 60_000}  # training examples of the real sets (epoch lengths)


def seconds_per_step(config: ExperimentConfig, data, k: int, device: torch.device) -> float:
    models = [build_model(config.model.name, config.model.options, seed) for seed in range(k)]
    model = models[0] if k == 1 else stack_models(models)
    return step_seconds(model, data, config.train, list(range(k)), device, steps=3, warmup=1)


def trainings(config: ExperimentConfig, seeds: int, k: int, ipe: int) -> list[tuple[int, int]]:
    """(replicas, iterations) of every training job of the study, its seeds stacked `k` at a time."""
    plan = replace(default_plan(config), seeds=tuple(range(seeds)))
    total = to_iterations(config.train.iterations, ipe)
    found = []
    for job in study_jobs(config, plan, k):
        if job.what == STABILITY or (job.what == IMP and job.level == 0):
            continue  # (a measurement; IMP level 0 adopts the dense run)
        rewind = to_iterations(job.configs[0].rewind, ipe)
        starts_at_rewind = job.what not in (DENSE,) and KINDS[job.what].starts_at_rewind
        found.append((len(job.configs), total - (rewind if starts_at_rewind else 0)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="resnet20_cifar10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=8, help="the stacked group size to measure")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", default="lth_runs/_cache")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = get_preset(args.preset)
    data = dataset(args.preset, args.cache)
    config = replace(config, data=replace(config.data, augment=False))
    ipe = REAL_TRAIN_SET.get(config.data.dataset, data.num_train) // config.train.batch_size  # the real data's epoch
    sizes = sorted({min(args.k, args.seeds), 1} | {n for n, _ in trainings(config, args.seeds, args.k, ipe)})
    rate = {n: seconds_per_step(config, data, n, device) for n in sizes}  # seconds per step of n stacked
    jobs_one = trainings(config, args.seeds, 1, ipe)
    jobs_stacked = trainings(config, args.seeds, args.k, ipe)
    one_by_one = sum(its * rate[1] for n, its in jobs_one)
    stacked = sum(its * rate[n] for n, its in jobs_stacked)
    total, k = to_iterations(config.train.iterations, ipe), to_iterations(config.rewind, ipe)
    chain = rate[1] * (total + default_plan(config).levels * (total - k))  # the dense run, then each level from k
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.preset}, {args.seeds} seeds, torch {torch.__version__}, {where}")
    print("step: " + ", ".join(f"K={n} {1000 * s:.1f} ms ({1000 * s / n:.2f} ms per replica)" for n, s in rate.items()))
    print(f"trainings: {sum(n for n, _ in jobs_one)} ({sum(n * its for n, its in jobs_one):,} replica-iterations) "
          f"in {len(jobs_stacked)} stacked jobs")
    print(f"study one by one: {one_by_one / 3600:.2f} h; stacked (K <= {args.k}): {stacked / 3600:.2f} h; "
          f"ratio {one_by_one / stacked:.2f}x; one IMP chain (dense + {default_plan(config).levels} levels) "
          f"alone: {chain / 3600:.2f} h; stacked study / chain {stacked / chain:.2f}")


if __name__ == "__main__":
    main()
