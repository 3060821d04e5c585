"""Training parity (docs/equal_training.md): per task, every method's optimizer steps and backbone
sample-updates stand in their stated relation to ``er``'s, on tiny runs of every method. The rule's
table and ``stated`` below say the same thing; a change to either must change both.

What is measured per task, from the record's ``compute`` (training phases only; the encoding
phases codec, generator and memory build the memory and update no classifier):
- ``backbone_steps``: optimizer steps of the phases that back-propagate through the backbone;
- ``backbone_samples``: samples back-propagated through the backbone;
- ``other_steps``: optimizer steps that leave the backbone untouched (BrainCL's wake, BiC's bias
  layer, LwF's head warm-up)."""

from __future__ import annotations

import math

import pytest

from braincl.compute import ENCODING_PHASES
from braincl.memory.exemplars import ExemplarBuffer

EPOCHS, BATCH, PER_TASK = 1, 32, 80  # conftest's tiny runs: 2 classes x 40 images per task
IMAGE = (1, 28, 28)
CHECKED = ("braincl", "der", "derpp", "jpeg_replay", "gen_replay", "finetune", "lwf", "ewc", "icarl", "wa", "bic")


def measured(record, task: int) -> dict:
    phases = {k: v for k, v in record["compute"]["per_task"][task]["phases"].items() if k not in ENCODING_PHASES}
    backbone = [p for p in phases.values() if p["backbone_backward"] > 0]
    return {"backbone_steps": sum(p["steps"] for p in backbone),
            "backbone_samples": sum(p["backbone_backward"] for p in phases.values()),
            "other_steps": sum(p["steps"] for p in phases.values() if p["backbone_backward"] == 0)}


def buffer_at_start(record, task: int) -> int:
    """Exemplars a raw buffer held when ``task`` started (from the previous task's charged bytes)."""
    return record["memory"]["per_task"][task - 1]["bytes"]["exemplars"] // ExemplarBuffer.bytes_per_exemplar(IMAGE)


def stated(method: str, record, er: dict, task: int) -> dict:
    """The rule's relation to ``er`` (``er``: ``measured(er_record, task)``) for one task. Values are
    exact numbers, or (low, high) for a stated range."""
    steps = EPOCHS * (PER_TASK // BATCH)  # er's steps: whole current batches per epoch
    current = steps * BATCH               # samples of the current task's data alone
    same = {"backbone_steps": er["backbone_steps"], "backbone_samples": er["backbone_samples"], "other_steps": 0}
    if method in ("der", "jpeg_replay"):
        return same
    if method == "braincl":  # sleep at er's effective batch, plus the head-only wake
        return {**same, "other_steps": steps}
    if method == "derpp":  # two replay minibatches (the ++ term's own draw)
        return {**same, "backbone_samples": current if task == 0 else current * 3}
    if method == "gen_replay":  # a replay batch per step from a cycled loader over the generated set
        return {**same, "backbone_samples": (current, er["backbone_samples"])}
    if method in ("finetune", "lwf", "ewc"):
        return {"backbone_steps": steps, "backbone_samples": current, "other_steps": 0}
    if method in ("icarl", "wa") or (method == "bic" and task > 0):  # rehearsal on the union
        union = PER_TASK + (buffer_at_start(record, task) if task > 0 else 0)
        other = 0
        if method == "bic":
            held_out = record["method_info"]["bias_validation_samples"][task - 1]
            union -= held_out
            bias = record["config"]["method"]["params"]["bias_epochs"]
            other = bias * math.ceil(held_out / BATCH)
        union_steps = EPOCHS * (union // BATCH)
        return {"backbone_steps": union_steps, "backbone_samples": union_steps * BATCH, "other_steps": other}
    if method == "bic":  # first task: plain training
        return {"backbone_steps": steps, "backbone_samples": current, "other_steps": 0}
    raise KeyError(method)


def violations(method: str, record, er_record) -> list[str]:
    out = []
    for task in range(len(record["compute"]["per_task"])):
        have, want = measured(record, task), stated(method, record, measured(er_record, task), task)
        for key, value in want.items():
            ok = value[0] <= have[key] <= value[1] if isinstance(value, tuple) else have[key] == value
            if not ok:
                out.append(f"{method} task {task + 1}: {key} {have[key]}, stated {value}")
    return out


@pytest.fixture(scope="module")
def records(tiny_cfg_module, tmp_path_factory):
    """Tiny records, run once per module and method (a few seconds each)."""
    from braincl.runner import run_experiment

    cache = {}

    def get(method: str, tag: str = "", **extra):
        key = (method, tag, tuple(sorted(extra.items())))
        if key not in cache:
            budget = None if method in ("finetune", "lwf", "ewc") else "60KB"
            cfg = tiny_cfg_module(method, budget, **({"method.params.codec_steps": 5} if method == "braincl" else {}),
                                  **extra)
            cache[key] = run_experiment(cfg, tmp_path_factory.mktemp(method), log=lambda *_: None)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def tiny_cfg_module():
    from braincl import config

    from conftest import tiny_overrides

    return lambda method, budget, **extra: config.load(None, tiny_overrides(method, budget, **extra))


@pytest.mark.slow
def test_er_is_what_the_rule_measures_against(records):
    er = records("er")
    steps = EPOCHS * (PER_TASK // BATCH)
    assert [measured(er, t) for t in (0, 1)] == [
        {"backbone_steps": steps, "backbone_samples": steps * BATCH, "other_steps": 0},       # no buffer yet
        {"backbone_steps": steps, "backbone_samples": steps * 2 * BATCH, "other_steps": 0}]   # + a buffer batch


@pytest.mark.slow
@pytest.mark.parametrize("method", CHECKED)
def test_every_method_keeps_its_stated_relation_to_er(method, records):
    assert violations(method, records(method), records("er")) == []


@pytest.mark.slow
def test_more_sleep_steps_at_equal_samples_break_the_rule(records, monkeypatch):
    """Sleep in batches of a quarter of er's effective batch: the same samples, 4x the steps."""
    from braincl.methods.braincl import BrainCL

    balanced_loader = BrainCL.balanced_loader
    monkeypatch.setattr(BrainCL, "balanced_loader",
                        lambda self, datasets, draws, batch_size: balanced_loader(self, datasets, draws, batch_size // 4))
    found = violations("braincl", records("braincl", tag="quarter batch"), records("er"))
    assert found and all("backbone_steps" in v for v in found), found  # samples still equal, steps not


@pytest.mark.slow
def test_longer_sleep_breaks_the_rule(records):
    found = violations("braincl", records("braincl", **{"method.params.sleep_epochs": 4 * EPOCHS}), records("er"))
    assert any("backbone_steps" in v for v in found) and any("backbone_samples" in v for v in found), found
