"""``joint``: train on all data seen so far, with no budget. The upper bound.

It keeps the indices of past tasks' training data, not bytes: it is a reference, not a method
under the budget, and its memory breakdown reports zero."""

from ..learner import Learner
from ..registry import METHODS


@METHODS.register("joint")
class Joint(Learner):
    needs_budget = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.past_tasks = []

    def train_task(self, task):
        # Re-initialising would be the classical joint bound per step; continuing from the previous
        # model on the union of all data reaches the same accuracy in fewer epochs.
        extra = [past.train.dataset(self.ctx.train_transform, train=True) for past in self.past_tasks]
        self.engine.fit(self.model, self.train_loader(task, extra=extra), desc=f"task {task.index + 1} (joint)")

    def end_task(self, task):
        self.past_tasks.append(task)
