import numpy as np
import pytest
import torch

from braincl.data.base import SplitSources, TensorSource
from braincl.scenario import Scenario


def make_splits(num_classes=10, per_class=3):
    labels = np.repeat(np.arange(num_classes), per_class)
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    src = TensorSource(images, labels)
    return SplitSources(train=src, test=src, class_names=[f"c{i}" for i in range(num_classes)])


def test_seeded_class_order_matches_icarl_convention():
    sc = Scenario(make_splits(), class_order_seed=1993, initial_classes=2, increment=2)
    assert sc.class_order == np.random.RandomState(1993).permutation(10).tolist()
    assert sc.task_sizes == [2, 2, 2, 2, 2]


def test_tasks_are_disjoint_and_remapped():
    sc = Scenario(make_splits(), initial_classes=4, increment=3)
    assert sc.task_sizes == [4, 3, 3]
    seen = []
    for t in range(sc.num_tasks):
        task = sc.task(t)
        assert task.classes == sc.task_classes(t)
        assert set(task.train.labels.tolist()) == set(task.classes)
        # remapped label k is original class class_order[k]
        originals = task.train.source.targets[task.train.indices]
        assert [sc.class_order[k] for k in task.train.labels] == originals.tolist()
        seen += task.classes
    assert sorted(seen) == list(range(10))


def test_remainder_becomes_a_last_smaller_task():
    assert Scenario(make_splits(), initial_classes=3, increment=3).task_sizes == [3, 3, 3, 1]


def test_explicit_tasks_and_num_tasks():
    sc = Scenario(make_splits(), tasks=[[9, 1], [4]], shuffle_classes=False)
    assert sc.class_order == [9, 1, 4] and sc.task_sizes == [2, 1]
    assert Scenario(make_splits(), initial_classes=2, increment=2, num_tasks=3).num_classes == 6


def test_exclusion_and_errors():
    sc = Scenario(make_splits(), initial_classes=2, increment=2, exclude_classes=[0, 5])
    assert 0 not in sc.class_order and 5 not in sc.class_order and sc.num_classes == 8
    assert set(sc.held_out_test().labels.tolist()) == {0, 5}
    with pytest.raises(ValueError, match="only 10 classes"):
        Scenario(make_splits(), initial_classes=11)
    with pytest.raises(ValueError, match="0..9"):
        Scenario(make_splits(), tasks=[[0, 12]])
    with pytest.raises(ValueError, match="only 5 tasks"):
        Scenario(make_splits(), initial_classes=2, increment=2, num_tasks=6)


def test_sizes_are_checked_against_the_class_count():
    with pytest.raises(ValueError, match=r"scenario.increment=20 is more than the 8 classes left"):
        Scenario(make_splits(), initial_classes=2, increment=20)
    with pytest.raises(ValueError, match=r"scenario.increment=11 but only 10 classes"):
        Scenario(make_splits(), increment=11)
    with pytest.raises(ValueError, match=r"class\(es\) \[4\] more than once"):
        Scenario(make_splits(), tasks=[[4, 1], [4]])
    assert Scenario(make_splits(), initial_classes=10, increment=20).task_sizes == [10]  # nothing left to split
