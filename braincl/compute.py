"""Compute per task and phase: optimizer steps, samples, backbone sample-passes, FLOPs by purpose, wall time.

Every loop that goes through ``Engine.fit`` is counted by the engine; loops outside it (BrainCL's
codec, gen_replay's VAE) count themselves with the same tools, and single passes outside any loop
(decoding cues, selection forwards, DER's stored logits, iCaRL's class means, EWC's Fisher) are counted where
they run with ``ComputeLog.count``. The runner keeps each task's phases in its resumable state and
writes them as the record's ``compute`` section (schema v4).

FLOPs are measured, not estimated: ``torch.utils.flop_counter.FlopCounterMode`` counts every pass
that is made. A loop measures a step once for each distinct batch composition (the shapes of its
current and replay batches, ``FlopMeter``) and adds that count for every step with the same
composition, so a step whose replay batch is empty (a reservoir buffer's first step) or short (a
last partial batch) is counted as what it is. Each phase's FLOPs are split by what they were for
(``PURPOSES``): a block inside a measured pass that runs under ``purpose(name)`` (a teacher's
forward) is attributed to ``name``, the rest to the measurement's own purpose. Counting changes no
number: measured steps are ordinary steps, and FlopCounterMode only observes the operators it
dispatches (matmuls and convolutions; element-wise work and entropy coding are not FLOPs here)."""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn

# Building the memory, as JPEG encoding is: reported apart from training.
ENCODING_PHASES = ("codec", "generator", "memory")
FIELDS = ("steps", "samples", "backbone_forward", "backbone_backward", "flops", "wall_s")
PURPOSES = {
    "train": "the trained model's forward and backward passes in its optimizer steps",
    "teacher": "a frozen teacher's forwards inside the steps (distillation)",
    "recall": "decoding cues through the completion networks (BrainCL)",
    "selection": "feature forwards that choose exemplars or cues (herding, closest to the mean)",
    "logits": "forwards that compute the logits stored with exemplars (DER, DER++)",
    "class_means": "exemplar-feature forwards of iCaRL's nearest-mean classifier",
    "fisher": "the forwards and per-sample gradients that estimate EWC's Fisher",
    "encode": "a codec's analysis forward when the memory is encoded",
    "sample": "a generator's forwards that draw replay samples",
    "labels": "the previous model's forwards that label generated samples",
}
NOTE = ("flops: torch.utils.flop_counter.FlopCounterMode (matmuls and convolutions) on every pass a method "
        "makes; a loop's step is measured once per batch composition (the shapes of its current and replay "
        "batches) and counted for every step with that composition. flops_by_purpose splits a phase's FLOPs: "
        + "; ".join(f"{k}: {v}" for k, v in PURPOSES.items()) + ". backbone_forward / backbone_backward: "
        "samples passed through the trained model's backbone, and of those the ones whose pass computed "
        "backbone gradients. samples: current plus replay samples drawn from the phase's loaders. encoding: "
        "the phases that build a memory (codec, generator, memory: selection, stored logits, class means, Fisher); "
        "training: every other phase.")


def empty_phase() -> dict:
    return {"steps": 0, "samples": 0, "backbone_forward": 0, "backbone_backward": 0, "flops": 0,
            "flops_by_purpose": {}, "wall_s": 0.0}


def add_phase(into: dict, other: dict) -> dict:
    for k in FIELDS:
        into[k] = into[k] + other.get(k, 0)
    by = other.get("flops_by_purpose")
    if by is None and other.get("flops"):  # a phase logged before FLOPs were split by purpose
        by = {"train": other["flops"]}
    for purpose, flops in (by or {}).items():
        into["flops_by_purpose"][purpose] = into["flops_by_purpose"].get(purpose, 0) + int(flops)
    into["wall_s"] = round(into["wall_s"], 3)
    return into


# ---------------------------------------------------------------------------------------------- measuring
class _Frame:
    """A measurement in progress: its counter and what ``purpose`` blocks took from it."""

    def __init__(self, counter):
        self.counter = counter
        self.split: dict[str, int] = {}
        self.open: list[int] = []  # per open purpose block: FLOPs attributed by blocks nested in it

    def total(self) -> int:
        return int(self.counter.get_total_flops())


_ACTIVE: list[_Frame] = []  # measurements in progress, innermost last


@contextlib.contextmanager
def measure(default: str = "train"):
    """Count the FLOPs of the block with ``FlopCounterMode``. Yields a dict that is filled, when the
    block ends, with the FLOPs by purpose: ``purpose(name)`` blocks inside go to ``name``, the rest
    to ``default``."""
    from torch.utils.flop_counter import FlopCounterMode

    frame = _Frame(FlopCounterMode(display=False))
    split: dict[str, int] = {}
    _ACTIVE.append(frame)
    try:
        with frame.counter:
            yield split
    finally:
        _ACTIVE.remove(frame)
    rest = frame.total() - sum(frame.split.values())
    split.update({k: v for k, v in frame.split.items() if v})
    if rest:
        split[default] = split.get(default, 0) + rest


