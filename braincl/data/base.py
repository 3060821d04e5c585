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
