"""Evaluation after each task: TAg and TAw accuracy on every seen task, per-class accuracy, and
(after the last task) the feature spectrum."""

from __future__ import annotations

import numpy as np
import torch

from .metrics import feature_spectrum


def _task_aware(scores: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Argmax restricted to the true task's classes (TAw), as a diagnostic."""
    cls = torch.as_tensor(classes)
    return cls[scores[:, cls].argmax(dim=1)]


def evaluate_seen_tasks(learner, scenario, t: int, want_features: bool = False, split: str = "test") -> dict:
    """Accuracy of every predictor on tasks 0..t, on the ``split`` (``test`` or ``val``) images of
    each task. Choices (schedules, codec settings, ...) are made on ``val``. Returns
    {name: {"tag": [..t+1], "taw": [..t+1]}}, per-class accuracy of ``main``, counts, features."""
    engine, ctx = learner.engine, learner.ctx
    learner.eval_mode()
    seen = scenario.classes_up_to(t)
    predictors = learner.predictors()
    rows = {name: {"tag": [], "taw": []} for name in predictors}
    per_class_correct = np.zeros(len(seen))
    per_class_total = np.zeros(len(seen))
    counts, all_feats = [], []
    for j in range(t + 1):
        task = scenario.task(j)
        images = task.eval_subset(split)
        loader = engine.eval_loader(images.dataset(ctx.eval_transform))
        counts.append(len(images))
        for name, fn in predictors.items():
            if name == "main" and want_features:
                def with_feats(x, fn=fn):
                    return fn(x), learner.features(x)
                scores, labels, feats = engine.predict(with_feats, loader)
                all_feats.append(feats)
            else:
                scores, labels, _ = engine.predict(fn, loader)
            scores = scores[:, : len(seen)]
            pred = scores.argmax(dim=1)
            rows[name]["tag"].append((pred == labels).float().mean().item())
            rows[name]["taw"].append((_task_aware(scores, task.classes) == labels).float().mean().item())
            if name == "main":
                np.add.at(per_class_correct, labels.numpy(), (pred == labels).numpy())
                np.add.at(per_class_total, labels.numpy(), 1)
    out = {"rows": rows, "counts": counts,
           "per_class": (per_class_correct / np.maximum(per_class_total, 1)).tolist()}
    if want_features and all_feats:
        out["spectrum"] = feature_spectrum(torch.cat(all_feats).numpy())
    return out


def square(rows: list[list[float]], T: int) -> list[list[float | None]]:
    return [r + [None] * (T - len(r)) for r in rows]
