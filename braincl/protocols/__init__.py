"""Optional protocols, switched on under ``protocols:`` in the config. Each one may hold classes
out of training, change a task's training subset, and add results after the last task under its
own key in ``metrics.json``.

A protocol registers itself in ``PROTOCOLS`` from a module of this package."""

from __future__ import annotations

import importlib
import pkgutil


class Protocol:
    name = "protocol"

    def __init__(self, params: dict, seed: int):
        self.params = params
        self.seed = seed

    def exclude_classes(self, splits) -> list[int]:
        """Original class ids that are never trained on."""
        return []

    def adjust_task(self, task):
        """Return the task to train on (for example with a long-tailed training subset)."""
        return task

    def task_info(self, task) -> dict | None:
        return None

    def evaluate_final(self, learner, scenario, engine, ctx) -> dict | None:
        return None


PROTOCOLS: dict[str, type[Protocol]] = {}


def register(name: str):
    def deco(cls):
        cls.name = name
        PROTOCOLS[name] = cls
        return cls
    return deco


def _load() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def build_protocols(cfg: dict) -> list[Protocol]:
    _load()
    out = []
    for name, params in (cfg.get("protocols") or {}).items():
        if name not in PROTOCOLS:
            raise ValueError(f"protocols.{name}: unknown protocol; valid: {', '.join(sorted(PROTOCOLS)) or '(none)'}")
        params = params or {}
        if params.get("enabled", True):
            out.append(PROTOCOLS[name](params, cfg["seed"]))
    return out
