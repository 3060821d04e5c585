"""What every data set provides: a train and a test ``ImageSource`` over integer class labels.

Every image travels through the suite as a uint8 CHW tensor at its *storage* resolution. Raw
exemplar buffers store exactly these bytes, BrainCL's codec encodes them and recalls them, and
augmentation and normalisation act on them last. One pipeline for fresh, stored and recalled
samples keeps the comparison between methods fair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch


class DataError(RuntimeError):
    """Missing or malformed data. The message names the file or folder and how to fix it."""


class ImageSource:
    """Images with labels. ``read(i)`` gives the stored form, ``read_train(i)`` the input to the
    training augmentation (the same, except for sources that crop from full-size files)."""

    targets: np.ndarray
    channels: int
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.targets)

    def read(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def read_train(self, index: int) -> torch.Tensor:
        return self.read(index)

    def read_many(self, indices: Sequence[int]) -> torch.Tensor:
        if len(indices) == 0:
            return torch.zeros((0, self.channels, *self.size), dtype=torch.uint8)
        return torch.stack([self.read(int(i)) for i in indices])

    @property
    def bytes_per_image(self) -> int:
        return int(self.channels * self.size[0] * self.size[1])


class TensorSource(ImageSource):
    """A source held in memory as one uint8 tensor (N, C, H, W)."""

    def __init__(self, images: torch.Tensor | np.ndarray, targets: np.ndarray):
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"TensorSource needs uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} labels")
        self.images = images.contiguous()
        self.targets = np.asarray(targets, dtype=np.int64)
        self.channels = int(images.shape[1])
        self.size = (int(images.shape[2]), int(images.shape[3]))

    def read(self, index: int) -> torch.Tensor:
        return self.images[index]

    def read_many(self, indices: Sequence[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(np.asarray(indices, dtype=np.int64))].clone()


@dataclass
class SplitSources:
    """What a data set's builder returns."""

    train: ImageSource
    test: ImageSource
    class_names: list[str]
    val: ImageSource | None = None
    info: dict = field(default_factory=dict)  # recorded in the run record (class list, hash, ...)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class ImageDataset(torch.utils.data.Dataset):
    """A torch Dataset over (source, indices) with labels remapped, plus a transform.

    ``extras`` are per-sample tensors returned after the label (DER++'s stored logits, ...)."""

    def __init__(self, reader: Callable[[int], torch.Tensor], labels: np.ndarray,
                 transform: Callable | None = None, extras: Sequence[torch.Tensor] = ()):
        self.reader = reader
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.extras = tuple(extras)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.reader(i)
        if self.transform is not None:
            image = self.transform(image)
        return (image, int(self.labels[i]), *(extra[i] for extra in self.extras))


