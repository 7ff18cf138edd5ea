"""ResNet-20 on CIFAR-10-shaped data through lth's own `train()` (mask on, augmentation on the
device, the preset's optimizer): iterations/s in fp32, bf16 and fp16 autocast, each eager and
compiled (default mode, and reduce-overhead: CUDA graphs), interleaved and repeated; and the time of the preset's full 30,000-iteration training
extrapolated from each. Beside them, in the same run, the open_lth-style baseline ("dataloader"): a
plain PyTorch loop fed by a torch DataLoader that crops and flips each image on CPU workers
(torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip, written out), fp32, no mask.

    .venv/bin/python benchmarks/gpu_resnet20.py --device cuda            # on a GPU
    .venv/bin/python benchmarks/gpu_resnet20.py --device cpu --steps 3 --repeats 1 --variants fp32,bf16
                                                     # a check that it runs (fp16 convolutions crawl on CPU)

Synthetic data of CIFAR's shape (random pixels, random labels) stands in for the real files: the
speed of a training step does not depend on the pixel values.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from lth.data.cifar import random_crop_flip
from lth.data.loader import TensorDataset
from lth.masks import Mask
from lth.models import build_model
from lth.presets import get_preset
from lth.train import train

PRESET_ITERATIONS = 30_000


def run(config, data, device: str, precision: str, compile: bool | str, steps: int) -> float:
    """Iterations per second of `steps` training iterations (after a warm-up that also compiles)."""
    model = build_model(config.model.name, config.model.options, 0)
    mask = Mask.ones(model)
    settings = replace(config.train, precision=precision, iterations=f"{steps}it", eval_every=f"{steps}it")
    warm = replace(settings, iterations="10it", eval_every="10it")
    train(model, data, warm, mask=mask, device=device, augment=True, quiet=True, compile=compile)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    began = time.perf_counter()
    train(model, data, settings, mask=mask, device=device, augment=True, quiet=True, compile=compile)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - began)  # includes the one evaluation at the end


class PerSampleCifar(torch.utils.data.Dataset):
    """One image at a time, padded, cropped and flipped on the CPU, as torchvision transforms do."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        image = torch.nn.functional.pad(self.x[i], (4, 4, 4, 4))
        top, left = torch.randint(0, 9, (2,)).tolist()
        image = image[:, top:top + 32, left:left + 32]
        if torch.rand(()) < 0.5:
            image = image.flip(2)
        return image, self.y[i]


def run_dataloader(config, data, device: str, steps: int, workers: int) -> float:
    """Iterations per second of the plain loop on a per-sample DataLoader (the open_lth style)."""
    model = build_model(config.model.name, config.model.options, 0).to(device).train()
    t = config.train
    optimizer = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    loader = torch.utils.data.DataLoader(PerSampleCifar(data.x_train, data.y_train), batch_size=t.batch_size,
                                         shuffle=True, drop_last=True, num_workers=workers,
                                         pin_memory=device.startswith("cuda"), persistent_workers=workers > 0)

    def batches():
        while True:
            for x, y in loader:
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    stream = batches()
    for _ in range(10):
        step(*next(stream))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        step(*next(stream))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=500, help="timed iterations per run (default 500)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="dataloader,fp32,bf16,fp16,fp32+compile,bf16+compile,fp32+graphs,bf16+graphs",
                        help="comma-separated: dataloader (the plain per-sample loop), or PRECISION[+compile|+graphs] "
                             "(+graphs: torch.compile mode reduce-overhead, i.e. CUDA graphs)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain loop (default 4)")
    args = parser.parse_args()
    config = get_preset("resnet20_cifar10")
    generator = torch.Generator().manual_seed(0)
    train_size = 50_000 if args.device.startswith("cuda") else 2_000
    data = TensorDataset("cifar10", torch.randn(train_size, 3, 32, 32, generator=generator),
                         torch.randint(0, 10, (train_size,), generator=generator),
                         torch.randn(1_000, 3, 32, 32, generator=generator),
                         torch.randint(0, 10, (1_000,), generator=generator), 10, augment=random_crop_flip)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}; resnet20 batch {config.train.batch_size}, {args.steps} steps, "
          f"median of {args.repeats} interleaved runs")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    speeds: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            if variant == "dataloader":
                speeds[variant].append(run_dataloader(config, data, args.device, args.steps, args.workers))
                continue
            precision, _, compiled = variant.partition("+")
            mode = {"": False, "compile": "default", "graphs": "reduce-overhead"}[compiled]
            speeds[variant].append(run(config, data, args.device, precision, mode, args.steps))
    base = statistics.median(speeds[variants[0]])
    print(f"{'variant':<14} {'it/s':>8} {'vs ' + variants[0]:>9} {'30k iterations':>15}")
    for variant in variants:
        speed = statistics.median(speeds[variant])
        print(f"{variant:<14} {speed:>8.1f} {speed / base:>8.2f}x {PRESET_ITERATIONS / speed / 60:>11.1f} min")


if __name__ == "__main__":
    main()
