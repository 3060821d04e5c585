import numpy as np
import pytest
import torch

from braincl.memory import Budget, BudgetExceeded
from braincl.memory.exemplars import ExemplarBuffer, per_class_quota
from braincl.memory.selection import closest_to_mean, herding, select
from braincl.units import format_bytes, parse_bytes


@pytest.mark.parametrize("text,expected", [
    ("500KB", 500_000), ("280MB", 280_000_000), ("1.5GiB", int(1.5 * 2**30)), ("2KiB", 2048),
    (123, 123), ("123", 123), ("10 b", 10), ("1e3KB", 1_000_000),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "10 parsecs", "-5MB", True])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ValueError):
        parse_bytes(bad)


def test_format_bytes():
    assert format_bytes(999) == "999 B" and format_bytes(280_000_000) == "280.00 MB"


def test_exemplar_buffer_counts_exact_bytes():
    buf = ExemplarBuffer()
    buf.add(torch.zeros(5, 1, 28, 28, dtype=torch.uint8), [0] * 5)
    buf.add(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), [1] * 3)
    assert buf.nbytes() == 8 * (784 + 2)
    assert ExemplarBuffer.bytes_per_exemplar((1, 28, 28)) == 786
    buf.reduce_per_class(2)
    assert buf.per_class_count() == {0: 2, 1: 2} and buf.nbytes() == 4 * 786


def test_quota_fits_the_budget():
    for budget in (1000, 10_000, 123_456):
        for classes in (2, 4, 10):
            q = per_class_quota(budget, classes, 786)
            assert q * classes * 786 <= budget < (q + 1) * classes * 786


def test_budget_check_and_teacher_policy():
    budget = Budget(1000)
    b = budget.breakdown().add("exemplars", 900).add("teacher", 5000)
    budget.check(b, "test")  # the teacher is reported, not charged, by default
    assert b.charged == 900 and b.total == 5900
    charged = Budget(1000, charge_teacher=True)
    with pytest.raises(BudgetExceeded, match="Raise memory.budget to at least 5900"):
        charged.check(charged.breakdown().add("exemplars", 900).add("teacher", 5000), "test")
    with pytest.raises(KeyError):
        budget.breakdown().add("gpu", 1)


def test_selection_orders():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [1.0, 0.1]])
    # mean of normalised features points along the diagonal: sample 2 is closest
    assert closest_to_mean(feats, 1).tolist() == [2]
    assert herding(feats, 1).tolist() == [2]
    assert sorted(herding(feats, 4).tolist()) == [0, 1, 2, 3]
    assert select("random", feats, 2, seed=1).tolist() == select("random", feats, 2, seed=1).tolist()
    with pytest.raises(ValueError, match="valid"):
        select("best", feats, 1)
