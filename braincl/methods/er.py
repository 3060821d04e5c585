"""``er``: experience replay of raw uint8 exemplars within the byte budget.

Options (method params), shared through ``ReplayLearner`` so that DER and DER++ reuse them:

- ``replay: step`` (default): every step draws its own buffer minibatch of ``replay_batch_size``
  (null: ``train.batch_size``) beside the current batch, and the loss is the cross-entropy over
  their concatenation, as Mammoth's ``models/er.py`` and Avalanche's ``ReplayPlugin`` do. The new
  data sets the number of steps. ``replay: union`` trains on the union of the task's data and the
  buffer instead (rehearsal as in iCaRL/PyCIL), where a small buffer is a small share of each batch.
- ``sampler: balanced``: each step's whole batch (``batch_size + replay_batch_size`` samples) is
  drawn with replacement so that every task seen so far, the current one included, has the same
  expected share: how BrainCL's sleep draws. It is the control "ER with BrainCL's task-balanced
  sampler". ``random`` (default): the current batch and the replay minibatch are drawn uniformly.
- ``buffer: class_balanced`` (default): after each task every seen class gets an equal share of
  the budget; new classes fill theirs by ``selection``. ``reservoir``: Mammoth's reservoir sampling
  over the stream, updated at every step during training (the buffer of the DER paper's protocol);
  the replay minibatch is then drawn from the buffer as it is at that step, from the first task on.
- ``head: growing`` (default) adds each task's outputs when the task starts, like every method here;
  ``fixed`` has all of the scenario's outputs from the first task on, as Mammoth's backbones (its
  MNISTMLP has 10 outputs on Seq-MNIST), so the cross-entropy also pushes the not-yet-seen outputs
  down. Evaluation ranks only the classes seen so far either way. The Seq-MNIST reference runs ER
  with ``fixed``; DER and DER++ take the same option (``baselines/derpp.py``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..learner import Learner
from ..memory import BudgetExceeded
from ..memory.exemplars import ExemplarBuffer, per_class_quota
from ..memory.selection import select
from ..registry import METHODS
from ..seeding import derive_seed, make_generator

# Values for methods whose params do not list these options (icarl, bic, wa); each option's domain,
# per method, is in schemas/method_params.yaml and checked when the config is loaded.
DEFAULTS = {"replay": "step", "sampler": "random", "buffer": "class_balanced", "replay_batch_size": None,
            "head": "growing"}


class LiveReplay:
    """Endless replay minibatches drawn at each step from the buffer as it is then (Mammoth's
    ``Buffer.get_data``): ``draws`` independent draws of ``min(batch_size, len(buffer))`` exemplars
    without replacement, concatenated, each passed through ``transform``. An empty buffer yields
    an empty batch, which a step skips. The draws come from ``generator``, seeded from the run."""

    def __init__(self, buffer_of, batch_size: int, transform, image_shape, generator: torch.Generator, draws: int = 1):
        self.buffer_of, self.batch_size, self.transform = buffer_of, batch_size, transform
        self.image_shape, self.generator, self.draws = tuple(image_shape), generator, draws

    def __iter__(self):
        while True:
            buffer = self.buffer_of()
            n = len(buffer)
            if n == 0:
                yield (torch.zeros((0, *self.image_shape), dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
                continue
            idx = torch.cat([torch.randperm(n, generator=self.generator)[: self.batch_size] for _ in range(self.draws)])
            images = buffer.images[idx]
            if self.transform is not None:
                images = torch.stack([self.transform(img) for img in images])
            yield (images, buffer.labels[idx].long(), *(buffer.extras[k][idx] for k in sorted(buffer.extras)))


class ReplayLearner(Learner):
    """Shared by every method that keeps a raw-exemplar buffer (class-balanced or reservoir)."""

    extra_bytes_per_exemplar = 0  # e.g. DER's stored logits
    _transient = Learner._transient + ("_reservoir_rng",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer = ExemplarBuffer()
        self.class_task: dict[int, int] = {}  # label -> task that introduced it (for balanced draws)
        self.stream_seen = 0                  # samples the reservoir has seen over the whole stream

    # ------------------------------------------------------------------ options
    def option(self, key: str):
        return self.params.get(key, DEFAULTS[key])

    def replay_batch_size(self) -> int:
        return int(self.option("replay_batch_size") or self.ctx.cfg["train"]["batch_size"])

    def check_options(self) -> None:
        """The combinations of options that do not work together (each value alone is checked by the
        config schema)."""
        name = getattr(type(self), "registered_name", type(self).__name__)
        if self.option("sampler") == "balanced" and (self.option("buffer") != "class_balanced" or self.option("replay") != "step"):
            raise ValueError(f"{name}: method.params.sampler=balanced needs buffer=class_balanced and replay=step")
        if self.option("buffer") == "reservoir" and self.option("replay") != "step":
            raise ValueError(f"{name}: method.params.buffer=reservoir is updated during training and needs replay=step")

    def head_growth(self, task) -> int:
        if self.option("head") == "fixed":
            return self.ctx.num_classes - self.model.num_classes  # all at once, then nothing
        return super().head_growth(task)

    # ------------------------------------------------------------------ budget
    def exemplar_bytes(self) -> int:
        return ExemplarBuffer.bytes_per_exemplar(self.ctx.image_shape, self.extra_bytes_per_exemplar)

    def reserved_bytes(self) -> int:
        """Bytes the method keeps besides the buffer (charged kinds only)."""
        return self.memory().charged - self.buffer.nbytes()

    def setup(self):
        self.check_options()
        per = self.exemplar_bytes()
        need = per * self.ctx.num_classes
        if self.budget.total is not None and self.budget.total < need:
            raise BudgetExceeded(
                f"{type(self).__name__}: memory.budget={self.budget.total} bytes cannot hold one exemplar of "
                f"each of the {self.ctx.num_classes} classes ({per} bytes each); give at least {need} bytes")

    def capacity(self) -> int:
        """Exemplars a reservoir buffer may hold: the bytes left after what else is charged."""
        return max(0, int((self.budget.total - self.reserved_bytes()) // self.exemplar_bytes()))

    def quota(self) -> int:
        return per_class_quota(self.budget.total - self.reserved_bytes(), len(self.seen_classes), self.exemplar_bytes())

    # ------------------------------------------------------------------ buffer
    def buffer_dataset(self):
        return self.buffer.subset_dataset(self.ctx.train_transform)

    def begin_task(self, task):
        super().begin_task(task)
        self.class_task.update({int(c): task.index for c in task.classes})

    def update_buffer(self, task, strategy: str = "random", extras_fn=None) -> None:
        """Class-balanced update at the end of a task; a reservoir buffer was filled during training."""
        if self.option("buffer") == "reservoir":
            return
        m = self.quota()
        self.buffer.reduce_per_class(m)
        labels = task.train.labels
        compute, backbone = self.engine.compute, self.model.backbone  # these forwards build the memory
        for cls in task.classes:
            idx = np.flatnonzero(labels == cls)
            images = task.train.source.read_many(task.train.indices[idx])
            feats = np.zeros((len(idx), 1))
            if strategy != "random":
                with compute.count("memory", "selection", backbone):
                    feats = self.selection_features(images)
            order = select(strategy, feats, m, seed=self.ctx.seed * 1000 + cls)
            chosen = images[torch.as_tensor(order)]
            extras = {}
            if extras_fn:
                with compute.count("memory", "logits", backbone):
                    extras = extras_fn(chosen)
            self.buffer.add(chosen, np.full(len(order), cls), **extras)

    def observe(self, task, batch, **extras) -> None:
        """After a step's forward pass: offer the batch's un-augmented images to a reservoir buffer.
        The current-task batch carries each sample's index in the task as its last element."""
        if self.option("buffer") != "reservoir":
            return
        index = batch[-1].cpu().numpy()
        images = task.train.source.read_many(task.train.indices[index])
        self.stream_seen = self.buffer.reservoir_add(images, batch[1].cpu().numpy(), self._capacity, self.stream_seen,
                                                     self._reservoir_rng, **extras)

    # ------------------------------------------------------------------ loaders
    def task_dataset(self, task):
        data = task.train.dataset(self.ctx.train_transform, train=True)
        if self.option("buffer") == "reservoir":
            data.extras = (torch.arange(len(task.train)),)  # to read the un-augmented image back
        return data

    def replay_stream(self, draws: int = 1):
        """The replay minibatches of ``replay: step``: the engine's seeded loader over a class-balanced
        buffer (``drop_last``), or live draws from a reservoir buffer; None when there is nothing
        to replay."""
        batch = self.replay_batch_size()
        if self.option("buffer") == "reservoir":
            return LiveReplay(lambda: self.buffer, batch, self.ctx.train_transform, self.ctx.image_shape,
                              make_generator(), draws=draws)
        if not len(self.buffer):
            return None
        return self.engine.loader(self.buffer_dataset(), shuffle=True, batch_size=draws * batch, drop_last=True)

    def balanced_loader(self, task):
        """``sampler: balanced``: batches of ``batch_size + replay_batch_size`` drawn with replacement
        from the task's data and the buffer, every task with the same expected share (BrainCL's
        sleep draws); as many steps as ``replay: step`` takes on the task's data."""
        current = self.task_dataset(task)
        size = self.ctx.cfg["train"]["batch_size"]
        if not len(self.buffer):
            return self.engine.loader(current, shuffle=True, drop_last=True)
        tasks = np.asarray([self.class_task[int(c)] for c in self.buffer.labels.tolist()])
        share = 1.0 / (len(np.unique(tasks)) + 1)
        counts = {t: int((tasks == t).sum()) for t in np.unique(tasks)}
        weights = torch.cat([torch.full((len(current),), share / len(current)),
                             torch.as_tensor([share / counts[t] for t in tasks], dtype=torch.float)])
        total = size + self.replay_batch_size()
        steps = max(1, len(current) // size)
        data = torch.utils.data.ConcatDataset([current, self.buffer_dataset()])
        return self.engine.loader(data, shuffle=True, batch_size=total, drop_last=True, weights=weights,
                                  num_samples=steps * total)

    def fit_replay(self, task, step, desc: str, draws: int = 1):
        """Train one task with the configured replay. ``step(batch, replay_batch)``; the replay batch
        may be None or empty."""
        if self.option("buffer") == "reservoir":
            self._capacity = self.capacity()
            self._reservoir_rng = np.random.default_rng(derive_seed(self.ctx.seed, "reservoir", task.index))
        if self.option("sampler") == "balanced":
            loader, replay = self.balanced_loader(task), None
        elif self.option("replay") == "union":
            loader, replay = self.train_loader(task, extra=[self.buffer_dataset()]), None
        else:
            loader = self.engine.loader(self.task_dataset(task), shuffle=True, drop_last=True)
            replay = self.replay_stream(draws)
        return self.engine.fit(self.model, loader, step=step, replay=replay, desc=desc)

    def memory(self):
        return super().memory().add("exemplars", self.buffer.nbytes())

    def info(self):
        return {"buffer": self.option("buffer"), "exemplars": len(self.buffer),
                "exemplars_per_class": {str(c): n for c, n in self.buffer.per_class_count().items()}}


@METHODS.register("er")
class ExperienceReplay(ReplayLearner):
    def step(self, task):
        def step(batch, replay):
            x, y = batch[0], batch[1]
            if replay is not None and len(replay[0]):
                x, y = torch.cat([x, replay[0].to(x.dtype)]), torch.cat([y, replay[1]])
            loss = F.cross_entropy(self.model(x), y)
            self.observe(task, batch)
            return loss
        return step

    def train_task(self, task):
        self.fit_replay(task, self.step(task), desc=f"task {task.index + 1} (er)")

    def end_task(self, task):
        self.update_buffer(task, self.params.get("selection", "random"))
