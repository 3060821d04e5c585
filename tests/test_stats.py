"""Paired intervals, the four verdicts and the seeds needed, on numbers whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis.stats import (CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, REPRODUCED, VERDICTS, aggregate, difference,
                            seeds_needed, seeds_to_exclude_zero, stated_position, verdict)


def pair(effect: float, noise: float = 0.002, n: int = 5, seed: int = 0):
    """Runs of a reference with a large between-seed spread (5 points) and a variant that differs
    from it by ``effect`` plus small per-seed noise: only pairing by seed can see the effect."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.80, 0.05, n)
    return pd.Series(base + effect + rng.normal(0, noise, n)), pd.Series(base)


@pytest.mark.parametrize("effect, expected", [(0.03, REPRODUCED), (0.0, INCONCLUSIVE), (-0.03, CONTRADICTED)])
def test_known_effects_get_their_verdict(effect, expected):
    a, b = pair(effect)
    d = difference(a, b)
    assert d.paired and d.n == 5
    assert verdict(d) == expected
    assert d.contains(effect)  # the interval covers the true effect


def test_pairing_by_seed_is_what_finds_the_effect():
    a, b = pair(0.03)
    assert verdict(difference(a, b)) == REPRODUCED
    # the same values under seeds that do not match: Welch's unpaired interval drowns in the 5-point spread
    unpaired = difference(a, b.set_axis(b.index + 100))
    assert not unpaired.paired and unpaired.method == "Welch t" and "unpaired" in unpaired.text()
    assert verdict(unpaired) == INCONCLUSIVE
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (unpaired.lo, unpaired.hi) == pytest.approx((ci.low, ci.high))


def test_paired_t_interval_by_hand():
    a = pd.Series([0.90, 0.93, 0.91], index=[0, 1, 2])
    b = pd.Series([0.85, 0.86, 0.88, 0.99], index=[0, 1, 2, 7])  # seed 7 has no partner: left out
    d = difference(a, b)
    diffs = np.array([0.05, 0.07, 0.03])
    half = st.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert d.n == 3 and d.mean == pytest.approx(0.05) and d.spread == pytest.approx(0.02)
    assert (d.lo, d.hi) == pytest.approx((0.05 - half, 0.05 + half))
    assert d.lo <= d.boot_lo <= d.boot_hi <= d.hi  # at 3 seeds the bootstrap is the narrower one
    assert difference(a, b) == d  # seeded bootstrap: the same numbers give the same interval


def test_one_seed_or_no_runs_is_not_testable():
    assert verdict(difference([0.9], [0.1])) == NOT_TESTABLE
    assert verdict(difference([], [0.1, 0.2])) == NOT_TESTABLE
    assert verdict(None) == NOT_TESTABLE


def test_direction_and_stated_effect():
    d = difference([0.92, 0.93, 0.94], [0.90, 0.91, 0.92])  # +2 points on every seed: interval [+2, +2]
    assert verdict(d) == REPRODUCED
    assert verdict(d, direction=-1) == CONTRADICTED
    assert verdict(d, stated=(0.046, 0.153)) == CONTRADICTED      # short of the stated +4.6..+15.3
    assert verdict(d, stated=(0.01, 0.015)) == REPRODUCED         # beyond it: a larger effect, not a contradiction
    wide = difference([0.90, 0.95, 0.86], [0.90, 0.90, 0.90])     # contains zero, reaches +13
    assert verdict(wide) == INCONCLUSIVE and verdict(wide, stated=0.05) == INCONCLUSIVE
    assert "lies inside" in stated_position(wide, 0.05)
    assert "beyond the interval" in stated_position(d, (0.046, 0.153))
    with pytest.raises(ValueError, match="direction"):
        verdict(d, direction=0)
    assert set(VERDICTS) == {REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE}


def test_seeds_needed_is_the_first_n_whose_interval_is_narrow_enough():
    spread = 0.02
    n = seeds_needed(spread, half_width=0.01)
    half = lambda k: st.t.ppf(0.975, k - 1) * spread / math.sqrt(k)  # noqa: E731
    assert half(n) <= 0.01 < half(n - 1)
    assert seeds_needed(0.0) == 2 and seeds_needed(float("nan")) is None
    k = seeds_to_exclude_zero(0.25, 0.16)  # claim 5's size: a big effect, a big spread
    assert half(k) * 0.16 / spread < 0.25 and seeds_to_exclude_zero(0.0, 0.1) is None


def test_aggregate_over_budgets_pairs_each_seed_across_them():
    a1, b1 = pair(0.03, seed=1)
    a2, b2 = pair(0.01, seed=2)
    agg = aggregate([(a1, b1), (a2.drop(4), b2)])  # seed 4 misses at the second budget: left out everywhere
    assert agg.n == 4 and agg.paired and agg.method == "aggregate over 2"
    per_seed = ((a1 - b1).loc[:3] + (a2 - b2).loc[:3]) / 2
    ci = st.ttest_1samp(per_seed, 0).confidence_interval(0.95)
    assert agg.mean == pytest.approx(per_seed.mean()) and (agg.lo, agg.hi) == pytest.approx((ci.low, ci.high))
    assert agg.boot_lo <= agg.mean <= agg.boot_hi  # rliable's stratified bootstrap
    assert verdict(agg) == REPRODUCED and "stratified bootstrap" in agg.text()
    assert aggregate([(a1, b1), (a2, b2)]) == aggregate([(a1, b1), (a2, b2)])


def test_by_seed_reads_a_mapping_by_its_seeds():
    """A dict of seed -> value pairs by seed, like a Series; list(dict) would have given its keys."""
    import pandas as pd

    from analysis.stats import by_seed, difference

    assert by_seed({0: 0.5, 2: 0.7}).to_dict() == {0: 0.5, 2: 0.7}
    d = difference({0: 0.9, 1: 0.8, 2: 0.7}, pd.Series({0: 0.8, 1: 0.7, 2: 0.6}))
    assert d.paired and d.n == 3 and abs(d.mean - 0.1) < 1e-12
