"""BrainCL's non-parametric memory: entropy-coded cues with exact byte accounting.

A ``CueStore`` holds cues grouped by task; BrainCL keeps two: working memory (the current task's
cues, dropped after sleep) and long-term memory (cues selected from every past task). ``nbytes()``
is the length of ``serialize()``, a concrete on-disk layout that holds what decoding needs, so the
charge is what storing the memory really costs:

- per task group (10 B): task id uint16, latent height uint16, latent width uint16, cue count uint32
  (every cue of a task has the same latent shape, so the shape is stored once per task);
- per cue (4 B + its bytes): label int16, byte length uint16, then the arithmetic-coded bytes.

Each cue's CRC32 (4 B) is an optional integrity cost, not needed to decode: ``integrity_nbytes()``
reports it apart (memory kind ``integrity``, never charged against the budget), and
``serialize(integrity=True)`` writes it after each cue's header.

Within a class, cues keep the priority order they were added in (selection order), so cutting a
class to its first ``m`` cues evicts the least representative ones, as ``ExemplarBuffer`` does.

Integrity: a cue's CRC32 is computed once, from the encoder's output, and travels with the cue
(``extend``, ``keep``, pickling); it is never recomputed from stored bytes. The bytes are checked
against it whenever they are used: ``verified`` (recall), ``extend`` (transfer to long-term memory)
and ``verify_all`` (after a resume). ``source`` names where the store was loaded from, so that a
mismatch says which file holds the damaged cue."""

from __future__ import annotations

import struct
import zlib

import numpy as np

TASK_HEADER = struct.Struct("<HHHI")   # task id, latent H, latent W, number of cues
CUE_HEADER = struct.Struct("<hH")      # label, byte length
CUE_CRC = struct.Struct("<I")          # the optional integrity field: CRC32 of the cue's bytes
MAX_CUE_BYTES = 2**16 - 1


class CueCorrupted(RuntimeError):
    """A stored cue's bytes no longer match their checksum."""


