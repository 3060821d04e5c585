"""Replay mechanics shared by er, der and derpp: reservoir sampling, the per-step replay minibatch
(full, drop_last), the task-balanced sampler, and DER's stored logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from braincl.memory.exemplars import ExemplarBuffer
from conftest import build_learner


def test_reservoir_keeps_capacity_and_every_stream_position_equally_likely():
    capacity, stream, trials = 20, 200, 300
    hits = np.zeros(stream)
    for trial in range(trials):
        buf, seen, rng = ExemplarBuffer(), 0, np.random.default_rng(trial)
        for start in range(0, stream, 10):  # batches of 10, as a training stream
            ids = np.arange(start, start + 10)
            seen = buf.reservoir_add(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), ids, capacity, seen, rng)
        assert len(buf) == capacity and seen == stream
        hits[buf.labels.numpy()] += 1
    rate = hits / trials  # expected capacity / stream = 0.1 for every position
    assert abs(rate[:100].mean() - 0.1) < 0.015 and abs(rate[100:].mean() - 0.1) < 0.015
    assert abs(rate[:20].mean() - 0.1) < 0.03  # the first samples are not kept for good


def _record_steps(learner, task):
    seen = []
    fit = learner.engine.fit

    def spy(model, loader, *, step=None, replay=None, **kw):
        def recording(batch, replay_batch):
            seen.append((len(batch[0]), None if replay_batch is None else len(replay_batch[0]),
                         batch[1].cpu().numpy().copy(), None if replay_batch is None else replay_batch[1].cpu().numpy().copy()))
            return step(batch, replay_batch)
        return fit(model, loader, step=recording, replay=replay, **kw)

    learner.engine.fit = spy
    return seen


def test_er_step_replay_draws_a_full_buffer_minibatch_every_step(tiny_cfg):
    learner, scenario = build_learner(tiny_cfg("er", budget="60KB", **{"method.params.replay_batch_size": 8}))
    t0, t1 = scenario.task(0), scenario.task(1)
    learner.begin_task(t0); learner.train_task(t0); learner.end_task(t0)
    steps = _record_steps(learner, t1)
    learner.begin_task(t1); learner.train_task(t1)
    assert len(steps) == len(t1.train) // 32  # the new data sets the steps (drop_last)
    assert all(b == 32 and r == 8 for b, r, _, _ in steps)  # every replay minibatch is full
    assert all(set(ry) <= set(t0.classes) for *_, ry in steps)


def test_er_union_trains_on_task_plus_buffer_without_a_replay_stream(tiny_cfg):
    learner, scenario = build_learner(tiny_cfg("er", budget="60KB", **{"method.params.replay": "union"}))
    t0, t1 = scenario.task(0), scenario.task(1)
    learner.begin_task(t0); learner.train_task(t0); learner.end_task(t0)
    steps = _record_steps(learner, t1)
    learner.begin_task(t1); learner.train_task(t1)
    assert all(r is None for _, r, _, _ in steps)
    assert len(steps) == (len(t1.train) + len(learner.buffer)) // 32


def test_balanced_sampler_gives_every_task_the_same_expected_share(tiny_cfg):
    learner, scenario = build_learner(tiny_cfg("er", budget="10KB", **{"method.params.sampler": "balanced"}))
    t0, t1 = scenario.task(0), scenario.task(1)
    learner.begin_task(t0); learner.train_task(t0); learner.end_task(t0)
    learner.begin_task(t1)
    labels = np.concatenate([b[1].numpy() for b in learner.balanced_loader(t1)])
    old = np.isin(labels, t0.classes).mean()
    assert len(learner.buffer) < len(t1.train) / 4  # a plain union would give the old task under 20 %
    assert abs(old - 0.5) < 0.08


def test_reservoir_er_fills_the_buffer_during_training_within_the_budget(tiny_cfg):
    learner, scenario = build_learner(tiny_cfg("er", budget="40KB", **{"method.params.buffer": "reservoir"}))
    t0 = scenario.task(0)
    steps = _record_steps(learner, t0)
    learner.begin_task(t0); learner.train_task(t0)
    cap = 40_000 // learner.exemplar_bytes()
    assert len(learner.buffer) == cap and learner.stream_seen == len(steps) * 32
    assert steps[0][1] == 0 and steps[-1][1] == 32  # replay starts once the stream has filled the buffer
    assert learner.memory().charged <= 40_000


@pytest.mark.parametrize("method", ["der", "derpp"])
def test_der_stores_padded_logits_and_charges_them(tiny_cfg, method):
    learner, scenario = build_learner(tiny_cfg(method, budget="60KB", **{"method.params.buffer": "reservoir",
                                                                        "method.params.replay_batch_size": 4}))
    assert learner.extra_bytes_per_exemplar == 2 * scenario.num_classes
    t0 = scenario.task(0)
    steps = _record_steps(learner, t0)
    learner.begin_task(t0); learner.train_task(t0)
    logits = learner.buffer.extras["logits"]
    assert logits.shape[1] == scenario.num_classes and logits.dtype == torch.float16
    assert (logits[:, len(t0.classes):] == 0).all() and (logits[:, : len(t0.classes)] != 0).any()
    assert steps[-1][1] == (8 if method == "derpp" else 4)  # DER++ draws two minibatches
    assert learner.memory().parts["exemplars"] == len(learner.buffer) * learner.exemplar_bytes()


def test_der_without_the_replay_ce_term_differs_from_derpp(tiny_cfg):
    from baselines.derpp import DER, DERpp

    assert issubclass(DER, DERpp) and DER.replay_ce is False and DERpp.replay_ce is True


def test_an_unsupported_option_fails_before_training(tiny_cfg):
    with pytest.raises(ValueError, match="sampler"):
        build_learner(tiny_cfg("derpp", budget="60KB", **{"method.params.sampler": "balanced"}))
    with pytest.raises(ValueError, match="replay=step"):
        build_learner(tiny_cfg("er", budget="60KB", **{"method.params.buffer": "reservoir", "method.params.replay": "union"}))
