"""Raw-exemplar buffer: uint8 images at storage resolution plus an int16 label each, class-balanced.

Replay (ER), iCaRL, DER/DER++, BiC and WA all keep this buffer; they differ in how they select
(``selection.py``) and in what else they store beside each exemplar (``extras``). The buffer is
filled either class-balanced at the end of each task (``reduce_per_class`` + ``add``) or from the
stream during training by reservoir sampling (``reservoir_add``, Mammoth's ``utils/buffer.py``)."""

from __future__ import annotations

import numpy as np
import torch

from .budget import tensor_nbytes

LABEL_DTYPE = torch.int16  # per-exemplar metadata: the label, 2 bytes


class ExemplarBuffer:
    def __init__(self):
        self.images = torch.zeros((0,), dtype=torch.uint8)
        self.labels = torch.zeros((0,), dtype=LABEL_DTYPE)
        self.extras: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return int(self.labels.numel())

    @staticmethod
    def bytes_per_exemplar(image_shape, extra_bytes: int = 0) -> int:
        return int(np.prod(image_shape)) + torch.tensor([], dtype=LABEL_DTYPE).element_size() + extra_bytes

    def nbytes(self) -> int:
        return tensor_nbytes(self.images, self.labels, *self.extras.values()) if len(self) else 0

    def classes(self) -> list[int]:
        return sorted(set(self.labels.tolist()))

    def per_class_count(self) -> dict[int, int]:
        values, counts = np.unique(self.labels.numpy(), return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def add(self, images: torch.Tensor, labels, **extras: torch.Tensor) -> None:
        images = images.to(torch.uint8).cpu()
        labels = torch.as_tensor(np.asarray(labels), dtype=LABEL_DTYPE)
        if len(self) == 0:
            self.images, self.labels = images.clone(), labels.clone()
            self.extras = {k: v.detach().cpu().clone() for k, v in extras.items()}
            return
        if set(extras) != set(self.extras):
            raise ValueError(f"extras {sorted(extras)} differ from the buffer's {sorted(self.extras)}")
        self.images = torch.cat([self.images, images])
        self.labels = torch.cat([self.labels, labels])
        for k, v in extras.items():
            self.extras[k] = torch.cat([self.extras[k], v.detach().cpu()])

    def keep(self, mask_or_index) -> None:
        idx = torch.as_tensor(mask_or_index)
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        self.images, self.labels = self.images[idx], self.labels[idx]
        self.extras = {k: v[idx] for k, v in self.extras.items()}

    def reduce_per_class(self, per_class: int) -> None:
        """Keep the first ``per_class`` exemplars of each class. Selection orders each class's
        exemplars by priority when they are added, so the first ones are the ones to keep."""
        keep = torch.zeros(len(self), dtype=torch.bool)
        labels = self.labels.numpy()
        for cls in np.unique(labels):
            idx = np.flatnonzero(labels == cls)[:per_class]
            keep[idx] = True
        self.keep(keep)

    def reservoir_add(self, images: torch.Tensor, labels, capacity: int, seen: int, rng: np.random.Generator,
                      **extras: torch.Tensor) -> int:
        """Reservoir sampling over the stream (Vitter's algorithm R, as Mammoth's ``reservoir``):
        sample number ``n`` (0-based, counted over the whole stream) fills slot ``n`` while the
        buffer is not full; later it replaces a uniformly drawn slot ``r ~ U{0..n}`` if
        ``r < capacity`` and is dropped otherwise. Every sample seen so far is therefore in the
        buffer with the same probability ``capacity / seen``. Returns the new ``seen``."""
        images = images.to(torch.uint8).cpu()
        labels = torch.as_tensor(np.asarray(labels), dtype=LABEL_DTYPE)
        extras = {k: v.detach().cpu() for k, v in extras.items()}
        append, replace_slot, replace_src = [], [], []
        for i in range(len(labels)):
            if seen < capacity:
                append.append(i)
            else:
                r = int(rng.integers(0, seen + 1))
                if r < capacity:
                    replace_slot.append(r)
                    replace_src.append(i)
            seen += 1
        if append:  # the stream's earlier samples: they come before any replacement
            idx = torch.as_tensor(append)
            self.add(images[idx], labels[idx].numpy(), **{k: v[idx] for k, v in extras.items()})
        for slot, i in zip(replace_slot, replace_src):  # in stream order: a slot drawn twice keeps the later sample
            self.images[slot] = images[i]
            self.labels[slot] = labels[i]
            for k, v in extras.items():
                self.extras[k][slot] = v[i].to(self.extras[k].dtype)
        return seen

    def subset_dataset(self, transform=None):
        from ..data.base import ImageDataset

        images = self.images
        extras = tuple(self.extras[k] for k in sorted(self.extras))
        return ImageDataset(lambda i: images[i], self.labels.numpy().astype(np.int64), transform, extras)


def per_class_quota(available_bytes: float, num_classes: int, bytes_per_exemplar: int) -> int:
    """Exemplars per class that fit: the class-balanced split of the bytes left."""
    if num_classes <= 0:
        return 0
    if available_bytes == float("inf"):
        raise ValueError("a class-balanced buffer needs a finite memory.budget")
    return max(0, int(available_bytes // (bytes_per_exemplar * num_classes)))