@contextlib.contextmanager
def purpose(name: str):
    """Attribute the FLOPs of the block to ``name`` in the measurement in progress (nothing is
    measured here: outside a measurement, or in a step whose composition was measured before,
    this costs nothing)."""
    if name not in PURPOSES:
        raise ValueError(f"unknown FLOP purpose {name!r}; valid: {', '.join(PURPOSES)}")
    if not _ACTIVE:
        yield
        return
    frame = _ACTIVE[-1]
    start = frame.total()
    frame.open.append(0)
    try:
        yield
    finally:
        inner = frame.open.pop()
        spent = frame.total() - start
        frame.split[name] = frame.split.get(name, 0) + spent - inner
        if frame.open:
            frame.open[-1] += spent


def composition(*batches) -> tuple:
    """A step's batch composition: the shapes of the tensors of each batch (None for no batch)."""
    return tuple(None if b is None else tuple(tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                                               for t in b) for b in batches)


class FlopMeter:
    """The FLOPs of a loop's steps: ``with meter.step(composition(batch, replay)): ...`` measures the
    first step of each composition and adds the same split for every later step that has it.
    ``totals`` holds the FLOPs by purpose; ``measured`` the number of steps that were measured."""

    def __init__(self, enabled: bool = True, default: str = "train"):
        self.enabled, self.default = enabled, default
        self.cache: dict[tuple, dict[str, int]] = {}
        self.totals: dict[str, int] = {}
        self.measured = 0

    @contextlib.contextmanager
    def step(self, key):
        if not self.enabled:
            yield
            return
        split = self.cache.get(key)
        if split is None:
            with measure(self.default) as split:
                yield
            self.cache[key] = split
            self.measured += 1
        else:
            yield
        for name, flops in split.items():
            self.totals[name] = self.totals.get(name, 0) + flops


# ---------------------------------------------------------------------------------------------- the log
class ComputeLog:
    """Per-task, per-phase counters. ``task`` is set by the runner before each task; a phase that
    runs twice in one task (e.g. two calls of ``Engine.fit`` with the same phase) accumulates.
    ``count_flops`` off: no FlopCounterMode at all (results are identical either way)."""

    def __init__(self):
        self.task = 0
        self.tasks: dict[int, dict[str, dict]] = {}
        self.count_flops = True

    def add(self, phase: str, *, flops: int | dict | None = None, **stats) -> None:
        """Add counts to ``phase``. ``flops`` is a dict by purpose (see ``PURPOSES``), or an int
        that is all ``train``."""
        unknown = set(stats) - set(FIELDS)
        if unknown:
            raise ValueError(f"compute: unknown field(s) {sorted(unknown)}; valid: {', '.join(FIELDS)}")
        by = dict(flops) if isinstance(flops, dict) else ({"train": int(flops)} if flops else {})
        bad = set(by) - set(PURPOSES)
        if bad:
            raise ValueError(f"compute: unknown FLOP purpose(s) {sorted(bad)}; valid: {', '.join(PURPOSES)}")
        stats.update(flops=sum(by.values()), flops_by_purpose=by)
        add_phase(self.tasks.setdefault(self.task, {}).setdefault(phase, empty_phase()), stats)

    @contextlib.contextmanager
    def count(self, phase: str, purpose_name: str, backbone: nn.Module | None = None):
        """Count one pass outside a training loop (a selection forward, decoding cues) under
        ``phase``: its FLOPs as ``purpose_name``, the samples it forwards through ``backbone``, its
        wall time."""
        t0 = time.perf_counter()
        counter = BackboneCounter(backbone)
        try:
            if self.count_flops:
                with measure(purpose_name) as split:
                    yield
            else:
                split = {}
                yield
        finally:
            counter.close()
        self.add(phase, flops=split, backbone_forward=counter.forward, backbone_backward=counter.backward,
                 wall_s=round(time.perf_counter() - t0, 3))

    def phases(self, task: int) -> dict[str, dict]:
        return {name: {**stats, "flops_by_purpose": dict(stats["flops_by_purpose"])}
                for name, stats in self.tasks.get(task, {}).items()}


class BackboneCounter:
    """Forward hook on a backbone: samples forwarded, and of those the ones forwarded with
    gradients on and trainable backbone parameters (so a backward pass through it follows)."""

    def __init__(self, backbone: nn.Module | None):
        self.forward = self.backward = 0
        self.handle = None
        if backbone is not None:
            self.trainable = any(p.requires_grad for p in backbone.parameters())
            self.handle = backbone.register_forward_hook(self.hook)

    def hook(self, module, inputs, output) -> None:
        n = len(inputs[0]) if inputs and isinstance(inputs[0], torch.Tensor) else 0
        self.forward += n
        if self.trainable and torch.is_grad_enabled():
            self.backward += n

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def summarize(per_task: list[dict]) -> dict:
    """The record's ``compute`` section from ``[{"task": t, "phases": {...}}, ...]``."""
    per_phase: dict[str, dict] = {}
    training, encoding = empty_phase(), empty_phase()
    for entry in per_task:
        for name, stats in entry["phases"].items():
            add_phase(per_phase.setdefault(name, empty_phase()), stats)
            add_phase(encoding if name in ENCODING_PHASES else training, stats)
    return {"per_task": per_task, "per_phase": per_phase, "training": training, "encoding": encoding, "note": NOTE}
