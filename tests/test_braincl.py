"""BrainCL: recall is exact and stable across tasks, the budget holds, corruption is caught, and
each ablation does what it says."""

import numpy as np
import pytest
import torch

from braincl.memory import BudgetExceeded
from braincl.memory.cues import CueCorrupted
from braincl.record import validate_record
from conftest import build_learner  # re-exported for test_gen_replay

# A codec small enough for 2 tiny tasks (2 stages from the mnist5k defaults, N=M=8).
SMALL = {"method.params.N": 8, "method.params.M": 8, "method.params.codec_steps": 6,
         "method.params.wake_epochs": 1, "method.params.sleep_epochs": 1}


def backbone_state(learner):
    return {k: v.clone() for k, v in learner.model.backbone.state_dict().items()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_braincl_end_to_end(run_tiny):
    record = run_tiny("braincl", budget="30KB", **SMALL)
    validate_record(record)
    mem = record["memory"]["final"]["bytes"]
    assert mem["cues"] > 0 and mem["decoders"] > 0 and mem["entropy_tables"] > 0
    assert record["memory"]["final"]["charged_bytes"] <= 30_000
    info = record["method_info"]
    assert info["ablations"]["completion"] == "per_task" and info["ablations"]["N"] == 8
    assert [t["sleep_steps"] > 0 for t in info["per_task"]] == [True, True]
    assert 0.0 <= record["summary"]["last_acc_sample"] <= 1.0


@pytest.mark.parametrize("budget", ["24KB", "27KB", "32KB"])
def test_budget_is_never_exceeded(run_tiny, budget):
    record = run_tiny("braincl", budget=budget, **SMALL)
    limit = record["memory"]["budget_bytes"]
    for task in record["memory"]["per_task"]:
        assert task["charged_bytes"] <= limit
    per_class = [t["ltm_cues_per_class"] for t in record["method_info"]["per_task"]]
    assert per_class[-1] >= 1


def test_budget_too_small_for_decoders_fails_clearly(tiny_cfg):
    cfg = tiny_cfg("braincl", budget="4KB", **SMALL)
    with pytest.raises(BudgetExceeded, match=r"completion networks of 2 tasks.*Give at least \d+ bytes"):
        build_learner(cfg)


@pytest.fixture(scope="module")
def two_tasks_per_task():
    """A per-task-completion run over both tasks, with task 1's long-term cues and their recall
    taken right after task 1."""
    from braincl import config
    from conftest import tiny_overrides

    learner, scenario = build_learner(config.load(None, tiny_overrides("braincl", "30KB", **SMALL)))
    for t in range(2):
        task = scenario.task(t)
        learner.begin_task(task)
        learner.train_task(task)
        learner.end_task(task)
        if t == 0:
            strings, shape = list(learner.ltm.strings), learner.ltm.shapes[0]
            recalled = learner.decoders[0].recall(strings, shape)
    return learner, (strings, shape, recalled)


def test_task1_cues_decode_identically_after_task2(two_tasks_per_task):
    learner, (strings, shape, recalled) = two_tasks_per_task
    assert torch.equal(learner.decoders[0].recall(strings, shape), recalled)
    kept = [learner.ltm.strings[i] for i in np.flatnonzero(learner.ltm.tasks == 0)]
    assert 0 < len(kept) and set(kept) <= set(strings)  # eviction only drops cues, never changes them
    assert learner.decoders[0].g_s is not learner.decoders[1].g_s


def test_corrupted_cue_is_detected(two_tasks_per_task):
    learner, _ = two_tasks_per_task
    ltm = learner.ltm
    i = int(np.flatnonzero(ltm.tasks == 0)[3])
    original = ltm.strings[i]
    ltm.strings[i] = bytes([original[0] ^ 0x01]) + original[1:]
    try:
        with pytest.raises(CueCorrupted, match=rf"cue {i} \(task 1, cue 3 of that task"):
            ltm.recall(learner.decoders)
    finally:
        ltm.strings[i] = original


def test_shared_completion_uses_one_decoder_that_drifts(tiny_cfg):
    cfg = tiny_cfg("braincl", budget="30KB", **SMALL, **{"method.params.completion": "shared"})
    learner, scenario = build_learner(cfg)
    for t in range(2):
        task = scenario.task(t)
        learner.begin_task(task)
        wm = learner.encode_task(task)
        if t == 0:
            strings, shape = wm.strings[:8], wm.shapes[0]
            latents = learner.decoders[0].decode_latents(strings, shape)
            before = learner.decoders[0].recall(strings, shape)
    assert learner.decoders[0].g_s is learner.decoders[1].g_s
    assert learner.decoders[0].entropy is not learner.decoders[1].entropy
    assert torch.equal(learner.decoders[0].decode_latents(strings, shape), latents)  # the cue itself is intact
    assert not torch.equal(learner.decoders[0].recall(strings, shape), before)    # its decoder has drifted
    dec, _ = learner.fixed_nbytes()
    assert dec == learner.decoders[0].decoder_nbytes()


@pytest.mark.parametrize("freeze", [True, False])
def test_wake_freezes_the_backbone_only_when_asked(tiny_cfg, freeze):
    cfg = tiny_cfg("braincl", budget="30KB", **SMALL, **{"method.params.freeze_backbone_in_wake": freeze})
    learner, scenario = build_learner(cfg)
    task = scenario.task(0)
    learner.begin_task(task)
    wm = learner.encode_task(task)
    before, head = backbone_state(learner), learner.model.head.fc.weight.clone()
    learner.wake(task, wm)
    after = backbone_state(learner)  # includes BN running statistics
    assert same(before, after) == freeze
    assert not torch.equal(head, learner.model.head.fc.weight)


@pytest.mark.parametrize("scope", ["new", "seen"])
def test_wake_loss_reaches_old_classes_only_with_seen_scope(tiny_cfg, scope):
    """wake_ce_scope new: the wake's loss gives the old classes' output rows no gradient at all, so
    the wake cannot push the old logits down on data that has none of them; seen: it does."""
    from braincl.engine import cross_entropy_step

    cfg = tiny_cfg("braincl", budget="30KB", **SMALL, **{"method.params.wake_ce_scope": scope})
    learner, scenario = build_learner(cfg)
    first = scenario.task(0)
    learner.begin_task(first)
    learner.train_task(first)
    learner.end_task(first)
    task = scenario.task(1)
    learner.begin_task(task)
    wm = learner.encode_task(task)
    batch = next(iter(learner.engine.loader(learner.recalled(wm, learner.ctx.train_transform, "wake"),
                                            shuffle=False)))
    step = learner.wake_step(task) or cross_entropy_step(learner.model)
    learner.model.zero_grad(set_to_none=True)
    step(batch, None).backward()
    grad = learner.model.head.fc.weight.grad
    old = min(task.classes)
    assert old == len(first.classes) and grad.shape[0] == old + len(task.classes)
    assert torch.count_nonzero(grad[old:]) > 0
    assert (torch.count_nonzero(grad[:old]) == 0) == (scope == "new")
    assert learner.info()["ablations"]["wake_ce_scope"] == scope


def test_sleep_off_means_no_sleep_training(tiny_cfg):
    cfg = tiny_cfg("braincl", budget="30KB", **SMALL, **{"method.params.sleep": False})
    learner, scenario = build_learner(cfg)
    start = backbone_state(learner)
    for t in range(2):
        task = scenario.task(t)
        learner.begin_task(task)
        learner.train_task(task)
        learner.end_task(task)
    assert [h["sleep_steps"] for h in learner.history] == [0, 0]
    assert learner.engine.steps_done == sum(h["wake_steps"] for h in learner.history)
    assert same(start, backbone_state(learner))  # frozen in wake and never consolidated
    assert learner.info()["ablations"]["sleep"] is False
    assert len(learner.ltm) > 0  # selection still fills long-term memory
