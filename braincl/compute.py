"""Training compute per task and phase: optimizer steps, samples, backbone sample-passes, FLOPs, wall time.

Every loop that goes through ``Engine.fit`` is counted by the engine; loops outside it (BrainCL's
codec, gen_replay's VAE) count themselves with the same tools. The runner keeps each task's phases
in its resumable state and writes them as the record's ``compute`` section (schema v3).

FLOPs are measured, not estimated: ``torch.utils.flop_counter.FlopCounterMode`` wraps the phase's
first real optimizer step (forward, backward and the optimizer's update; a teacher's forward
included) and the count is multiplied by the phase's steps. Counting changes no number: the counted
step is an ordinary step, and FlopCounterMode only observes the operators it dispatches."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

ENCODING_PHASES = ("codec", "generator")  # building the memory, as JPEG encoding is: reported apart
FIELDS = ("steps", "samples", "backbone_forward", "backbone_backward", "flops", "wall_s")
NOTE = ("flops: torch.utils.flop_counter.FlopCounterMode on the phase's first optimizer step (forward, "
        "backward and a teacher's forward; matmuls and convolutions only), times the phase's steps. "
        "backbone_forward / backbone_backward: samples passed through the trained model's backbone, "
        "and of those the ones whose pass computed backbone gradients. samples: current plus replay "
        "samples drawn from the phase's loaders. encoding: the phases that build a memory (codec, "
        "generator); training: every other phase.")


def empty_phase() -> dict:
    return {"steps": 0, "samples": 0, "backbone_forward": 0, "backbone_backward": 0, "flops": 0, "wall_s": 0.0}


def add_phase(into: dict, other: dict) -> dict:
    for k in FIELDS:
        into[k] = into[k] + other.get(k, 0)
    into["wall_s"] = round(into["wall_s"], 3)
    return into


class ComputeLog:
    """Per-task, per-phase counters. ``task`` is set by the runner before each task; a phase that
    runs twice in one task (e.g. two calls of ``Engine.fit`` with the same phase) accumulates."""

    def __init__(self):
        self.task = 0
        self.tasks: dict[int, dict[str, dict]] = {}

    def add(self, phase: str, **stats) -> None:
        unknown = set(stats) - set(FIELDS)
        if unknown:
            raise ValueError(f"compute: unknown field(s) {sorted(unknown)}; valid: {', '.join(FIELDS)}")
        add_phase(self.tasks.setdefault(self.task, {}).setdefault(phase, empty_phase()), stats)

    def phases(self, task: int) -> dict[str, dict]:
        return {name: dict(stats) for name, stats in self.tasks.get(task, {}).items()}


class StepFlops:
    """Measures one step's FLOPs: ``with counter.first(): ...`` counts the first time only."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.flops = 0
        self.done = False

    @contextlib.contextmanager
    def first(self):
        if self.done or not self.enabled:
            yield
            return
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            yield
        self.flops = int(counter.get_total_flops())
        self.done = True


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
