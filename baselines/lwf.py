"""``lwf``: Learning without Forgetting (Li & Hoiem, 2017) in the class-incremental setting.

No exemplars: the new task's data is classified over the new classes' logits only, while the old
classes' logits are distilled from the frozen previous model (multi-class KD, temperature ``T``).
Restricting the classification loss to the new classes follows PyCIL's class-incremental LwF: a
cross-entropy over every class would push the old logits down on data that has none of them."""

from __future__ import annotations

import torch.nn.functional as F

from braincl.distill import TeacherMixin, kd_loss
from braincl.learner import Learner
from braincl.registry import METHODS


@METHODS.register("lwf")
class LwF(TeacherMixin, Learner):
    needs_budget = False  # keeps no exemplars; its only state is the teacher (kind ``teacher``)

    def loss(self, x, y):
        logits = self.model(x)
        old = self.num_old_classes
        loss = F.cross_entropy(logits[:, old:], y - old)
        if self.teacher is not None:
            loss = loss + self.params["lambda"] * kd_loss(logits[:, :old], self.teacher_logits(x),
                                                          self.params["temperature"])
        return loss

    def train_task(self, task):
        self.engine.fit(self.model, self.train_loader(task), step=lambda batch, _: self.loss(*batch[:2]),
                        desc=f"task {task.index + 1} (lwf)")

    def end_task(self, task):
        self.keep_teacher()
