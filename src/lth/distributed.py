"""Data-parallel training under torchrun: `torchrun --nproc_per_node=N -m lth imp ...`.

Every rank runs the same program on the same store. The global batch of iteration i (the one a
single process would see) is split evenly across ranks, DistributedDataParallel averages the
gradients, so the update equals the single-process one with the same global batch (up to float
summation order). Masks and every pruning decision are computed identically on all ranks; only
rank 0 writes files (`atomic_write` discards writes elsewhere), and ranks meet at a barrier after
each level so every rank reads what rank 0 wrote. NCCL on GPUs, gloo on CPU.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def init_from_env(device: str = "auto") -> str:
    """Join the process group torchrun describes in the environment; return the device to use."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return device


def wrap(model: nn.Module) -> nn.Module:
    """DDP around `model` when running under torchrun; the model itself otherwise."""
    if world_size() <= 1:
        return model
    device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def local_slice(batch_size: int) -> slice:
    """This rank's share of a global batch."""
    world = world_size()
    if batch_size % world:
        from .errors import ConfigError

        raise ConfigError(f"the batch size {batch_size} must be divisible by the number of processes ({world})")
    share = batch_size // world
    return slice(rank() * share, (rank() + 1) * share)


def sum_across_ranks(*values: torch.Tensor) -> None:
    if world_size() > 1:
        for value in values:
            dist.all_reduce(value)
