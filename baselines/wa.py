"""``wa``: Weight Aligning (Zhao et al., 2020, "Maintaining Discrimination and Fairness").

Training as BiC's first stage: ``(1 - l) * CE + l * KD(T)`` over new data plus the buffer, with
``l = n_old / n_seen``; the classifier weights are clipped to be non-negative after every step
(the paper's weight clipping, which makes their norms comparable). After each incremental task the
new classes' rows of the head are rescaled by ``gamma = mean ||w_old|| / mean ||w_new||``, so the
mean norms match. The bias rows are scaled with them so that each new logit is scaled by gamma."""

from __future__ import annotations

import torch

from braincl.distill import TeacherMixin, old_new_balanced_loss
from braincl.methods.er import ReplayLearner
from braincl.registry import METHODS


@torch.no_grad()
def align_weights(fc: torch.nn.Linear, num_old: int) -> float:
    """Scale rows ``num_old:`` of ``fc`` so their mean weight norm equals that of rows ``:num_old``."""
    norms = fc.weight.norm(dim=1)
    gamma = (norms[:num_old].mean() / norms[num_old:].mean()).item()
    fc.weight[num_old:] *= gamma
    fc.bias[num_old:] *= gamma
    return gamma


@METHODS.register("wa")
class WeightAligning(TeacherMixin, ReplayLearner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gammas: list[float] = []

    def loss(self, x, y):
        teacher = self.teacher_logits(x) if self.teacher is not None else None
        return old_new_balanced_loss(self.model(x), y, teacher, self.params["temperature"])

    @torch.no_grad()
    def clip_head(self):
        self.model.head.fc.weight.clamp_(min=0)

    def train_task(self, task):
        self.engine.fit(self.model, self.train_loader(task, extra=[self.buffer_dataset()]),
                        step=lambda batch, _: self.loss(*batch[:2]), desc=f"task {task.index + 1} (wa)",
                        after_step=self.clip_head if self.params["clip_weights"] else None)

    def end_task(self, task):
        if self.teacher is not None:
            self.gammas.append(align_weights(self.model.head.fc, self.num_old_classes))
        self.keep_teacher()  # first: a charged teacher (memory.charge_teacher) shrinks the quota
        self.update_buffer(task, self.params["selection"])

    def info(self):
        return {"align_gamma": self.gammas}
