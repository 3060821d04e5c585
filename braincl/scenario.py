"""The class-incremental scenario: the single owner of class order, task split and label remapping.

Following PyCIL/iCaRL, the class order is a permutation drawn from ``class_order_seed`` (1993 by
default) and the model only ever sees *remapped* labels: the k-th class in the order is label k.
Nothing else in the suite knows which original class belongs to which task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.base import ImageDataset, ImageSource, SplitSources


@dataclass
class Subset:
    """Indices into a source, with their remapped labels."""

    source: ImageSource
    indices: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def dataset(self, transform=None, train: bool = False) -> ImageDataset:
        read = self.source.read_train if train else self.source.read
        indices = self.indices
        return ImageDataset(lambda i: read(int(indices[i])), self.labels, transform)

    def images(self) -> "np.ndarray":
        """All images in stored form (uint8, N x C x H x W)."""
        return self.source.read_many(self.indices)

    def restrict(self, mask: np.ndarray) -> "Subset":
        return Subset(self.source, self.indices[mask], self.labels[mask])


@dataclass
class Task:
    index: int
    classes: list[int]        # remapped labels of this task's classes
    original_classes: list[int]
    train: Subset
    test: Subset
    val: Subset | None = None   # the task's validation images (never given to a learner)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def eval_subset(self, split: str) -> Subset:
        """The images that ``eval.split`` names: ``test`` or ``val``."""
        if split == "test":
            return self.test
        if split == "val" and self.val is not None:
            return self.val
        raise ValueError(f"eval.split={split!r}: this data set has no such split (set dataset.validation.source "
                         "to train or official for a validation split)")


class Scenario:
    def __init__(self, splits: SplitSources, *, class_order_seed: int = 1993, shuffle_classes: bool = True,
                 initial_classes: int | None = None, increment: int | None = None,
                 tasks: list[list[int]] | None = None, num_tasks: int | None = None,
                 exclude_classes: list[int] | None = None):
        self.splits = splits
        self.exclude_classes = sorted(set(exclude_classes or []))
        n = splits.num_classes
        bad = [c for c in self.exclude_classes if not 0 <= c < n]
        if bad:
            raise ValueError(f"excluded classes {bad} are outside 0..{n - 1}")
        if tasks:
            flat = [c for t in tasks for c in t]
            bad = [c for c in flat if not 0 <= c < n]
            if bad:
                raise ValueError(f"scenario.tasks names classes {bad}; the data set has classes 0..{n - 1}")
            repeated = sorted({c for c in flat if flat.count(c) > 1})
            if repeated:
                raise ValueError(f"scenario.tasks names class(es) {repeated} more than once; each class belongs "
                                 "to one task")
            clash = sorted(set(flat) & set(self.exclude_classes))
            if clash:
                raise ValueError(f"scenario.tasks names held-out classes {clash}")
            order = flat
            sizes = [len(t) for t in tasks]
        else:
            order = [c for c in range(n) if c not in self.exclude_classes]
            if shuffle_classes:
                order = np.random.RandomState(class_order_seed).permutation(order).tolist()
            first = initial_classes or increment or len(order)
            step = increment or first
            available = (f"{len(order)} classes are available ({n} in the data set"
                         + (f", {len(self.exclude_classes)} held out)" if self.exclude_classes else ")"))
            if first > len(order):
                key = "initial_classes" if initial_classes else "increment"
                raise ValueError(f"scenario.{key}={first} but only {available}")
            if len(order) > first and step > len(order) - first:
                # the split would silently become [first, rest]: not what the increment asked for
                raise ValueError(f"scenario.increment={step} is more than the {len(order) - first} classes left "
                                 f"after the first task of {first}; {available}")
            sizes = [first] + [step] * ((len(order) - first) // step)
            if sum(sizes) < len(order):
                sizes.append(len(order) - sum(sizes))  # a last, smaller task takes the remainder
        if num_tasks is not None:
            if num_tasks > len(sizes):
                raise ValueError(f"scenario.num_tasks={num_tasks} but the split has only {len(sizes)} tasks")
            sizes = sizes[:num_tasks]
            order = order[:sum(sizes)]
        self.class_order: list[int] = [int(c) for c in order]
        self.task_sizes: list[int] = sizes
        self._remap = {c: i for i, c in enumerate(self.class_order)}
        self.class_order_seed = class_order_seed

    @classmethod
    def from_config(cls, splits: SplitSources, scenario_cfg: dict, exclude_classes=None) -> "Scenario":
        keys = ("class_order_seed", "shuffle_classes", "initial_classes", "increment", "tasks", "num_tasks")
        return cls(splits, exclude_classes=exclude_classes, **{k: scenario_cfg.get(k) for k in keys if k in scenario_cfg})

    @property
    def num_tasks(self) -> int:
        return len(self.task_sizes)

    @property
    def num_classes(self) -> int:
        return len(self.class_order)

    def task_classes(self, t: int) -> list[int]:
        start = sum(self.task_sizes[:t])
        return list(range(start, start + self.task_sizes[t]))

    def classes_up_to(self, t: int) -> list[int]:
        return list(range(sum(self.task_sizes[: t + 1])))

    def remap(self, original: np.ndarray) -> np.ndarray:
        return np.asarray([self._remap[int(c)] for c in original], dtype=np.int64)

    def _subset(self, source: ImageSource, remapped: list[int]) -> Subset:
        originals = np.asarray([self.class_order[c] for c in remapped])
        mask = np.isin(source.targets, originals)
        idx = np.flatnonzero(mask)
        return Subset(source, idx, self.remap(source.targets[idx]))

    def task(self, t: int) -> Task:
        if not 0 <= t < self.num_tasks:
            raise IndexError(f"task {t} outside 0..{self.num_tasks - 1}")
        classes = self.task_classes(t)
        val = self._subset(self.splits.val, classes) if self.splits.val is not None else None
        return Task(index=t, classes=classes, original_classes=[self.class_order[c] for c in classes],
                    train=self._subset(self.splits.train, classes), test=self._subset(self.splits.test, classes),
                    val=val)

    def held_out_test(self) -> Subset:
        """Test samples of the excluded classes (labels are the original ids; never trained on)."""
        mask = np.isin(self.splits.test.targets, self.exclude_classes)
        idx = np.flatnonzero(mask)
        return Subset(self.splits.test, idx, self.splits.test.targets[idx])

    def describe(self) -> dict:
        return {
            "class_order": self.class_order,
            "class_order_seed": self.class_order_seed,
            "task_sizes": self.task_sizes,
            "tasks": [[self.class_order[c] for c in self.task_classes(t)] for t in range(self.num_tasks)],
            "class_names": [self.splits.class_names[c] for c in self.class_order],
            "held_out_classes": self.exclude_classes,
        }
