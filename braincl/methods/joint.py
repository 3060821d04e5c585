"""``joint``: train on all data seen so far, with no budget. The upper bound.

It keeps the indices of past tasks' training data, not bytes: it is a reference, not a method
under the budget, and its memory breakdown reports zero.

``schedule`` (method param):

- ``every_task`` (default): at each task, continue training on the union of every task seen so far,
  so every row of the accuracy matrix measures a model trained on the data seen up to then (the
  per-step upper bound the default grid's accuracy curves need).
- ``final``: train nothing until the last task, then train once on all tasks' data, as Mammoth's
  ``models/joint.py`` (``observe`` returns 0; ``end_task`` of the last task trains a fresh backbone
  on the concatenated data for ``n_epochs``). The model is untouched before that, so it is still its
  initial one, which is what Mammoth's re-initialisation gives. Only the last row of the accuracy
  matrix measures joint training; the earlier rows evaluate the untrained network, as Mammoth's
  do. ``info()`` records which rows are measurements (``trained_rows``)."""

from ..learner import Learner
from ..registry import METHODS

SCHEDULES = ("every_task", "final")


@METHODS.register("joint")
class Joint(Learner):
    needs_budget = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.past_tasks = []

    @property
    def schedule(self) -> str:
        return self.params.get("schedule", "every_task")

    def trains_after(self, task_index: int) -> bool:
        return self.schedule == "every_task" or task_index == self.ctx.num_tasks - 1

    def train_task(self, task):
        if not self.trains_after(task.index):
            return  # schedule final: Mammoth's joint observes nothing during the stream
        # every_task: re-initialising would be the classical joint bound per step; continuing from the
        # previous model on the union of all data reaches the same accuracy in fewer epochs.
        extra = [past.train.dataset(self.ctx.train_transform, train=True) for past in self.past_tasks]
        self.engine.fit(self.model, self.train_loader(task, extra=extra),
                        desc=f"task {task.index + 1} (joint, {self.schedule})")

    def end_task(self, task):
        self.past_tasks.append(task)

    def info(self):
        trained = [t for t in range(self.ctx.num_tasks) if self.trains_after(t)]
        return {"schedule": self.schedule, "trained_rows": trained,
                "note": ("every row of the accuracy matrix follows training on the tasks seen so far"
                         if self.schedule == "every_task" else
                         "trained once, after the last task: only the last row of the accuracy matrix measures "
                         "joint training; earlier rows evaluate the untrained network")}
