import pytest

from braincl.record import validate_record


@pytest.mark.parametrize("method", ["finetune", "joint", "er"])
def test_core_methods_end_to_end(run_tiny, method):
    record = run_tiny(method, budget=None if method != "er" else "60KB")
    validate_record(record)
    T = record["run"]["num_tasks"]
    assert len(record["accuracy"]["tag"]) == T
    assert 0.0 <= record["summary"]["last_acc_sample"] <= 1.0
