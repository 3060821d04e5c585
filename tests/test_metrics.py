"""Metric functions against matrices computed by hand (PROTOCOLS.md definitions)."""

import math

import numpy as np
import pytest

from braincl import metrics

NAN = float("nan")
# R[t, j]: accuracy on task j after task t. Three tasks; counts 100, 50, 50.
R = np.array([
    [0.90, NAN, NAN],
    [0.60, 0.80, NAN],
    [0.50, 0.70, 0.95],
])
COUNTS = [100, 50, 50]


def test_accuracy_per_step_task_weighted():
    # A_0 = .9; A_1 = (.6 + .8)/2 = .7; A_2 = (.5 + .7 + .95)/3 = .716666...
    assert metrics.accuracy_per_step(R, weighting="task") == pytest.approx([0.9, 0.7, 2.15 / 3])


def test_accuracy_per_step_sample_weighted():
    # A_1 = (.6*100 + .8*50)/150 = 100/150; A_2 = (50 + 35 + 47.5)/200 = .6625
    assert metrics.accuracy_per_step(R, COUNTS, "sample") == pytest.approx([0.9, 100 / 150, 0.6625])


def test_average_and_last():
    assert metrics.average_incremental_accuracy(R, COUNTS, "sample") == pytest.approx((0.9 + 100 / 150 + 0.6625) / 3)
    assert metrics.average_incremental_accuracy(R, weighting="task") == pytest.approx((0.9 + 0.7 + 2.15 / 3) / 3)
    assert metrics.last_accuracy(R, COUNTS, "sample") == pytest.approx(0.6625)
    assert metrics.last_accuracy(R, weighting="task") == pytest.approx(2.15 / 3)


def test_forgetting_uses_max_over_previous_rows_only():
    # task 0: max(.9, .6) - .5 = .4 ; task 1: max(.8) - .7 = .1 -> mean .25
    assert metrics.forgetting(R) == pytest.approx(0.25)
    # the last row never counts towards the max (off-by-one guard): a big last value must not
    # create negative forgetting from a max that includes row T-1
    R2 = np.array([[0.5, NAN], [0.9, 0.9]])
    assert metrics.forgetting(R2) == pytest.approx(0.5 - 0.9)


def test_forgetting_takes_the_best_earlier_accuracy_not_the_first():
    R3 = np.array([[0.4, NAN, NAN], [0.8, 0.9, NAN], [0.3, 0.9, 0.9]])
    # task 0: max(.4, .8) - .3 = .5 ; task 1: .9 - .9 = 0
    assert metrics.forgetting(R3) == pytest.approx(0.25)


def test_bwt():
    # (.5 - .9 + .7 - .8) / 2 = -.25
    assert metrics.backward_transfer(R) == pytest.approx(-0.25)


def test_single_task_has_no_forgetting():
    assert metrics.forgetting([[0.7]]) == 0.0 and metrics.backward_transfer([[0.7]]) == 0.0


def test_weightings_agree_on_balanced_test_sets():
    assert metrics.average_incremental_accuracy(R, [10, 10, 10], "sample") == pytest.approx(
        metrics.average_incremental_accuracy(R, weighting="task"))


def test_bad_inputs():
    with pytest.raises(ValueError):
        metrics.accuracy_per_step(np.zeros((2, 3)), weighting="task")
    with pytest.raises(ValueError):
        metrics.accuracy_per_step(R, weighting="sample")  # counts missing
    with pytest.raises(ValueError):
        metrics.accuracy_per_step(R, COUNTS, weighting="macro")


def test_feature_spectrum_is_normalised_and_sorted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * np.array([3.0, 1.0, 0.1])
    spec = metrics.feature_spectrum(X)
    assert math.isclose(sum(spec), 1.0, rel_tol=1e-9)
    assert spec == sorted(spec, reverse=True)
    assert spec[0] == pytest.approx(9 / 10.01, rel=0.1)
