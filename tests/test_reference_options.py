"""The two options the Seq-MNIST reference needs to run its cells as Mammoth does: JOINT trained once,
on all tasks' data, after the last task (``schedule: final``), and ER with a head that has every
output from the first task (``head: fixed``)."""

from __future__ import annotations

import pytest

from conftest import build_learner as make_learner


def _train_steps(record) -> list[int]:
    return [t["phases"].get("train", {}).get("steps", 0) for t in record["compute"]["per_task"]]


def test_joint_final_trains_once_on_every_task_after_the_last(run_tiny, tmp_path):
    final = run_tiny("joint", budget=None, out=tmp_path / "final", **{"method.params.schedule": "final"})
    every = run_tiny("joint", budget=None, out=tmp_path / "every")
    # 2 tasks of 2 classes x 40 images, batch 32, drop_last: every_task trains 80 // 32 on task 1 and
    # 160 // 32 on task 2; final trains nothing on task 1 and the union of both on task 2.
    assert _train_steps(every) == [2, 5]
    assert _train_steps(final) == [0, 5]
    assert final["method_info"]["schedule"] == "final" and final["method_info"]["trained_rows"] == [1]
    assert every["method_info"]["schedule"] == "every_task" and every["method_info"]["trained_rows"] == [0, 1]
    assert "only the last row" in final["method_info"]["note"]
    assert "backbone_forward" not in final["compute"]["per_task"][0]["phases"].get("train", {})


def test_joint_schedule_is_checked_when_the_config_loads(tiny_cfg):
    from braincl.config import ConfigError

    with pytest.raises(ConfigError, match="schedule"):
        tiny_cfg("joint", budget=None, **{"method.params.schedule": "once"})


@pytest.mark.parametrize("head", ["growing", "fixed"])
def test_er_head_option(tiny_cfg, head):
    """``head: fixed`` has all the scenario's outputs from the first task and never grows (Mammoth's
    MNISTMLP); ``growing`` (the default) adds each task's two. Evaluation ranks only the seen classes."""
    cfg = tiny_cfg("er", budget="60KB", **({"method.params.head": head} if head == "fixed" else {}))
    assert cfg["method"]["params"]["head"] == head
    learner, scenario = make_learner(cfg)
    task = scenario.task(0)
    learner.begin_task(task)
    assert learner.model.num_classes == (scenario.num_classes if head == "fixed" else 2)
    learner.train_task(task)
    learner.end_task(task)
    learner.begin_task(scenario.task(1))
    assert learner.model.num_classes == 4 == scenario.num_classes  # 2 tasks of 2 classes
    from braincl.evaluate import evaluate_seen_tasks

    out = evaluate_seen_tasks(learner, scenario, 1)
    assert len(out["per_class"]) == 4 and len(out["rows"]["main"]["tag"]) == 2
