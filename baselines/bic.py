"""``bic``: Bias Correction (Wu et al., 2019, "Large Scale Incremental Learning").

Stage one trains the network on new data plus the buffer with ``(1 - l) * CE + l * KD(T)``,
``l = n_old / n_seen``, distilling from the previous model *with* its bias correction. A balanced
validation split is held out of stage one: the last (lowest-priority) ``v`` exemplars of each old
class in the buffer and ``v`` samples of each new class, ``v = max(1, val_fraction * quota)``.
Stage two freezes the network and fits only the two parameters of the bias layer
``q_k = alpha * o_k + beta`` on the new classes' logits (Eq. 5) on that split, by cross-entropy.

Memory: the buffer (``exemplars``), the current (alpha, beta) (``other``), and the teacher with its
own bias layer (``teacher``).

Reference behaviour (FACIL ``src/approach/bic.py``, PyCIL ``models/bic.py``): ``v = ceil(val_fraction
* exemplars per class)`` held-out samples per class (FACIL), the new classes' ones taken out of
stage one's training data; stage two runs its own ``bias_epochs`` (FACIL 200, PyCIL 170) of SGD with
momentum 0.9 and no weight decay on augmented validation batches, with the original code's
``0.1 * beta^2 / 2`` penalty (as FACIL keeps it)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from braincl.distill import TeacherMixin, old_new_balanced_loss
from braincl.memory.budget import module_nbytes
from braincl.methods.er import ReplayLearner
from braincl.registry import METHODS
from braincl.seeding import derive_seed


class BiasLayer(nn.Module):
    """``alpha * o + beta`` on the logits from index ``start`` on (the newest task's classes)."""

    def __init__(self, start: int):
        super().__init__()
        self.start = start
        self.alpha = nn.Parameter(torch.ones(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.cat([logits[:, : self.start], self.alpha * logits[:, self.start:] + self.beta], dim=1)


@METHODS.register("bic")
class BiC(TeacherMixin, ReplayLearner):
    bias: BiasLayer | None = None
    teacher_bias: BiasLayer | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.val_sizes: list[int] = []  # stage-two validation samples per task

    # ------------------------------------------------------------------ teacher with its correction
    def keep_teacher(self):
        super().keep_teacher()
        self.teacher_bias = copy.deepcopy(self.bias).requires_grad_(False) if self.bias is not None else None

    @torch.no_grad()
    def teacher_logits(self, x):
        out = super().teacher_logits(x)
        return self.teacher_bias(out) if self.teacher_bias is not None else out

    def predict(self, x):
        out = self.model(x)
        return self.bias(out) if self.bias is not None else out

    # ------------------------------------------------------------------ stage one
    def loss(self, x, y):
        teacher = self.teacher_logits(x) if self.teacher is not None else None
        return old_new_balanced_loss(self.model(x), y, teacher, self.params["temperature"])

    def split_validation(self, task):
        """(stage-one datasets, validation dataset): ``v`` held-out samples per seen class."""
        v = max(1, math.ceil(self.params["val_fraction"] * self.quota()))
        rng = np.random.default_rng(derive_seed(self.ctx.seed, "bic-val", task.index))
        new_val = np.zeros(len(task.train), dtype=bool)
        for cls in task.classes:
            idx = np.flatnonzero(task.train.labels == cls)
            new_val[rng.choice(idx, size=min(v, len(idx) - 1), replace=False)] = True
        old_val = torch.zeros(len(self.buffer), dtype=torch.bool)
        labels = self.buffer.labels.numpy()
        for cls in np.unique(labels):
            idx = np.flatnonzero(labels == cls)
            old_val[idx[len(idx) - min(v, len(idx) - 1):]] = True  # the lowest-priority ones
        tf = self.ctx.train_transform
        old_train, old_held = copy.copy(self.buffer), copy.copy(self.buffer)
        old_train.keep(~old_val)
        old_held.keep(old_val)
        train = [task.train.restrict(~new_val).dataset(tf, train=True), old_train.subset_dataset(tf)]
        val = torch.utils.data.ConcatDataset([task.train.restrict(new_val).dataset(tf, train=True),
                                              old_held.subset_dataset(tf)])
        return train, val

    # ------------------------------------------------------------------ stage two
    def bias_step(self, batch, _):
        x, y = batch[0], batch[1]
        with torch.no_grad():
            logits = self.model(x)
        return F.cross_entropy(self.bias(logits), y) + self.params["beta_l2"] * self.bias.beta.pow(2).sum() / 2

    def fit_bias(self, val):
        self.bias = BiasLayer(self.num_old_classes)
        # FACIL: SGD, momentum 0.9, no weight decay (decay would pull alpha towards 0, not towards 1)
        overrides = {"name": "sgd", "momentum": 0.9, "weight_decay": 0.0}
        if self.params["bias_lr"] is not None:
            overrides["lr"] = self.params["bias_lr"]
        self.val_sizes.append(len(val))
        self.engine.fit(self.bias, self.engine.loader(val, shuffle=True), step=self.bias_step,
                        params=self.bias.parameters(), epochs=self.params["bias_epochs"], optimizer=overrides,
                        train_mode=self.eval_mode, desc=f"task {self.task_index + 1} (bic stage 2)", phase="bias",
                        backbone=self.model.backbone)

    def train_task(self, task):
        if self.teacher is None:  # first task: plain training, no correction
            self.engine.fit(self.model, self.train_loader(task), desc=f"task {task.index + 1} (bic)")
            return
        train, val = self.split_validation(task)
        self.engine.fit(self.model, self.engine.loader(torch.utils.data.ConcatDataset(train), shuffle=True,
                                                       drop_last=True),
                        step=lambda batch, _: self.loss(*batch[:2]), desc=f"task {task.index + 1} (bic stage 1)")
        self.fit_bias(val)

    def end_task(self, task):
        self.keep_teacher()  # first: a charged teacher (memory.charge_teacher) shrinks the quota
        self.update_buffer(task, self.params["selection"])

    def memory(self):
        out = super().memory()
        if self.teacher_bias is not None:
            out.add("teacher", module_nbytes(self.teacher_bias))
        return out.add("other", module_nbytes(self.bias)) if self.bias is not None else out

    def info(self):
        return {"bias": None if self.bias is None else [self.bias.alpha.item(), self.bias.beta.item()],
                "bias_validation_samples": self.val_sizes}
