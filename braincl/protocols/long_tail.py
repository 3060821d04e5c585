"""``long_tail``: a long-tailed training set within each task; the test sets stay as they are.

Per task, the C classes (in the task's class order, which the scenario draws from its seed; or in a
seeded random order with ``order: random``) keep an exponentially decaying number of training images,
as in Cui et al. (CVPR 2019) and LDAM (Cao et al., NeurIPS 2019):

    n_i = floor(n_max * rho^(-i / (C - 1))),   i = 0..C-1,   rho = n_0 / n_{C-1}

``n_max`` defaults to the smallest per-class training count in the task, so that every class can
supply its target and the realised profile is exact. Which images a class keeps is drawn with a seed
per (seed, task). The counts actually used are recorded per task.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..config import ConfigError
from ..seeding import derive_seed
from . import Protocol, register
from .covariate_shift import check_params


def longtail_counts(num_classes: int, n_max: int, rho: float, minimum: int = 1) -> list[int]:
    """Exponential profile: n_i = floor(n_max * rho^(-i/(C-1))), at least ``minimum``."""
    if num_classes == 1:
        return [int(n_max)]
    return [max(minimum, math.floor(n_max * rho ** (-i / (num_classes - 1)))) for i in range(num_classes)]


@register("long_tail")
class LongTail(Protocol):
    DEFAULTS = {"rho": 10.0, "n_max": None, "min_per_class": 1, "order": "task", "seed": None}

    def __init__(self, params: dict, seed: int):
        super().__init__(params, seed)
        p = check_params("long_tail", params, self.DEFAULTS)
        if not isinstance(p["rho"], (int, float)) or p["rho"] < 1:
            raise ConfigError("protocols.long_tail.rho: the imbalance ratio n_max/n_min must be a number >= 1, "
                              f"not {p['rho']!r}")
        for key in ("n_max", "min_per_class"):
            if p[key] is not None and not (isinstance(p[key], int) and p[key] >= 1):
                raise ConfigError(f"protocols.long_tail.{key}: a positive integer (or null for n_max)")
        if p["order"] not in ("task", "random"):
            raise ConfigError(f"protocols.long_tail.order: task or random, not {p['order']!r}")
        self.p = p
        self.sample_seed = int(p["seed"] if p["seed"] is not None else seed)
        self.targets: dict[int, dict] = {}

    def adjust_task(self, task):
        labels = task.train.labels
        classes = list(task.classes)
        rng = np.random.default_rng(derive_seed(self.sample_seed, "long_tail", task.index))
        if self.p["order"] == "random":
            classes = [classes[i] for i in rng.permutation(len(classes))]
        available = [int((labels == c).sum()) for c in classes]
        n_max = self.p["n_max"] or min(available)
        target = longtail_counts(len(classes), n_max, float(self.p["rho"]), self.p["min_per_class"])
        keep = np.zeros(len(labels), dtype=bool)
        for c, n in zip(classes, target):
            idx = np.flatnonzero(labels == c)
            keep[rng.permutation(idx)[:n]] = True
        self.targets[task.index] = {"ranked_classes": classes, "n_max": int(n_max), "target_counts": target,
                                    "available": available}
        return dataclasses.replace(task, train=task.train.restrict(keep))

    def task_info(self, task):
        t = self.targets[task.index]
        counts = [int((task.train.labels == c).sum()) for c in t["ranked_classes"]]
        position = {c: i for i, c in enumerate(task.classes)}
        return {"rho": float(self.p["rho"]), "n_max": t["n_max"], "classes": t["ranked_classes"],
                "original_classes": [task.original_classes[position[c]] for c in t["ranked_classes"]],
                "target_counts": t["target_counts"], "counts": counts, "available": t["available"]}
