"""``er``: experience replay of raw uint8 exemplars, class-balanced, within the byte budget.

Each task trains on the union of its data and the buffer (rehearsal, as in iCaRL/PyCIL). After the
task, every seen class gets an equal share of the budget and the buffer is cut to it; new classes
fill their share by the configured selection (random by default)."""

from __future__ import annotations

import numpy as np
import torch

from ..learner import Learner
from ..memory import BudgetExceeded
from ..memory.exemplars import ExemplarBuffer, per_class_quota
from ..memory.selection import select
from ..registry import METHODS


class ReplayLearner(Learner):
    """Shared by every method that keeps a class-balanced raw-exemplar buffer."""

    extra_bytes_per_exemplar = 0  # e.g. DER++'s stored logits

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer = ExemplarBuffer()

    def exemplar_bytes(self) -> int:
        return ExemplarBuffer.bytes_per_exemplar(self.ctx.image_shape, self.extra_bytes_per_exemplar)

    def reserved_bytes(self) -> int:
        """Bytes the method keeps besides the buffer (charged kinds only)."""
        return self.memory().charged - self.buffer.nbytes()

    def setup(self):
        per = self.exemplar_bytes()
        need = per * self.ctx.num_classes
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"{type(self).__name__}: memory.budget={self.budget.total} bytes cannot hold one exemplar of "
                f"each of the {self.ctx.num_classes} classes ({per} bytes each); give at least {need} bytes")

    def buffer_dataset(self):
        return self.buffer.subset_dataset(self.ctx.train_transform)

    def quota(self) -> int:
        return per_class_quota(self.budget.total - self.reserved_bytes(), len(self.seen_classes), self.exemplar_bytes())

    def update_buffer(self, task, strategy: str = "random", extras_fn=None) -> None:
        m = self.quota()
        self.buffer.reduce_per_class(m)
        labels = task.train.labels
        for cls in task.classes:
            idx = np.flatnonzero(labels == cls)
            images = task.train.source.read_many(task.train.indices[idx])
            feats = self.selection_features(images) if strategy != "random" else np.zeros((len(idx), 1))
            order = select(strategy, feats, m, seed=self.ctx.seed * 1000 + cls)
            chosen = images[torch.as_tensor(order)]
            extras = extras_fn(chosen) if extras_fn else {}
            self.buffer.add(chosen, np.full(len(order), cls), **extras)

    def memory(self):
        return super().memory().add("exemplars", self.buffer.nbytes())


@METHODS.register("er")
class ExperienceReplay(ReplayLearner):
    def train_task(self, task):
        self.engine.fit(self.model, self.train_loader(task, extra=[self.buffer_dataset()]),
                        desc=f"task {task.index + 1} (er)")

    def end_task(self, task):
        self.update_buffer(task, self.params.get("selection", "random"))
