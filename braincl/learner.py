"""The learner contract. A method overrides only the hooks it changes (FACIL/Avalanche style).

Lifecycle, per task: ``begin_task`` -> ``train_task`` -> ``end_task``; then the runner evaluates
with ``predictors()`` and charges ``memory()`` against the budget. ``setup`` runs once before the
first task and is where a method refuses a budget it cannot work with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .engine import Engine
from .memory import Budget, MemoryBreakdown
from .models.net import IncrementalNet


@dataclass
class RunContext:
    """What a learner may know about the run besides its model: never the scenario's class order."""

    cfg: dict
    seed: int
    num_tasks: int
    num_classes: int
    image_shape: tuple[int, int, int]   # (C, H, W) at storage resolution
    train_transform: Callable
    eval_transform: Callable
    dataset_name: str


class Learner:
    # False for methods whose memory is not sized by the budget (finetune, joint, lwf, ewc): the
    # workflow runs them once per seed, and a budget that is given is still enforced.
    needs_budget: bool = True
    _transient = ("engine", "ctx", "budget")  # rebuilt on resume, never checkpointed

    def __init__(self, model: IncrementalNet, engine: Engine, budget: Budget, params: dict, ctx: RunContext):
        self.model = model
        self.engine = engine
        self.budget = budget
        self.params = dict(params)
        self.ctx = ctx
        self.task_index = -1
        self.seen_classes: list[int] = []

    # ------------------------------------------------------------------ lifecycle hooks
    def setup(self) -> None:
        """Called once before the first task. Raise ``BudgetExceeded`` for an impossible budget."""

    def begin_task(self, task) -> None:
        self.task_index = task.index
        grow = self.head_growth(task)
        if grow:
            self.model.head.grow(grow)
        self.seen_classes = self.seen_classes + list(task.classes)
        self.engine.prepare(self.model)

    def head_growth(self, task) -> int:
        """Outputs the head gains at the start of ``task``: the task's new classes (a growing head)."""
        return task.num_classes

    def train_task(self, task) -> None:
        self.engine.fit(self.model, self.train_loader(task), desc=f"task {task.index + 1}")

    def end_task(self, task) -> None:
        pass

    # ------------------------------------------------------------------ inference
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def predictors(self) -> dict[str, Callable]:
        """Named scoring functions; ``main`` is the headline accuracy, others are recorded beside it."""
        return {"main": self.predict}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)

    def eval_mode(self) -> None:
        self.model.eval()

    def selection_features(self, images: torch.Tensor):
        """Penultimate features (numpy) of stored-form uint8 images, in eval mode: what exemplar and
        cue selection (herding, class mean) and iCaRL's class means are computed on."""
        import numpy as np

        from .data.base import ImageDataset

        self.eval_mode()
        data = ImageDataset(lambda i: images[i], np.zeros(len(images)), self.ctx.eval_transform)
        _, _, feats = self.engine.predict(lambda x: (x.new_zeros(len(x), 1), self.features(x)),
                                          self.engine.eval_loader(data))
        return feats.numpy()

    # ------------------------------------------------------------------ memory
    def memory(self) -> MemoryBreakdown:
        return self.budget.breakdown()

    # ------------------------------------------------------------------ helpers for methods
    def train_loader(self, task, extra=None):
        """Loader over the task's training data, optionally concatenated with ``extra`` datasets."""
        data = task.train.dataset(self.ctx.train_transform, train=True)
        if extra:
            data = torch.utils.data.ConcatDataset([data, *[e for e in extra if len(e)]])
        return self.engine.loader(data, shuffle=True, drop_last=True)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)
        self.engine.prepare(self.model)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen teacher: a deep copy in eval mode without gradients."""
    import copy

    teacher = copy.deepcopy(model)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
