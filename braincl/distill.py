"""Knowledge-distillation losses and the frozen-teacher bookkeeping shared by LwF, iCaRL, BiC and WA.

The losses are written as divergences (KL), not as cross-entropies: the gradient with respect to
the student is the same, but a divergence is exactly zero when the student matches the teacher,
which makes the loss value itself meaningful and testable.

- ``kd_loss``: multi-class distillation of Hinton et al. (2015) as used by LwF (Li & Hoiem, 2017),
  BiC (Wu et al., 2019) and WA (Zhao et al., 2020): ``KL(softmax(t/T) || softmax(s/T))``, *without*
  Hinton's ``T^2`` factor, as the reference implementations do (PyCIL ``_KD_loss``, FACIL
  ``cross_entropy`` in ``approach/lwf.py``, Mammoth ``modified_kl_div`` in ``models/lwf.py``): the
  published loss weights were tuned at that scale. ``t_squared=True`` gives Hinton's form.
- ``binary_kd_loss``: iCaRL's distillation (Rebuffi et al., 2017): per-class sigmoid targets from
  the old network, i.e. a binary cross-entropy on each old output; summed over classes, averaged
  over the batch as FACIL does.
- ``logit_matching_loss``: DER's (Buzzega et al., 2020) mean squared error between every current
  logit and the stored ones (zero where an output did not exist at storage), as Mammoth's
  ``F.mse_loss(outputs, logits)`` over its fixed full-width head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .compute import purpose
from .learner import frozen_copy
from .memory.budget import BudgetExceeded, module_nbytes


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0,
            t_squared: bool = False) -> torch.Tensor:
    """``KL(p_teacher^T || p_student^T)`` averaged over the batch, with ``p^T = softmax(logits / T)``.
    Its gradient equals that of PyCIL's, FACIL's and Mammoth's soft-target cross-entropy (no
    ``T^2``), whose loss weights the method YAMLs reproduce. ``t_squared`` multiplies by ``T^2``
    (Hinton et al., 2015), which keeps the gradient scale independent of ``T``."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    if student_logits.shape[1] == 0:
        return student_logits.sum() * 0.0
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature ** 2 if t_squared else kl


def binary_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """iCaRL's sigmoid distillation as a binary KL per output: summed over outputs, mean over batch."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    s, t = student_logits.float(), teacher_logits.float()
    q = torch.sigmoid(t)
    # KL(Bern(q) || Bern(sigmoid(s))) = BCE(s; q) - H(q); both terms from logits for stability.
    bce = F.binary_cross_entropy_with_logits(s, q, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(t, q, reduction="none")
    return (bce - entropy).sum(dim=1).mean()


def logit_matching_loss(student_logits: torch.Tensor, stored_logits: torch.Tensor) -> torch.Tensor:
    """DER's MSE between every output of the model and the logits stored with each exemplar, mean
    over samples and outputs (Mammoth ``models/der.py``). ``stored_logits`` are zero-padded to at
    least the model's width: an output added after storage is pulled to zero on old samples."""
    width = student_logits.shape[1]
    if stored_logits.shape[1] < width:
        raise ValueError(f"stored logits have {stored_logits.shape[1]} outputs, fewer than the model's {width}; "
                         "store them padded to the scenario's final number of classes")
    return F.mse_loss(student_logits.float(), stored_logits[:, :width].float().to(student_logits.device))


def old_new_balanced_loss(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None,
                          temperature: float = 2.0) -> torch.Tensor:
    """``(1 - l) * CE + l * KD`` with ``l = n_old / n_seen`` (BiC, Wu et al. 2019, Eq. 4; reused by WA,
    Zhao et al. 2020). Plain cross-entropy on the first task, when there is no teacher."""
    ce = F.cross_entropy(logits, targets)
    if teacher_logits is None:
        return ce
    old = teacher_logits.shape[1]
    share = old / logits.shape[1]
    return (1 - share) * ce + share * kd_loss(logits[:, :old], teacher_logits, temperature)


class TeacherMixin:
    """Keeps the frozen copy of the previous model for distillation and reports it under the
    ``teacher`` memory kind (charged only when ``memory.charge_teacher`` is true).

    Use before the learner base class: ``class LwF(TeacherMixin, Learner)``."""

    teacher: nn.Module | None = None

    def setup(self) -> None:
        super().setup()
        if self.budget.total is None or "teacher" in self.budget.uncharged:
            return
        head = self.model.head
        # the teacher is a copy of the model, whose head will have grown to every class
        need = module_nbytes(self.model) + (self.ctx.num_classes - head.num_classes) * (
            head.in_features + 1) * head.fc.weight.element_size()
        if self.budget.total < need:
            raise BudgetExceeded(
                f"{type(self).__name__}: memory.charge_teacher is true, but memory.budget={self.budget.total} "
                f"bytes cannot hold the teacher copy of the model ({need} bytes at {self.ctx.num_classes} "
                f"classes); raise memory.budget or set memory.charge_teacher=false")

    def keep_teacher(self) -> None:
        self.teacher = frozen_copy(self.model)

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        with purpose("teacher"):  # its FLOPs are counted apart from the student's
            return self.teacher(x)

    @property
    def num_old_classes(self) -> int:
        return 0 if self.teacher is None else self.teacher.num_classes

    def memory(self):
        breakdown = super().memory()
        return breakdown.add("teacher", module_nbytes(self.teacher)) if self.teacher is not None else breakdown
