"""Every baseline end to end on the tiny scenario (CPU, seconds): a valid record, memory within the
budget after every task, the teacher reported but not charged, and resume equal to a clean run."""

from __future__ import annotations

import pytest

from braincl.record import validate_record

BASELINES = ["ewc", "lwf", "icarl", "der", "derpp", "bic", "wa", "jpeg_replay"]
DISTILLING = {"lwf", "icarl", "bic", "wa"}
BUDGET = {"ewc": "2MB"}  # EWC's Fisher and anchor of the width-4 ResNet take about 355 KB


@pytest.mark.parametrize("method", BASELINES)
def test_baseline_end_to_end_within_budget(run_tiny, method):
    record = run_tiny(method, budget=BUDGET.get(method, "60KB"))
    validate_record(record)
    budget = record["run"]["budget_bytes"]
    per_task = record["memory"]["per_task"]
    assert len(per_task) == record["run"]["num_tasks"] == 2
    for mem in per_task:
        assert 0 < mem["charged_bytes"] <= budget or (method == "lwf" and mem["charged_bytes"] == 0)
    if method in DISTILLING:
        teacher = per_task[-1]["bytes"]["teacher"]
        assert teacher > 0 and "teacher" in per_task[-1]["uncharged_kinds"]
        assert per_task[-1]["charged_bytes"] == per_task[-1]["total_bytes"] - teacher
    if method == "icarl":
        assert "cnn" in record["accuracy"]["alternatives"]
    for row in record["accuracy"]["tag"]:
        assert all(v is None or 0.0 <= v <= 1.0 for v in row)


@pytest.mark.parametrize("method", ["icarl", "derpp"])
def test_baseline_resume_equals_an_uninterrupted_run(run_tiny, tmp_path, monkeypatch, method):
    import braincl.evaluate as evaluate

    clean = run_tiny(method, out=tmp_path / "clean")
    real = evaluate.evaluate_seen_tasks

    def crash_after_first_checkpoint(learner, scenario, t, **kw):
        if t == 1:
            raise KeyboardInterrupt("simulated preemption")
        return real(learner, scenario, t, **kw)

    monkeypatch.setattr(evaluate, "evaluate_seen_tasks", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_tiny(method, out=tmp_path / "resumed")
    monkeypatch.setattr(evaluate, "evaluate_seen_tasks", real)
    resumed = run_tiny(method, out=tmp_path / "resumed")
    assert resumed["run"]["resumed_from_task"] == 1
    assert resumed["accuracy"]["tag"] == clean["accuracy"]["tag"]
    assert resumed["memory"]["final"] == clean["memory"]["final"]
