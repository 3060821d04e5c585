"""One budget in bytes for everything a method keeps between tasks.

Kinds (see README, "Memory policy"):
- ``exemplars``: raw or compressed exemplar bytes, with their per-sample metadata and stored logits;
- ``cues``: BrainCL's entropy-coded memory cues and their per-cue metadata;
- ``decoders``: completion networks or generators, at their stored precision;
- ``entropy_tables``: frozen CDF tables, offsets and lengths of entropy models;
- ``teacher``: the frozen copy of the previous model kept by distillation methods;
- ``other``: anything else a method keeps (EWC's Fisher and anchor weights, bias layers);
- ``integrity``: checksums kept only to detect corruption (BrainCL's per-cue CRC32), not needed to
  decode anything: reported, never charged.
The network being trained is never charged: every method has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..units import format_bytes

KINDS = ("exemplars", "cues", "decoders", "entropy_tables", "teacher", "other", "integrity")
NEVER_CHARGED = ("integrity",)


class BudgetExceeded(RuntimeError):
    """A method would keep more bytes than its budget. Never raised for a silent overshoot."""


def tensor_nbytes(*tensors) -> int:
    total = 0
    for t in tensors:
        if t is None:
            continue
        if hasattr(t, "element_size") and hasattr(t, "numel"):
            total += t.element_size() * t.numel()
        elif hasattr(t, "nbytes"):
            total += int(t.nbytes)
        elif isinstance(t, (bytes, bytearray)):
            total += len(t)
        else:
            raise TypeError(f"cannot size {type(t).__name__}")
    return int(total)


def module_nbytes(module, dtype_bytes: int | None = None) -> int:
    """Bytes of a module's parameters and buffers, optionally at another storage precision."""
    total = 0
    for t in list(module.parameters()) + list(module.buffers()):
        size = dtype_bytes if (dtype_bytes is not None and t.is_floating_point()) else t.element_size()
        total += size * t.numel()
    return int(total)


@dataclass
class MemoryBreakdown:
    parts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    uncharged: tuple[str, ...] = ()

    def add(self, kind: str, nbytes: int) -> "MemoryBreakdown":
        if kind not in KINDS:
            raise KeyError(f"unknown memory kind {kind!r}; valid: {', '.join(KINDS)}")
        self.parts[kind] = self.parts.get(kind, 0) + int(nbytes)
        return self

    @property
    def charged(self) -> int:
        return sum(v for k, v in self.parts.items() if k not in self.uncharged and k not in NEVER_CHARGED)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def as_dict(self, budget: int | None = None) -> dict:
        return {"bytes": dict(self.parts), "charged_bytes": self.charged, "total_bytes": self.total,
                "uncharged_kinds": list(dict.fromkeys(self.uncharged + NEVER_CHARGED)), "budget_bytes": budget}


class Budget:
    """The run's byte budget. ``None`` means unbounded (only for methods that keep no memory or
    that are upper bounds by definition, such as ``joint``)."""

    def __init__(self, total: int | None, charge_teacher: bool = False):
        self.total = total
        self.uncharged: tuple[str, ...] = NEVER_CHARGED + (() if charge_teacher else ("teacher",))

    def breakdown(self) -> MemoryBreakdown:
        return MemoryBreakdown(uncharged=self.uncharged)

    def available(self, breakdown: MemoryBreakdown | None = None) -> int | float:
        if self.total is None:
            return float("inf")
        return self.total - (breakdown.charged if breakdown is not None else 0)

    def check(self, breakdown: MemoryBreakdown, where: str) -> None:
        if self.total is not None and breakdown.charged > self.total:
            parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in breakdown.parts.items() if v)
            raise BudgetExceeded(
                f"{where}: memory holds {breakdown.charged} bytes ({format_bytes(breakdown.charged)}) but the "
                f"budget is {self.total} bytes ({format_bytes(self.total)}). Breakdown: {parts}. "
                f"Raise memory.budget to at least {breakdown.charged} bytes or lower what the method keeps.")
