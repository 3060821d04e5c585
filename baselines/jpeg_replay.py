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

Budget: before the first task trains, the smallest file any of its images makes at the lowest
quality, plus its metadata, times the scenario's number of classes, must fit, or the run stops
with the budget that would (the same sizes it charges).

Shared tables: not done. Pillow writes abbreviated JPEG streams (``streamtype``), but only with
standard, non-optimised Huffman tables, which cost more per file than the ~300 B of tables saved
once per task at these sizes; per-file optimised tables stay, and every header byte is charged.

Charged bytes (kind ``exemplars``): the exact length of every JPEG file (headers included) plus
``METADATA_BYTES`` per exemplar: its label (int16), byte length (uint32) and quality (uint8)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from braincl.data.base import ImageDataset
from braincl.learner import Learner
from braincl.memory import BudgetExceeded
from braincl.memory.exemplars import ExemplarBuffer
from braincl.memory.selection import random_selection
from braincl.registry import METHODS

METADATA_BYTES = 2 + 4 + 1


def encode_jpeg(image: torch.Tensor, quality: int) -> bytes:
    """uint8 CHW (1 or 3 channels) -> baseline JPEG file bytes with optimised Huffman tables."""
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[..., 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=int(quality), optimize=True)
    return out.getvalue()


def decode_jpeg(data: bytes) -> torch.Tensor:
    array = np.array(Image.open(io.BytesIO(data)))  # a writable copy
    return torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))


def cost(payloads) -> int:
    return sum(len(p) for p in payloads) + METADATA_BYTES * len(payloads)


def prefix_within(payloads: list[bytes], share: int) -> int:
    """How many of ``payloads``, taken in order, fit in ``share`` bytes."""
    sizes = np.cumsum([len(p) + METADATA_BYTES for p in payloads])
    return int(np.searchsorted(sizes, share, side="right"))


def choose_quality(images: torch.Tensor, qualities: list[int], target: int, final_share: int) -> int:
    """The quality rule of this module's docstring."""
    for q in sorted(qualities, reverse=True):
        if cost([encode_jpeg(img, q) for img in images[:target]]) <= final_share:
            return q
    return min(qualities)


def encode_class(images: torch.Tensor, quality: int, share: int) -> list[bytes]:
    """Encode ``images`` in order at ``quality`` until the next one would overflow ``share``."""
    payloads, used = [], 0
    for img in images:
        data = encode_jpeg(img, quality)
        if used + len(data) + METADATA_BYTES > share:
            break
        payloads.append(data)
        used += len(data) + METADATA_BYTES
    return payloads


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
        if self.params["replay"] not in ("step", "union"):
            raise ValueError(f"jpeg_replay: method.params.replay={self.params['replay']!r}; valid: step, union")
        if self.params["target_ratio"] <= 0:
            raise ValueError(f"method.params.target_ratio must be > 0, got {self.params['target_ratio']}")
        if self.budget.total is not None:
            per, classes = self.worst_case_exemplar_bytes(), self.ctx.num_classes
            if self.budget.total // classes < per:
                raise BudgetExceeded(
                    f"jpeg_replay: memory.budget={self.budget.total} bytes cannot hold one JPEG exemplar of each of "
                    f"the {classes} classes (up to {per} bytes each at quality {min(self.params['qualities'])}, "
                    f"metadata included); give at least {per * classes} bytes")

    def worst_case_exemplar_bytes(self) -> int:
        """An upper bound of one stored exemplar at the lowest quality: the larger file of uniform
        noise and of a one-pixel checkerboard (the least compressible contents), plus metadata. It
        is what the refusal above promises, so the stated minimum always holds one per class."""
        c, h, w = self.ctx.image_shape
        noise = torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        checker = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 * 255).to(torch.uint8).expand(c, h, w)
        q = min(self.params["qualities"])
        return max(len(encode_jpeg(img.contiguous(), q)) for img in (noise, checker)) + METADATA_BYTES

    def share(self, num_classes: int) -> int:
        return self.budget.total // num_classes

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
            q = choose_quality(images, self.params["qualities"], self.target(), self.share(self.ctx.num_classes))
            self.quality[cls], self.payloads[cls] = q, encode_class(images, q, share)
            if not self.payloads[cls]:
                raise BudgetExceeded(f"jpeg_replay: class {cls}'s share of memory.budget ({share} bytes) cannot "
                                     f"hold one exemplar at JPEG quality {q}; raise memory.budget")

    def check_budget(self, task) -> None:
        """Refuse, before training, a budget whose per-class share cannot hold one exemplar."""
        images = task.train.source.read_many(task.train.indices[: min(len(task.train), 64)])
        smallest = min(len(encode_jpeg(img, min(self.params["qualities"]))) for img in images) + METADATA_BYTES
        need = smallest * self.ctx.num_classes
        if self.budget.total < need:
            raise BudgetExceeded(f"jpeg_replay: memory.budget={self.budget.total} bytes cannot hold one JPEG exemplar "
                                 f"of each of the {self.ctx.num_classes} classes ({smallest} bytes at quality "
                                 f"{min(self.params['qualities'])}, metadata included); give at least {need} bytes")

    def replay_dataset(self):
        payloads = [p for cls in sorted(self.payloads) for p in self.payloads[cls]]
        labels = np.concatenate([[cls] * len(self.payloads[cls]) for cls in sorted(self.payloads)] or [[]])
        return ImageDataset(lambda i: decode_jpeg(payloads[i]), labels.astype(np.int64), self.ctx.train_transform)

    def train_task(self, task):
        if task.index == 0:
            self.check_budget(task)
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
        return super().memory().add("exemplars", sum(cost(p) for p in self.payloads.values()))

    def info(self):
        return {"jpeg_quality": {str(c): q for c, q in self.quality.items()},
                "exemplars_per_class": {str(c): len(p) for c, p in self.payloads.items()}}
