"""gen_replay keeps ONE generator: the same object, retrained on each task, with a constant size."""

import pytest
import torch

from braincl.memory import BudgetExceeded
from braincl.record import validate_record

SMALL = {"method.params.N": 8, "method.params.M": 8, "method.params.vae_epochs": 1}


def test_gen_replay_end_to_end(run_tiny):
    record = run_tiny("gen_replay", budget="60KB", **SMALL)
    validate_record(record)
    sizes = [t["bytes"]["decoders"] for t in record["memory"]["per_task"]]
    assert sizes[0] > 0 and sizes == [sizes[0]] * len(sizes)
    assert record["method_info"]["per_task"][1]["replayed"] == 80  # as many as task 2's images
    assert 0.0 <= record["summary"]["last_acc_sample"] <= 1.0


def test_one_generator_is_shared_and_retrained(tiny_cfg):
    from test_braincl import build_learner

    learner, scenario = build_learner(tiny_cfg("gen_replay", budget="60KB", **SMALL))
    generator = learner.generator
    seen = []
    for t in range(2):
        task = scenario.task(t)
        learner.begin_task(task)
        learner.train_task(task)
        learner.end_task(task)
        seen.append((learner.generator, [p.detach().clone() for p in learner.generator.parameters()],
                     learner.memory().parts["decoders"]))
    assert seen[0][0] is generator and seen[1][0] is generator
    assert len(seen[0][1]) == len(seen[1][1]) and seen[0][2] == seen[1][2]
    assert any(not torch.equal(a, b) for a, b in zip(seen[0][1], seen[1][1]))  # retrained on task 2


def test_budget_below_generator_fails(tiny_cfg):
    from test_braincl import build_learner

    with pytest.raises(BudgetExceeded, match="cannot hold the generator"):
        build_learner(tiny_cfg("gen_replay", budget="10KB", **SMALL, **{"method.params.size_by_budget": False}))
    with pytest.raises(BudgetExceeded, match="cannot hold the generator"):  # even its narrowest (N=1) version
        build_learner(tiny_cfg("gen_replay", budget="200B", **SMALL))
