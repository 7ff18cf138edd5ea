"""The real-dataset loaders on tiny files written in each exact on-disk format."""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from lth.data import load_dataset
from lth.data.cifar import STATS, random_crop_flip
from lth.data.imagefolder import ImageFolderDataset
from lth.data.transforms import IMAGENET_MEAN, IMAGENET_STD, random_resized_crop_box
from lth.errors import DataError

CPU = torch.device("cpu")


# ---------------------------------------------------------------- MNIST (IDX files)

def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(f">{1 + array.ndim}i", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(directory, gz=(), train=6, test=3):
    """Writes the four IDX files; names in `gz` are gzipped. Image k is the constant 40 * k."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count in (("train", train), ("t10k", test)):
        images = np.stack([np.full((28, 28), 40 * k, np.uint8) for k in range(count)])
        images[:, 0, 1] = 255  # one bright pixel per image, to check the row/column order
        labels = (np.arange(count) * 7 + 3) % 10
        arrays[split] = (images, labels)
        for name, data, magic in ((f"{split}-images-idx3-ubyte", images, 2051), (f"{split}-labels-idx1-ubyte", labels, 2049)):
            raw = idx_bytes(data, magic)
            if name in gz:
                (directory / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (directory / name).write_bytes(raw)
    return arrays


def test_mnist_plain_idx_files(tmp_path):
    arrays = write_mnist(tmp_path)
    data = load_dataset("mnist", tmp_path)
    assert data.x_train.shape == (6, 1, 28, 28) and data.x_test.shape == (3, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.y_train.tolist() == arrays["train"][1].tolist()
    assert data.y_test.tolist() == arrays["t10k"][1].tolist()
    assert data.num_classes == 10 and data.num_train == 6
    # pixel v maps to (v / 255 - 0.1307) / 0.3081
    assert data.x_train[0, 0, 5, 5].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert data.x_train[3, 0, 5, 5].item() == pytest.approx((120 / 255 - 0.1307) / 0.3081, abs=1e-6)
    assert data.x_train[0, 0, 0, 1].item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-6)
    assert data.x_train[0, 0, 1, 0].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)


def test_mnist_gzipped_in_torchvision_layout(tmp_path):
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=names[:3])  # the test labels stay plain
    data = load_dataset("mnist", tmp_path)
    assert data.y_test.tolist() == arrays["t10k"][1].tolist()
    expected = (torch.from_numpy(arrays["train"][0]).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(data.x_train[:, 0], expected)
    loader = data.train_loader(2, seed=0, device=CPU)
    assert loader.batch(0)[0].shape == (2, 1, 28, 28)


def test_mnist_missing_root_or_file(tmp_path):
    for root in (None, tmp_path / "nowhere"):
        with pytest.raises(DataError, match=r"--data-root DIR containing train-images-idx3-ubyte\[\.gz\]"):
            load_dataset("mnist", root)
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as error:
        load_dataset("mnist", tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("damage, file, message", [
    ("truncate", "train-images-idx3-ubyte", "truncated"),
    ("header", "t10k-images-idx3-ubyte", "shorter than its IDX header"),
    ("magic", "train-labels-idx1-ubyte", "magic number 2051, expected 2049"),
    ("count", "t10k-labels-idx1-ubyte", "has 2 labels but t10k-images-idx3-ubyte has 3 images"),
    ("gzip", "train-images-idx3-ubyte.gz", "cannot read"),
])
def test_mnist_malformed_files_name_the_file(tmp_path, damage, file, message):
    write_mnist(tmp_path, gz=("train-images-idx3-ubyte",) if damage == "gzip" else ())
    path = tmp_path / file
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[:-100])
    elif damage == "header":
        path.write_bytes(raw[:10])
    elif damage == "magic":
        path.write_bytes(struct.pack(">i", 2051) + raw[4:])
    elif damage == "count":
        path.write_bytes(idx_bytes(np.array([1, 2]), 2049))
    elif damage == "gzip":
        path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=message) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


# ---------------------------------------------------------------- CIFAR (pickled batches)

def cifar_batch(rng, count, label_key, num_classes, offset=0):
    labels = [int(v) for v in (np.arange(count) + offset) % num_classes]
    data = rng.integers(1, 256, (count, 3072), dtype=np.uint8)  # no zeros: padding stays recognisable
    return {b"batch_label": b"x", label_key: labels, b"data": data, b"filenames": [b"f"] * count}


def write_pickle(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(value, handle, protocol=2)


def write_cifar10(directory, count=20):
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batches[name] = cifar_batch(rng, count, b"labels", 10, offset=i)
        write_pickle(directory / name, batches[name])
    return batches


def test_cifar10_official_layout(tmp_path):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (100, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    expected = sum((batches[f"data_batch_{k}"][b"labels"] for k in range(1, 6)), [])
    assert data.y_train.tolist() == expected
    assert data.y_test.tolist() == batches["test_batch"][b"labels"]
    assert data.num_classes == 10
    # row layout: 1024 red values, then green, then blue, each row-major 32x32
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in STATS["cifar10"])
    raw = torch.from_numpy(batches["data_batch_2"][b"data"][3]).float().view(3, 32, 32)
    torch.testing.assert_close(data.x_train[23], (raw / 255 - mean) / std)


def test_cifar_constant_image_normalisation_and_flat_layout(tmp_path):
    batches = write_cifar10(tmp_path, count=4)  # files directly in root
    test = batches["test_batch"]
    test[b"data"][0] = np.repeat(np.array([255, 0, 51], np.uint8), 1024)
    write_pickle(tmp_path / "test_batch", test)
    data = load_dataset("cifar10", tmp_path)
    (mr, mg, mb), (sr, sg, sb) = STATS["cifar10"]
    means = data.x_test[0].mean(dim=(1, 2)).tolist()
    assert means == pytest.approx([(1 - mr) / sr, -mg / sg, (0.2 - mb) / sb], abs=1e-5)


def test_cifar100_fine_labels_and_stats(tmp_path):
    rng = np.random.default_rng(1)
    train = cifar_batch(rng, 30, b"fine_labels", 100, offset=85)
    train[b"coarse_labels"] = [0] * 30
    test = cifar_batch(rng, 10, b"fine_labels", 100)
    test[b"data"][:] = 128
    write_pickle(tmp_path / "cifar-100-python" / "train", train)
    write_pickle(tmp_path / "cifar-100-python" / "test", test)
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100 and data.x_train.shape == (30, 3, 32, 32)
    assert data.y_train.tolist() == train[b"fine_labels"] and max(data.y_train.tolist()) == 99
    mean, std = STATS["cifar100"]
    expected = [(128 / 255 - m) / s for m, s in zip(mean, std)]
    assert data.x_test[5].mean(dim=(1, 2)).tolist() == pytest.approx(expected, abs=1e-5)


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("damage, file, message", [
    ("missing", "test_batch", "not found"),
    ("truncated", "data_batch_3", "not a valid python-version batch"),
    ("not a dict", "data_batch_1", "holds a list"),
    ("shape", "data_batch_2", r"shape \(N, 3072\)"),
    ("labels", "test_batch", "must hold 20 integer labels"),
    ("range", "data_batch_4", r"labels outside 0\.\.9"),
    ("code", "data_batch_5", "refusing to load"),
])
def test_cifar_malformed_files_name_the_file(tmp_path, damage, file, message):
    directory = tmp_path / "cifar-10-batches-py"
    batches = write_cifar10(directory)
    path = directory / file
    batch = batches[file]
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "not a dict":
        write_pickle(path, [1, 2])
    elif damage == "shape":
        write_pickle(path, {**batch, b"data": batch[b"data"].reshape(20, 3, 32, 32)})
    elif damage == "labels":
        write_pickle(path, {**batch, b"labels": batch[b"labels"][:-1]})
    elif damage == "range":
        write_pickle(path, {**batch, b"labels": [10] * 20})
    elif damage == "code":
        write_pickle(path, {**batch, b"extra": _Evil()})
    with pytest.raises(DataError, match=message) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert "cifar-10-batches-py/" in str(error.value)  # shows the expected layout


def test_cifar_missing_root(tmp_path):
    with pytest.raises(DataError, match="--data-root DIR containing cifar-100-python/"):
        load_dataset("cifar100", None)
    with pytest.raises(DataError, match="not a directory"):
        load_dataset("cifar10", tmp_path / "absent")


def _crops_of(image: torch.Tensor) -> list[torch.Tensor]:
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    crops = [padded[:, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
    return crops + [c.flip(2) for c in crops]


def test_random_crop_flip_is_seeded_and_a_true_crop():
    x = torch.from_numpy(np.random.default_rng(2).integers(1, 256, (64, 3, 32, 32))).float()
    out = random_crop_flip(x, torch.Generator().manual_seed(5))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(6)))
    kinds = set()
    for i in range(64):
        # every output is one of the 162 shifted/flipped windows of the zero-padded input
        matches = [k for k, crop in enumerate(_crops_of(x[i])) if torch.equal(crop, out[i])]
        assert len(matches) == 1
        kinds.add(matches[0])
        values = set(out[i].unique().tolist()) - {0.0}
        assert values <= set(x[i].unique().tolist())
    assert len(kinds) > 30 and any(k >= 81 for k in kinds) and any(k < 81 for k in kinds)


def test_cifar_loader_is_a_function_of_seed_and_iteration(tmp_path):
    write_cifar10(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    first = list(data.train_loader(16, seed=3, device=CPU, augment=True).batches(0, 14))  # > 2 epochs
    again = list(data.train_loader(16, seed=3, device=CPU, augment=True).batches(0, 14))
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    fresh = data.train_loader(16, seed=3, device=CPU, augment=True)
    assert torch.equal(fresh.batch(11)[0], first[11][0])
    other = data.train_loader(16, seed=4, device=CPU, augment=True).batch(0)
    assert not torch.equal(other[0], first[0][0])


# ---------------------------------------------------------------- ImageNet (class folders of JPEGs)

COLOURS = {"n0003": (200, 30, 90), "n0001": (10, 120, 250), "n0002": (90, 90, 90)}


def write_imagefolder(root, train=4, val=2):
    """Constant-colour JPEGs of varied shapes; class folders written out of sorted order."""
    for split, count in (("train", train), ("val", val)):
        for wnid, colour in COLOURS.items():
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(count):
                image = Image.new("RGB", (40 + 4 * k, 48 - 3 * k), colour)
                image.putpixel((k, k), (255, 255, 255))  # makes images distinct
                image.save(folder / f"{wnid}_{k}.JPEG", quality=95)
    (root / "train" / "n0001" / "notes.txt").write_text("not an image")


def tiny_folder(root, **options) -> ImageFolderDataset:
    return ImageFolderDataset(root, size=32, resize=36, num_workers=options.pop("num_workers", 0), **options)


def test_imagefolder_labels_shapes_and_normalisation(tmp_path):
    write_imagefolder(tmp_path)
    data = tiny_folder(tmp_path)
    assert data.classes == ["n0001", "n0002", "n0003"] and data.num_classes == 3
    assert data.num_train == 12 and data.num_test == 6
    x, y = next(iter(data.test_batches(CPU, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    batches = list(data.test_batches(CPU, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 2]
    assert torch.cat([b[1] for b in batches]).tolist() == [0, 0, 1, 1, 2, 2]
    for (x, y) in batches:
        for image, label in zip(x, y):
            colour = COLOURS[data.classes[label]]
            expected = [(c / 255 - m) / s for c, m, s in zip(colour, IMAGENET_MEAN, IMAGENET_STD)]
            # the centre crop misses the marked pixel; JPEG keeps a flat colour within a level or two
            assert image.mean(dim=(1, 2)).tolist() == pytest.approx(expected, abs=3 / 255 / 0.224)


def test_imagefolder_stream_is_a_function_of_seed_and_iteration(tmp_path):
    write_imagefolder(tmp_path)
    data = tiny_folder(tmp_path)
    loader = data.train_loader(4, seed=7, device=CPU, augment=True)
    assert loader.iterations_per_epoch == 3
    run = list(loader.batches(0, 7))
    assert all(x.shape == (4, 3, 32, 32) for x, _ in run)
    for epoch in range(2):  # each epoch shows every image once
        labels = torch.cat([y for _, y in run[3 * epoch:3 * epoch + 3]])
        assert sorted(labels.tolist()) == sorted(data.train_labels.tolist())
    resumed = data.train_loader(4, seed=7, device=CPU, augment=True)
    for i in (5, 6, 2):  # start late, continue, then jump back
        x, y = resumed.batch(i)
        assert torch.equal(x, run[i][0]) and torch.equal(y, run[i][1])
    with_workers = tiny_folder(tmp_path, num_workers=2).train_loader(4, seed=7, device=CPU, augment=True)
    for i, (x, y) in zip(range(4, 7), with_workers.batches(4, 7)):
        assert torch.equal(x, run[i][0]) and torch.equal(y, run[i][1])
    with_workers.close()
    other = data.train_loader(4, seed=8, device=CPU, augment=True).batch(0)
    assert not torch.equal(other[0], run[0][0])
    plain = data.train_loader(4, seed=7, device=CPU, augment=False).batch(0)
    assert torch.equal(plain[1], run[0][1]) and not torch.equal(plain[0], run[0][0])


def test_random_resized_crop_box_follows_torchvision():
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, w, h = random_resized_crop_box(64, 48, rng)
        assert 0 <= left <= 64 - w and 0 <= top <= 48 - h
        assert 0.08 * 64 * 48 * 0.8 <= w * h <= 64 * 48
        assert 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25
    # no try fits a 100x10 strip at scale 1: the fallback is the central crop of the widest ratio
    assert random_resized_crop_box(100, 10, rng, scale=(1.0, 1.0)) == (43, 0, 13, 10)


def test_imagenet_registered_with_default_sizes(tmp_path):
    write_imagefolder(tmp_path, train=1, val=1)
    data = load_dataset("imagenet", tmp_path)
    assert data.name == "imagenet" and data.num_workers >= 1
    x, y = next(iter(data.test_batches(CPU, batch_size=3)))
    assert x.shape == (3, 3, 224, 224) and y.tolist() == [0, 1, 2]


def test_imagefolder_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"--data-root DIR containing train/<wnid>/\*\.JPEG"):
        load_dataset("imagenet", None)
    write_imagefolder(tmp_path, train=2, val=1)
    bad = tmp_path / "val" / "n0002" / "n0002_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    data = tiny_folder(tmp_path)
    with pytest.raises(DataError, match="cannot decode image") as error:
        list(data.test_batches(CPU))
    assert str(bad) in str(error.value) and "\n" not in str(error.value)
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="n0002_0.JPEG"):
        list(tiny_folder(tmp_path, num_workers=1).test_batches(CPU))
    (tmp_path / "val" / "n9999").mkdir()
    with pytest.raises(DataError, match="n9999 does not exist in the training split"):
        tiny_folder(tmp_path)
    (tmp_path / "val" / "n9999").rmdir()
    for image in (tmp_path / "train" / "n0003").iterdir():
        image.unlink()
    with pytest.raises(DataError, match="n0003 holds no images"):
        tiny_folder(tmp_path)


def test_training_loop_runs_on_streamed_and_augmented_data(tmp_path):
    from lth.config import TrainConfig
    from lth.train import train

    write_imagefolder(tmp_path / "imagenet")
    write_cifar10(tmp_path / "cifar", count=4)
    config = TrainConfig(optimizer="sgd", lr=0.01, batch_size=4, iterations="2ep", eval_every="1ep")
    for data in (tiny_folder(tmp_path / "imagenet"), load_dataset("cifar10", tmp_path / "cifar")):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, data.num_classes))
        result = train(model, data, config, augment=True, quiet=True)
        assert [m["iteration"] for m in result.metrics] == [data.num_train // 4, 2 * (data.num_train // 4)]
        assert 0.0 <= result.final["test_accuracy"] <= 1.0


def test_stability_train_sample_spreads_over_all_classes(tmp_path):
    """Stability's train error and batch-norm statistics use a fixed sample spread over the classes,
    not the first N files (which are sorted by class: ImageNet's first 5,000 are ~4 classes)."""
    from lth.data.imagefolder import spread_sample
    from lth.connectivity import train_evaluation_sample

    write_imagefolder(tmp_path)
    data = tiny_folder(tmp_path)
    first = torch.cat([y for _, y in train_evaluation_sample(data, CPU, 3)])
    assert first.tolist() == [0, 1, 2]  # one of each class, where the first 3 files are all class 0
    five = [torch.cat([y for _, y in train_evaluation_sample(data, CPU, 5)]) for _ in range(2)]
    assert torch.bincount(five[0], minlength=3).tolist() in ([2, 2, 1], [2, 1, 2], [1, 2, 2])
    x = [torch.cat([x for x, _ in train_evaluation_sample(data, CPU, 5)]) for _ in range(2)]
    assert torch.equal(five[0], five[1]) and torch.equal(x[0], x[1])  # the same sample every time
    assert len(torch.cat([y for _, y in train_evaluation_sample(data, CPU, 100)])) == 12  # asking for more gives all
    labels = np.repeat(np.arange(1000), 1300)  # ImageNet's shape: 5 of each class, not 5000 of 4
    assert np.bincount(labels[spread_sample(labels, 5000)], minlength=1000).tolist() == [5] * 1000
