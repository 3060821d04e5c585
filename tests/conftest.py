"""Shared fixtures. Every end-to-end test uses a tiny MNIST 5k scenario on the CPU with one thread
so that the whole suite stays within CI's budget on a 2-core machine."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def tiny_overrides(method: str = "finetune", budget: str | None = "60KB", **extra) -> list[str]:
    """--set style overrides for a 2-task, 1-epoch, 40-images-per-class run (seconds on a CPU)."""
    items = {
        "method.name": method,
        "dataset.params.train_per_class": 40,
        "dataset.params.test_per_class": 20,
        "scenario.num_tasks": 2,
        "train.epochs": 1,
        "train.batch_size": 32,
        "train.progress": False,
        "train.threads": 1,
        "model.params.width": 4,
        "eval.spectrum": True,
        # every one of the 40 images per class trains, so that counts in these tests stay round; the
        # validation split is tested on its own (tests/test_validation_split.py)
        "dataset.validation.source": "none",
    }
    if budget is not None:
        items["memory.budget"] = budget
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]


_SPLITS = {}  # data set builds are slow on a shared CPU; sources are read-only, so tests share them


def build_learner(cfg):
    """The runner's own set-up (``prepare_run``), stopped before the first task, so tests can drive
    a learner's phases themselves. Returns (learner, scenario)."""
    from braincl.runner import build_data, prepare_run

    key = repr(cfg["dataset"])
    _SPLITS[key] = _SPLITS.get(key) or build_data(cfg)
    run = prepare_run(cfg, splits=_SPLITS[key])
    return run.learner, run.scenario


@pytest.fixture
def tiny_cfg():
    """Build a resolved, validated tiny config: tiny_cfg("er", budget="60KB", **{"train.epochs": 2})."""
    from braincl import config

    def make(method: str = "finetune", budget: str | None = "60KB", **extra):
        return config.load(None, tiny_overrides(method, budget, **extra))

    return make


@pytest.fixture
def run_tiny(tiny_cfg, tmp_path):
    """Run a tiny experiment and return its record."""
    from braincl.runner import run_experiment

    def run(method: str = "finetune", budget: str | None = "60KB", out=None, **extra):
        cfg = tiny_cfg(method, budget, **extra)
        return run_experiment(cfg, out or tmp_path / method, log=lambda *_: None)

    return run