class CueStore:
    source: str | None = None  # where the cues were loaded from (a checkpoint path); None: this run

    def __init__(self):
        self.strings: list[bytes] = []
        self.labels = np.zeros(0, dtype=np.int16)
        self.tasks = np.zeros(0, dtype=np.int64)
        self.crcs = np.zeros(0, dtype=np.uint32)
        self.shapes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.strings)

    # ------------------------------------------------------------------ bytes
    def nbytes(self) -> int:
        """Exact bytes of ``serialize()`` (the charged form): see the module docstring for what each
        header holds."""
        groups = len(set(self.tasks.tolist()))
        return groups * TASK_HEADER.size + len(self) * CUE_HEADER.size + sum(len(s) for s in self.strings)

    def integrity_nbytes(self) -> int:
        """The CRC32s: what ``serialize(integrity=True)`` adds; reported apart, not charged."""
        return len(self) * CUE_CRC.size

    def serialize(self, integrity: bool = False) -> bytes:
        out = bytearray()
        for task in self.task_ids():
            idx = np.flatnonzero(self.tasks == task)
            h, w = self.shapes[task]
            out += TASK_HEADER.pack(task, h, w, len(idx))
            for i in idx:
                out += CUE_HEADER.pack(int(self.labels[i]), len(self.strings[i]))
                if integrity:
                    out += CUE_CRC.pack(int(self.crcs[i]))
                out += self.strings[i]
        return bytes(out)

    @classmethod
    def deserialize(cls, data: bytes, integrity: bool = False) -> "CueStore":
        """The store that ``serialize(integrity)`` wrote. Without the integrity field the CRC32s are
        recomputed from the bytes read; with it, each cue is checked against its stored CRC32."""
        store, at = cls(), 0
        while at < len(data):
            task, h, w, count = TASK_HEADER.unpack_from(data, at)
            at += TASK_HEADER.size
            strings, labels, crcs = [], [], []
            for _ in range(count):
                label, length = CUE_HEADER.unpack_from(data, at)
                at += CUE_HEADER.size
                if integrity:
                    crcs.append(CUE_CRC.unpack_from(data, at)[0])
                    at += CUE_CRC.size
                strings.append(data[at:at + length])
                labels.append(label)
                at += length
            store.add(task, strings, labels, (h, w), crcs=crcs if integrity else None)
        if integrity:
            store.verify_all()
        return store

    def mean_cue_bytes(self) -> float:
        return float(np.mean([len(s) for s in self.strings])) if self.strings else 0.0

    # ------------------------------------------------------------------ content
    def task_ids(self) -> list[int]:
        return sorted(set(self.tasks.tolist()))

    def classes(self) -> list[int]:
        return sorted(set(self.labels.tolist()))

    def per_class_count(self) -> dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def add(self, task: int, strings: list[bytes], labels, shape: tuple[int, int], crcs=None) -> None:
        """Append a task's cues. ``crcs`` carries checksums computed earlier (when cues move between
        stores); without it the bytes are fresh encoder output and their CRC32 is computed here."""
        labels = np.asarray(labels)
        if len(labels) != len(strings):
            raise ValueError(f"{len(strings)} cues but {len(labels)} labels")
        if crcs is not None and len(crcs) != len(strings):
            raise ValueError(f"{len(strings)} cues but {len(crcs)} checksums")
        too_long = [len(s) for s in strings if len(s) > MAX_CUE_BYTES]
        if too_long:
            raise ValueError(f"a cue of {max(too_long)} bytes exceeds the {MAX_CUE_BYTES}-byte length field; "
                             "raise lambda or lower the image size")
        shape = (int(shape[0]), int(shape[1]))
        if task in self.shapes and self.shapes[task] != shape:
            raise ValueError(f"task {task}: latent shape {shape} differs from the stored {self.shapes[task]}")
        self.shapes[task] = shape
        self.strings.extend(bytes(s) for s in strings)
        self.labels = np.concatenate([self.labels, labels.astype(np.int16)])
        self.tasks = np.concatenate([self.tasks, np.full(len(strings), task, dtype=np.int64)])
        if crcs is None:
            crcs = [zlib.crc32(s) for s in strings]
        self.crcs = np.concatenate([self.crcs, np.asarray(crcs, dtype=np.uint32)])

    def extend(self, other: "CueStore", index=None) -> None:
        """Append ``other``'s cues (all, or those at ``index``, in that order). Each cue is checked
        against its CRC32 in ``other`` first, and keeps that CRC32 here."""
        index = np.arange(len(other)) if index is None else np.asarray(index, dtype=np.int64)
        for task in sorted(set(other.tasks[index].tolist())):
            sel = index[other.tasks[index] == task]
            self.add(task, other.verified(sel), other.labels[sel], other.shapes[task], crcs=other.crcs[sel])
        if self.source is None and other.source is not None:
            self.source = other.source

    def keep(self, index) -> None:
        index = np.asarray(index, dtype=np.int64)
        self.strings = [self.strings[i] for i in index]
        self.labels, self.tasks, self.crcs = self.labels[index], self.tasks[index], self.crcs[index]
        self.shapes = {t: s for t, s in self.shapes.items() if t in set(self.tasks.tolist())}

    def first_per_class(self, per_class: int) -> np.ndarray:
        """Indices of the first ``per_class`` cues of each class (their priority order)."""
        keep = np.zeros(len(self), dtype=bool)
        for cls in np.unique(self.labels):
            keep[np.flatnonzero(self.labels == cls)[:per_class]] = True
        return np.flatnonzero(keep)

    def nbytes_if_kept(self, index) -> int:
        index = np.asarray(index, dtype=np.int64)
        groups = len(set(self.tasks[index].tolist()))
        return groups * TASK_HEADER.size + len(index) * CUE_HEADER.size + sum(len(self.strings[i]) for i in index)

    def reduce_per_class(self, per_class: int) -> None:
        self.keep(self.first_per_class(per_class))

    # ------------------------------------------------------------------ integrity
    def verified(self, index) -> list[bytes]:
        """The bytes of the cues at ``index`` after checking each against its CRC32."""
        out = []
        for i in np.asarray(index, dtype=np.int64):
            s = self.strings[i]
            if zlib.crc32(s) != int(self.crcs[i]):
                task = int(self.tasks[i])
                within = int(np.sum(self.tasks[:i] == task))
                origin = f"loaded from {self.source}" if self.source else "held in memory by this run"
                advice = (f"; delete {self.source} to restart the run from task 1, or restore it from a copy"
                          if self.source else "")
                raise CueCorrupted(
                    f"cue {int(i)} (task {task + 1}, cue {within} of that task, label {int(self.labels[i])}), "
                    f"{origin}, failed its CRC32 check: its {len(s)} stored bytes changed after encoding, so "
                    f"the memory is corrupted and this cue cannot be recalled{advice}")
            out.append(s)
        return out

    def verify_all(self) -> None:
        """Check every cue against its CRC32 (after loading a store from disk)."""
        self.verified(np.arange(len(self)))

    def recall(self, decoders, batch_size: int = 512, device="cpu"):
        """Decode every cue through its task's ``CompletionNet``: (uint8 images, int64 labels),
        in store order. Each batch is written straight into one output array (``spill.uint8_buffer``:
        in RAM, or a memory-mapped file where the job's memory would not hold it); the batches are
        those of decoding each task's cues at once, so both placements hold the same bytes."""
        import torch

        from .spill import uint8_buffer

        if len(self) == 0:
            return torch.zeros((0,), dtype=torch.uint8), np.zeros(0, dtype=np.int64)
        images = None
        for task in self.task_ids():
            idx = np.flatnonzero(self.tasks == task)
            for start in range(0, len(idx), batch_size):
                part = idx[start:start + batch_size]
                imgs = decoders[task].recall(self.verified(part), self.shapes[task], batch_size, device)
                if images is None:
                    images = uint8_buffer((len(self), *imgs.shape[1:]), f"{len(self)} recalled cues")
                images[torch.as_tensor(part)] = imgs
        return images, self.labels.astype(np.int64)


def find_stores(obj, _depth: int = 0) -> list[CueStore]:
    """Every ``CueStore`` in a learner's state: its attributes, and the lists, tuples and dicts they
    hold (not inside other objects, which keep no cues)."""
    if isinstance(obj, CueStore):
        return [obj]
    if _depth > 4:
        return []
    if isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, (list, tuple)):
        items = obj
    elif _depth == 0 and hasattr(obj, "__dict__"):
        items = vars(obj).values()
    else:
        return []
    return [store for item in items for store in find_stores(item, _depth + 1)]
