"""``unknown_classes``: open-set detection after the last task.

A set of classes is held out of the scenario - never in any task, never trained on - either named
(``classes``: original class ids) or drawn (``num`` classes with ``seed``). After the last task the
learner's main predictor scores the test samples of every task (known) and of the held-out classes
(unknown) over the classes seen so far, and AUROC (scikit-learn ``roc_auc_score``, known = positive)
is reported for two scores where higher means "known":

- maximum softmax probability (Hendrycks & Gimpel, ICLR 2017);
- negative free energy, logsumexp of the scores (Liu et al., NeurIPS 2020, temperature 1).
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import ConfigError
from . import Protocol, register
from .covariate_shift import check_params


def known_vs_unknown_auroc(known_scores: torch.Tensor, unknown_scores: torch.Tensor) -> dict:
    """AUROC of MSP and energy for (N, K) score matrices of known and unknown samples."""
    from sklearn.metrics import roc_auc_score

    scores = torch.cat([known_scores, unknown_scores]).float()
    y = np.r_[np.ones(len(known_scores)), np.zeros(len(unknown_scores))]
    msp = torch.softmax(scores, dim=1).max(dim=1).values.numpy()
    energy = torch.logsumexp(scores, dim=1).numpy()
    return {"auroc_msp": float(roc_auc_score(y, msp)), "auroc_energy": float(roc_auc_score(y, energy))}


@register("unknown_classes")
class UnknownClasses(Protocol):
    DEFAULTS = {"classes": None, "num": None, "seed": None}

    def __init__(self, params: dict, seed: int):
        super().__init__(params, seed)
        p = check_params("unknown_classes", params, self.DEFAULTS)
        if (p["classes"] is None) == (p["num"] is None):
            raise ConfigError("protocols.unknown_classes: give either classes (a list of original class ids) "
                              "or num (how many classes to draw with seed), not both or neither")
        if p["classes"] is not None and (not isinstance(p["classes"], list) or not p["classes"]
                                         or not all(isinstance(c, int) for c in p["classes"])):
            raise ConfigError("protocols.unknown_classes.classes: a non-empty list of integer class ids")
        if p["num"] is not None and not (isinstance(p["num"], int) and p["num"] >= 1):
            raise ConfigError("protocols.unknown_classes.num: a positive integer")
        self.p = p
        self.draw_seed = int(p["seed"] if p["seed"] is not None else seed)
        self.held_out: list[int] = []

    def exclude_classes(self, splits) -> list[int]:
        n = splits.num_classes
        if self.p["classes"] is not None:
            held = sorted(set(self.p["classes"]))
            bad = [c for c in held if not 0 <= c < n]
            if bad:
                raise ConfigError(f"protocols.unknown_classes.classes: {bad} outside the data set's classes 0..{n - 1}")
        else:
            if self.p["num"] >= n:
                raise ConfigError(f"protocols.unknown_classes.num: {self.p['num']} would leave no known class of {n}")
            held = sorted(np.random.default_rng(self.draw_seed).choice(n, self.p["num"], replace=False).tolist())
        if len(held) >= n:
            raise ConfigError("protocols.unknown_classes.classes: holding out every class leaves nothing to learn")
        empty = [c for c in held if not np.any(splits.test.targets == c)]
        if empty:
            raise ConfigError(f"protocols.unknown_classes: held-out classes {empty} have no test samples")
        self.held_out = held
        return held

    def evaluate_final(self, learner, scenario, engine, ctx):
        from ..data.base import ImageDataset

        learner.eval_mode()
        predict = learner.predictors()["main"]
        num_seen = scenario.num_classes

        def scores_of(subsets) -> torch.Tensor:
            source = scenario.splits.test
            idx = np.concatenate([s.indices for s in subsets])
            data = ImageDataset(lambda i: source.read(int(idx[i])), np.zeros(len(idx)), ctx.eval_transform)
            return engine.predict(predict, engine.eval_loader(data))[0][:, :num_seen]

        known = scores_of([scenario.task(t).test for t in range(scenario.num_tasks)])
        unknown = scores_of([scenario.held_out_test()])
        return {**known_vs_unknown_auroc(known, unknown), "held_out_classes": self.held_out,
                "held_out_names": [scenario.splits.class_names[c] for c in self.held_out],
                "known_samples": int(len(known)), "unknown_samples": int(len(unknown)),
                "positive": "known", "predictor": "main", "energy_temperature": 1.0}