def stratified_split(targets: np.ndarray, per_class: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """Split indices per class into named parts of fixed per-class size, reproducibly."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {name: [] for name in per_class}
    for cls in np.unique(targets):
        idx = np.flatnonzero(targets == cls)
        rng.shuffle(idx)
        need = sum(per_class.values())
        if len(idx) < need:
            raise DataError(f"class {cls} has {len(idx)} samples, but the split asks for {need} ({per_class})")
        start = 0
        for name, n in per_class.items():
            parts[name].extend(idx[start:start + n].tolist())
            start += n
    return {name: np.sort(np.asarray(ix, dtype=np.int64)) for name, ix in parts.items()}


class SubsetSource(ImageSource):
    """The images ``indices`` of another source (a validation split carved from training data).
    ``parent_indices`` lets a test prove that two carved parts share no image."""

    def __init__(self, parent: ImageSource, indices: np.ndarray):
        self.parent = parent
        self.parent_indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(parent.targets)[self.parent_indices]
        self.channels = parent.channels
        self.size = parent.size

    def read(self, index: int) -> torch.Tensor:
        return self.parent.read(int(self.parent_indices[index]))

    def read_train(self, index: int) -> torch.Tensor:
        return self.parent.read_train(int(self.parent_indices[index]))

    def read_many(self, indices: Sequence[int]) -> torch.Tensor:
        return self.parent.read_many(self.parent_indices[np.asarray(indices, dtype=np.int64)])

    @property
    def samples(self) -> list:
        """A file-backed parent's (path, label) list, restricted to this subset (in its order)."""
        return [self.parent.samples[int(i)] for i in self.parent_indices]

    def __getattr__(self, name):
        # other attributes of the parent that a loader or a check reads (FolderSource's train view, ...)
        if name == "parent":
            raise AttributeError(name)
        return getattr(self.parent, name)


VALIDATION_SOURCES = ("auto", "official", "train", "none")


def validation_counts(counts: np.ndarray, per_class: int | None, fraction: float | None) -> np.ndarray:
    """Validation images per class. ``per_class``: exactly that many. ``fraction``: ceil(fraction *
    n), so every class with two or more images gives at least one, but never a class's last image."""
    counts = np.asarray(counts, dtype=np.int64)
    if per_class is not None:
        return np.full_like(counts, int(per_class))
    want = np.ceil(float(fraction) * counts - 1e-9).astype(np.int64)
    return np.minimum(want, np.maximum(counts - 1, 0))


def carve_validation(splits: SplitSources, spec: dict | None) -> tuple[SplitSources, dict]:
    """Apply ``dataset.validation`` to a data set's splits and say what was done.

    ``source``: ``official`` keeps the data set's own validation split (MedMNIST's ``val``, an image
    folder's ``val/``); ``train`` carves a seeded, class-stratified part of the training data
    (``per_class`` images of every class, or a ``fraction`` of each) and removes it from training;
    ``auto`` is ``official`` where the data set has one and ``train`` otherwise; ``none`` keeps every
    training image and has no validation split. Returns the new splits (training data without the
    validation images) and the record of the rule, for ``metrics.json``."""
    spec = dict(spec or {})
    source = spec.get("source", "auto")
    per_class, fraction, seed = spec.get("per_class"), spec.get("fraction"), int(spec.get("seed", 0))
    if source not in VALIDATION_SOURCES:
        raise DataError(f"dataset.validation.source must be one of {', '.join(VALIDATION_SOURCES)}, not {source!r}")
    if source == "auto":
        source = "official" if splits.val is not None else "train"
    if source == "none":
        out = SplitSources(splits.train, splits.test, splits.class_names, None, splits.info)
        return out, {"source": "none", "samples": 0, "train_samples": len(splits.train)}
    if source == "official":
        if splits.val is None:
            raise DataError("dataset.validation.source=official, but this data set has no validation split of its "
                            "own; set dataset.validation.source to train (carved from the training data) or none")
        return splits, {"source": "official", "samples": len(splits.val), "train_samples": len(splits.train)}
    if (per_class is None) == (fraction is None):
        raise DataError(f"dataset.validation: give exactly one of per_class and fraction (the other null), got "
                        f"per_class={per_class!r}, fraction={fraction!r}")
    if per_class is not None and (not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1):
        raise DataError(f"dataset.validation.per_class must be a positive integer, got {per_class!r}")
    if fraction is not None and not 0 < float(fraction) < 1:
        raise DataError(f"dataset.validation.fraction must lie strictly between 0 and 1, got {fraction!r}")
    targets = np.asarray(splits.train.targets)
    classes, counts = np.unique(targets, return_counts=True)
    take = validation_counts(counts, per_class, fraction)
    short = [(int(c), int(n)) for c, n, k in zip(classes, counts, take) if k >= n]
    if short:
        c, n = short[0]
        raise DataError(f"dataset.validation.per_class={per_class} leaves class {splits.class_names[c]!r} no training "
                        f"image (it has {n}); lower dataset.validation.per_class or use fraction")
    rng = np.random.default_rng(seed)
    val_idx = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(targets == c)
        val_idx.extend(rng.permutation(idx)[: int(k)].tolist())
    val_idx = np.sort(np.asarray(val_idx, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(targets)), val_idx)
    out = SplitSources(SubsetSource(splits.train, train_idx), splits.test, splits.class_names,
                       SubsetSource(splits.train, val_idx), splits.info)
    record = {"source": "train", "per_class": per_class, "fraction": fraction, "seed": seed,
              "samples": int(len(val_idx)), "train_samples": int(len(train_idx))}
    return out, record
