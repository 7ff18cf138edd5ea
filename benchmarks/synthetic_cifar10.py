"""Write CIFAR-10-shaped files in the official "python version" layout (random pixels and labels),
for end-to-end runs of the CLI where the real archive is absent (the speed of a training step does
not depend on the pixel values; the accuracy is chance).

    python benchmarks/synthetic_cifar10.py DIR [--train 50000] [--test 10000]
    lth imp --preset resnet20_cifar10 --data-root DIR --iterations 2000it --levels 1
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np


def write(root: Path, train: int, test: int) -> Path:
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sizes = [(f"data_batch_{i}", train // 5) for i in range(1, 6)] + [("test_batch", test)]
    for name, count in sizes:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, count).tolist(),
                 b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * count}
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--train", type=int, default=50_000, help="training images, split over 5 batches")
    parser.add_argument("--test", type=int, default=10_000)
    args = parser.parse_args()
    print(f"wrote {write(args.root, args.train, args.test)}")


if __name__ == "__main__":
    main()
