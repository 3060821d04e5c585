"""``jpeg_replay``: experience replay of exemplars stored as JPEG files (Pillow), within the budget.

It isolates "compress the exemplars with a standard codec" from BrainCL's learned codec: the same
class-balanced replay as ``er`` (its random order, same seeds), but each exemplar is kept as JPEG
bytes and decoded when replayed.

Quality rule: the target is ``target_ratio`` times the number of raw exemplars (uint8 + label) a
class could keep in its *final* share of the budget (budget / number of classes in the scenario),
i.e. what ``er`` keeps at the end of the run. For each new class, the highest quality in
``qualities`` at which its first ``target`` exemplars (in selection order) fit in that final share;
if none fits, the lowest quality. The target scales with the budget, so a budget sweep compares
like with like. Each class then keeps as many exemplars, in order, as fit in its current share
(budget / classes seen). A class keeps its quality for the whole run; a shrinking share drops its
last exemplars and never re-encodes them (re-encoding a JPEG loses quality again).

Replay: as ``er`` (``braincl/methods/er.py``): ``replay: step`` (default) draws a separate
minibatch of ``replay_batch_size`` decoded exemplars (null: ``train.batch_size``; ``drop_last``)
at every step beside the current batch; ``union`` trains on the task's data plus the store.

Budget: ``setup`` refuses, before any training, a budget whose per-class share (after the reserved
tables) cannot hold one exemplar of the least compressible content (uniform noise or a one-pixel
checkerboard) at the lowest quality, plus metadata; the message gives the budget that would.

Shared tables (``tables: shared``, the default): every file is an abbreviated JPEG stream (Pillow's
``streamtype=2``: no quantisation or Huffman tables, standard Huffman coding), and the tables of
each quality in use are stored once (``streamtype=1``) and put back in front of a stream to decode
it. On MNIST at quality 50 a file shrinks from about 365 B (optimised Huffman tables, headers
included) to about 233 B, for 574 B of tables per quality. The budget reserves the tables of every
candidate quality up front (at most ``len(qualities)`` sets); only the qualities in use are
charged. ``tables: per_file`` keeps whole files with optimised tables.

Charged bytes: kind ``exemplars``, the exact length of every stored stream plus
``METADATA_BYTES`` per exemplar: its label (int16), byte length (uint32) and quality (uint8); kind
``entropy_tables``, the table streams of the qualities in use."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from braincl.data.base import ImageDataset
from braincl.learner import Learner
from braincl.memory import BudgetExceeded
from braincl.memory.exemplars import ExemplarBuffer
# the JPEG helpers live in the core, which BrainCL's jpeg control shares; re-exported here
from braincl.memory.jpeg import (METADATA_BYTES, choose_quality, cost, decode_jpeg, encode_class,  # noqa: F401
                                 encode_jpeg, jpeg_tables, prefix_within, tables_nbytes, worst_case_nbytes)
from braincl.memory.selection import random_selection
from braincl.registry import METHODS


@METHODS.register("jpeg_replay")
class JpegReplay(Learner):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.payloads: dict[int, list[bytes]] = {}  # class -> JPEG files in priority order
        self.quality: dict[int, int] = {}

    def setup(self):
        if not self.params["qualities"] or not all(1 <= q <= 95 for q in self.params["qualities"]):
            raise ValueError("method.params.qualities must list JPEG qualities in 1..95 (Pillow's useful range), "
                             f"got {self.params['qualities']}")
        if self.params["target_ratio"] <= 0:
            raise ValueError(f"method.params.target_ratio must be > 0, got {self.params['target_ratio']}")
        if self.budget.total is not None:
            per, classes, reserved = self.worst_case_exemplar_bytes(), self.ctx.num_classes, self.reserved_bytes()
            if self.share(classes) < per:
                tables = f" plus {reserved} bytes of shared JPEG tables" if reserved else ""
                raise BudgetExceeded(
                    f"jpeg_replay: memory.budget={self.budget.total} bytes cannot hold one JPEG exemplar of each of "
                    f"the {classes} classes (up to {per} bytes each at quality {min(self.params['qualities'])}, "
                    f"metadata included){tables}; give at least {per * classes + reserved} bytes")

    @property
    def shared(self) -> bool:
        return self.params["tables"] == "shared"

    def reserved_bytes(self) -> int:
        """The tables of every candidate quality: an upper bound of what the shared tables will take."""
        return tables_nbytes(self.params["qualities"], self.ctx.image_shape[0]) if self.shared else 0

    def worst_case_exemplar_bytes(self) -> int:
        return worst_case_nbytes(self.ctx.image_shape, min(self.params["qualities"]), self.shared)

    def share(self, num_classes: int) -> int:
        return (self.budget.total - self.reserved_bytes()) // num_classes

    def target(self) -> int:
        """Exemplars per class the quality must allow: ``target_ratio`` x raw exemplars per class."""
        raw = ExemplarBuffer.bytes_per_exemplar(self.ctx.image_shape)
        return max(1, math.ceil(self.params["target_ratio"] * (self.share(self.ctx.num_classes) // raw)))

    def update_store(self, task):
        share = self.share(len(self.seen_classes))
        for cls, payloads in self.payloads.items():
            self.payloads[cls] = payloads[: prefix_within(payloads, share)]
        for cls in task.classes:
            idx = np.flatnonzero(task.train.labels == cls)
            order = random_selection(idx, len(idx), seed=self.ctx.seed * 1000 + cls)
            images = task.train.source.read_many(task.train.indices[idx[order]])
            q = choose_quality(images, self.params["qualities"], self.target(), self.share(self.ctx.num_classes),
                               self.shared)
            self.quality[cls], self.payloads[cls] = q, encode_class(images, q, share, self.shared)
            if not self.payloads[cls]:
                raise BudgetExceeded(f"jpeg_replay: class {cls}'s share of memory.budget ({share} bytes) cannot "
                                     f"hold one exemplar at JPEG quality {q}; raise memory.budget")

    def replay_dataset(self):
        classes = sorted(self.payloads)
        payloads = [p for cls in classes for p in self.payloads[cls]]
        labels = np.concatenate([[cls] * len(self.payloads[cls]) for cls in classes] or [[]]).astype(np.int64)
        channels = self.ctx.image_shape[0]
        tables = [jpeg_tables(self.quality[cls], channels) if self.shared else None
                  for cls in classes for _ in self.payloads[cls]]
        return ImageDataset(lambda i: decode_jpeg(payloads[i], tables[i]), labels, self.ctx.train_transform)

    def train_task(self, task):
        desc = f"task {task.index + 1} (jpeg replay)"
        if self.params["replay"] == "union":
            self.engine.fit(self.model, self.train_loader(task, extra=[self.replay_dataset()]), desc=desc)
            return
        replay = None
        if self.payloads:
            size = self.params["replay_batch_size"] or self.ctx.cfg["train"]["batch_size"]
            replay = self.engine.loader(self.replay_dataset(), shuffle=True, batch_size=size, drop_last=True)

        def step(batch, replay_batch):
            x, y = batch[0], batch[1]
            if replay_batch is not None:
                x, y = torch.cat([x, replay_batch[0].to(x.dtype)]), torch.cat([y, replay_batch[1]])
            return F.cross_entropy(self.model(x), y)

        self.engine.fit(self.model, self.train_loader(task), step=step, replay=replay, desc=desc)

    def end_task(self, task):
        self.update_store(task)

    def memory(self):
        used = [self.quality[cls] for cls, p in self.payloads.items() if p]
        tables = tables_nbytes(used, self.ctx.image_shape[0]) if self.shared else 0
        return super().memory().add("exemplars", sum(cost(p) for p in self.payloads.values())).add("entropy_tables", tables)

    def info(self):
        return {"jpeg_quality": {str(c): q for c, q in self.quality.items()}, "tables": self.params["tables"],
                "exemplars_per_class": {str(c): len(p) for c, p in self.payloads.items()}}
