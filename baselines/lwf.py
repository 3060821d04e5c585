"""``lwf``: Learning without Forgetting (Li & Hoiem, 2017) in the class-incremental setting.

No exemplars: the new task's data is classified while the old classes' logits are distilled from
the frozen previous model (multi-class KD at temperature ``T``, ``braincl.distill.kd_loss``, without
``T^2`` as PyCIL, FACIL and Mammoth).

- ``ce_scope: new`` (default) classifies over the new classes' logits only, as PyCIL's
  class-incremental LwF: a cross-entropy over every class would push the old logits down on data
  that has none of them. ``seen``: over every class seen so far, as Mammoth's ``models/lwf.py``.
- ``warmup_epochs``: before a task (from the second on), train the head alone on the new classes
  with the backbone frozen, as Mammoth's ``begin_task`` does (``n_epochs`` there); the teacher is
  the model after this warm-up, whose old-class outputs it leaves unchanged, so the copy kept at
  the end of the previous task serves."""

from __future__ import annotations

import torch
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
        if self.params["ce_scope"] == "new":
            loss = F.cross_entropy(logits[:, old:], y - old)
        else:
            loss = F.cross_entropy(logits, y)
        if self.teacher is not None:
            loss = loss + self.params["lambda"] * kd_loss(logits[:, :old], self.teacher_logits(x),
                                                          self.params["temperature"])
        return loss

    def warm_up_head(self, task):
        old = self.num_old_classes

        def step(batch, _):
            with torch.no_grad():
                feats = self.model.features(batch[0])
            return F.cross_entropy(self.model.head(feats)[:, old:], batch[1] - old)

        self.engine.fit(self.model, self.train_loader(task), step=step, params=self.model.head.parameters(),
                        epochs=self.params["warmup_epochs"], optimizer={"weight_decay": 0.0, "momentum": 0.0},
                        train_mode=self.model.eval, desc=f"task {task.index + 1} (lwf head warm-up)", phase="warmup")

    def train_task(self, task):
        if self.teacher is not None and self.params["warmup_epochs"]:
            self.warm_up_head(task)
        self.engine.fit(self.model, self.train_loader(task), step=lambda batch, _: self.loss(*batch[:2]),
                        desc=f"task {task.index + 1} (lwf)")

    def end_task(self, task):
        self.keep_teacher()
