"""Pure functions behind the comparisons: numbers in, numbers out. Every interval comes from a
kept library (``scipy.stats`` for t intervals and the bootstrap over seeds, ``rliable`` for the
stratified bootstrap of an aggregate over budgets or data sets); nothing here hand-rolls a rule.

- ``effective_rank``: exp of the Shannon entropy of the normalised eigenvalues (Roy & Vetterli,
  EUSIPCO 2007); 1 for a single direction, d for d equal ones. It is the one number per run beside
  the feature spectra (a collapsed feature space has a small effective rank).
- ``difference``: the mean difference a - b of two groups of runs with its 95% confidence interval.
  Runs pair by seed (a seed fixes the initialisation and the data order of every method, and the
  class order is the same for all): with at least two shared seeds the interval is the paired t
  interval of the per-seed differences (``scipy.stats.ttest_rel``), beside a percentile bootstrap
  over seeds (``scipy.stats.bootstrap``); without shared seeds, Welch's unpaired interval
  (``scipy.stats.ttest_ind(equal_var=False)``), marked unpaired.
- ``aggregate``: the mean over several places (budgets, data sets) of paired differences: a t
  interval over the seeds shared by every place (each seed's mean over places is one value) and
  ``rliable``'s stratified bootstrap interval (runs resampled within each place).
- ``verdict``: the four verdicts every claim uses (defined there, once); ``seeds_needed`` and
  ``seeds_to_exclude_zero``: how many seeds would settle an inconclusive one.
- ``crossings``: where the sign of a difference between two curves over budgets changes.
- ``ranking`` and ``order_flips``: methods ordered by mean, and the pairs whose order differs between
  two settings (e.g. two training lengths), each with its paired interval in both settings;
  ``kendall_tau`` turns the number of flips into Kendall's tau.

Groups of runs are ``pandas.Series`` of one value per run indexed by seed; a plain sequence is read
as the values of seeds 0, 1, 2, ..."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as st

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999   # scipy.stats.bootstrap's default
RLIABLE_REPS = 2000          # rliable's guidance: 2,000 or more; its default of 50,000 costs seconds per interval
RNG_SEED = 0                 # bootstraps are seeded: the same records give the same intervals
SEEDS_NEEDED_LIMIT = 100_000

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE = "reproduced", "contradicted", "inconclusive", "not testable here"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)


def effective_rank(eigenvalues) -> float:
    v = np.asarray([x for x in eigenvalues if x is not None], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return float("nan")
    p = v / v.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def top_k_share(eigenvalues, k: int = 5) -> float:
    v = np.sort(np.asarray([x for x in eigenvalues if x is not None], dtype=float))[::-1]
    v = v[np.isfinite(v) & (v >= 0)]
    return float(v[:k].sum() / v.sum()) if v.size and v.sum() > 0 else float("nan")


def by_seed(values) -> pd.Series:
    """One finite value per seed: a Series or a mapping indexed by seed as given, a sequence as seeds
    0, 1, ... (a mapping is not a sequence: ``list(dict)`` would be its seeds, not its values)."""
    if isinstance(values, pd.Series):
        s = values.copy()
    elif isinstance(values, Mapping):
        s = pd.Series(dict(values), dtype=float)
    else:
        s = pd.Series(list(values), dtype=float)
    s = pd.to_numeric(s, errors="coerce").astype(float)
    return s[np.isfinite(s)]


@contextlib.contextmanager
def _quiet():
    """scipy warns about precision loss when the differences are nearly equal; the interval is
    still right, so the warning only adds noise to the analysis log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _t_interval(d: np.ndarray, confidence: float) -> tuple[float, float]:
    if d.size < 2:
        return float("nan"), float("nan")
    if np.ptp(d) == 0:  # every seed gives the same difference: the interval is that value
        return float(d[0]), float(d[0])
    with _quiet():
        ci = st.ttest_1samp(d, 0.0).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def _bootstrap_interval(samples: tuple, statistic, confidence: float) -> tuple[float, float]:
    if min(len(s) for s in samples) < 2:
        return float("nan"), float("nan")
    if all(np.ptp(s) == 0 for s in samples):
        v = float(statistic(*samples, axis=-1))
        return v, v
    with _quiet():
        res = st.bootstrap(samples, statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=confidence,
                           method="percentile", rng=np.random.default_rng(RNG_SEED), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _signed(x: float, digits: int) -> str:
    """'+1.2', '-0.3', and '0.0' rather than '-0.0'."""
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


@dataclass(frozen=True)
class Difference:
    """a - b with its 95% interval. ``paired``: per-seed differences over the ``n`` shared seeds
    (``spread`` is their sample std); unpaired: Welch (``spread`` is sqrt(var_a + var_b), the std
    of a difference of one run of each). ``lo``/``hi`` is the t interval the verdict uses;
    ``boot_lo``/``boot_hi`` the bootstrap interval shown beside it (at 3 seeds a bootstrap cannot
    see beyond the observed values, so it is narrower than the t interval and is not used to
    decide)."""
    mean: float
    lo: float
    hi: float
    boot_lo: float
    boot_hi: float
    n: int
    spread: float
    paired: bool
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    method: str = "paired t"
    confidence: float = CONFIDENCE

    @property
    def testable(self) -> bool:
        return self.n >= 2 and bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    def contains(self, x: float) -> bool:
        return self.testable and self.lo <= x <= self.hi

    def text(self, scale: float = 100.0, unit: str = "pp", digits: int = 1) -> str:
        """'+5.7 pp [95% CI -18.6, +30.0; bootstrap +1.2, +9.8] (paired by seed, n=3)'."""
        if self.n == 0 or not np.isfinite(self.mean):
            return "no runs to compare"
        u = f" {unit}" if unit else ""
        head = f"{_signed(self.mean * scale, digits)}{u}"
        how = f"paired by seed, n={self.n}" if self.paired else f"unpaired (no shared seed): Welch, n={self.n_a}+{self.n_b}"
        if not self.testable:
            return f"{head} ({how}: fewer than 2 seeds, no interval)"
        ci = f"{self.confidence:.0%} CI {_signed(self.lo * scale, digits)}, {_signed(self.hi * scale, digits)}"
        boot_name = "stratified bootstrap" if self.method.startswith("aggregate") else "bootstrap"
        boot = (f"; {boot_name} {_signed(self.boot_lo * scale, digits)}, {_signed(self.boot_hi * scale, digits)}"
                if np.isfinite(self.boot_lo) else "")
        return f"{head} [{ci}{boot}] ({how})"


def difference(a, b, confidence: float = CONFIDENCE) -> Difference:
    """a - b, paired by seed where at least two seeds are shared, else Welch (see the module)."""
    a, b = by_seed(a), by_seed(b)
    shared = a.index.intersection(b.index)
    if len(shared) >= 2 or (len(shared) == 1 and (len(a) < 2 or len(b) < 2)):
        d = (a.loc[shared] - b.loc[shared]).to_numpy()
        lo, hi = _t_interval(d, confidence)
        blo, bhi = _bootstrap_interval((d,), np.mean, confidence)
        return Difference(float(d.mean()), lo, hi, blo, bhi, int(d.size),
                          float(d.std(ddof=1)) if d.size > 1 else float("nan"), True,
                          float(a.loc[shared].mean()), float(b.loc[shared].mean()), len(shared), len(shared),
                          "paired t", confidence)
    x, y = a.to_numpy(), b.to_numpy()
    mean = float(x.mean() - y.mean()) if x.size and y.size else float("nan")
    spread = float(np.sqrt(x.var(ddof=1) + y.var(ddof=1))) if x.size > 1 and y.size > 1 else float("nan")
    if x.size < 2 or y.size < 2:
        lo = hi = blo = bhi = float("nan")
    elif np.ptp(x) == 0 and np.ptp(y) == 0:
        lo = hi = blo = bhi = mean
    else:
        with _quiet():
            ci = st.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
        lo, hi = float(ci.low), float(ci.high)
        blo, bhi = _bootstrap_interval((x, y), lambda u, v, axis=-1: u.mean(axis) - v.mean(axis), confidence)
    return Difference(mean, lo, hi, blo, bhi, min(x.size, y.size), spread, False,
                      float(x.mean()) if x.size else float("nan"), float(y.mean()) if y.size else float("nan"),
                      int(x.size), int(y.size), "Welch t", confidence)


def aggregate(places: Sequence[tuple], confidence: float = CONFIDENCE) -> Difference:
    """The mean over places (budgets, data sets) of the paired differences a - b, from
    ``places`` = [(a, b), ...]. Only the seeds every place shares enter, so each of them gives one
    value (its mean difference over the places): the t interval is over those seeds; the bootstrap
    interval is ``rliable.library.get_interval_estimates`` on the per-place differences (runs
    resampled within each place, the stratified bootstrap of Agarwal et al., NeurIPS 2021)."""
    from numpy.random import RandomState
    from rliable import library as rly

    pairs = [(by_seed(a), by_seed(b)) for a, b in places]
    if not pairs:
        return Difference(*[float("nan")] * 5, 0, float("nan"), True, float("nan"), float("nan"), 0, 0,
                          "aggregate", confidence)
    seeds = pairs[0][0].index
    for a, b in pairs:
        seeds = seeds.intersection(a.index).intersection(b.index)
    seeds = seeds.sort_values()
    if len(seeds) == 0:
        return Difference(*[float("nan")] * 5, 0, float("nan"), True, float("nan"), float("nan"), 0, 0,
                          "aggregate", confidence)
    per_place = np.stack([(a.loc[seeds] - b.loc[seeds]).to_numpy() for a, b in pairs], axis=1)  # seeds x places
    per_seed = per_place.mean(axis=1)
    lo, hi = _t_interval(per_seed, confidence)
    blo = bhi = float("nan")
    if len(seeds) >= 2:
        if np.ptp(per_place, axis=0).max() == 0:
            blo = bhi = float(per_seed.mean())
        else:
            func = lambda x: np.array([np.mean(x)])  # noqa: E731  (equal seeds per place: mean of place means)
            # rliable 1.2's StratifiedBootstrap draws its indices from numpy's global generator
            # (np.random.choice), whatever random_state says: seed it for this call, then put it back.
            state = np.random.get_state()
            np.random.seed(RNG_SEED)
            try:
                with warnings.catch_warnings():  # arch, under rliable, deprecates the RandomState it is given
                    warnings.simplefilter("ignore", FutureWarning)
                    _, ci = rly.get_interval_estimates({"d": per_place}, func, reps=RLIABLE_REPS,
                                                       confidence_interval_size=confidence,
                                                       random_state=RandomState(RNG_SEED))
            finally:
                np.random.set_state(state)
            blo, bhi = float(ci["d"][0][0]), float(ci["d"][1][0])
    mean_a = float(np.mean([a.loc[seeds].mean() for a, _ in pairs]))
    mean_b = float(np.mean([b.loc[seeds].mean() for _, b in pairs]))
    return Difference(float(per_seed.mean()), lo, hi, blo, bhi, len(seeds),
                      float(per_seed.std(ddof=1)) if len(seeds) > 1 else float("nan"), True, mean_a, mean_b,
                      len(seeds), len(seeds), f"aggregate over {len(pairs)}", confidence)


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n): the one-sample t interval of a group's mean (NaN bounds below 2 values)."""
    v = by_seed(values).to_numpy()
    lo, hi = _t_interval(v, confidence)
    return (float(v.mean()) if v.size else float("nan")), lo, hi, int(v.size)


def _stated_range(stated) -> tuple[float, float] | None:
    """A stated effect as (low, high) magnitudes in the paper's direction."""
    if stated is None:
        return None
    lo, hi = (stated, stated) if np.isscalar(stated) else stated
    lo, hi = sorted((abs(float(lo)), abs(float(hi))))
    return lo, hi


def verdict(diff: Difference | None, direction: int = 1, stated=None) -> str:
    """The verdict of a claim from the 95% interval of its difference (``diff.lo``, ``diff.hi``),
    where ``direction`` (+1 or -1) is the sign the paper predicts for the difference and
    ``stated`` the size of the effect the paper states, if it states one (a number or a
    (low, high) range of magnitudes, counted in the paper's direction):

    - **not testable here**: there is no interval: no runs, or fewer than two seeds;
    - **contradicted**: the interval excludes zero on the side opposite to the paper's, or it lies
      entirely short of the paper's stated effect (below its low end, counted in the paper's
      direction; an interval beyond the high end is a larger effect than stated and does not
      contradict the claim);
    - **reproduced**: the interval excludes zero on the paper's side (and is not short of ``stated``);
    - **inconclusive**: the interval contains zero (``seeds_needed`` says how many seeds would
      narrow it to +-1 point, ``seeds_to_exclude_zero`` how many would settle it if the observed
      mean and spread held).

    These four words are the only verdicts the claims table uses."""
    if direction not in (1, -1):
        raise ValueError(f"verdict: direction must be +1 or -1, not {direction!r}")
    if diff is None or not diff.testable:
        return NOT_TESTABLE
    lo, hi = sorted((diff.lo * direction, diff.hi * direction))  # positive = as the paper says
    rng = _stated_range(stated)
    if hi < 0 or (rng is not None and hi < rng[0]):
        return CONTRADICTED
    if lo > 0:
        return REPRODUCED
    return INCONCLUSIVE


def stated_position(diff: Difference, stated, direction: int = 1, scale: float = 100.0, unit: str = "pp") -> str:
    """Whether the paper's stated effect lies inside the interval, in words."""
    lo_s, hi_s = _stated_range(stated)
    u = f" {unit}" if unit else ""
    label = f"{lo_s * direction * scale:+.1f}{u}" if lo_s == hi_s else \
        f"{lo_s * direction * scale:+.1f} to {hi_s * direction * scale:+.1f}{u}"
    if not diff.testable:
        return f"the paper's {label}: no interval to place it in"
    lo, hi = sorted((diff.lo * direction, diff.hi * direction))
    if hi < lo_s:
        return f"the paper's {label} lies beyond the interval (a larger effect than measured)"
    if lo > hi_s:
        return f"the paper's {label} lies short of the interval (a smaller effect than measured)"
    return f"the paper's {label} {'lies inside' if lo_s == hi_s else 'overlaps'} the interval"


def _t_half_width(n: int, spread: float, confidence: float) -> float:
    return float(st.t.ppf((1 + confidence) / 2, n - 1) * spread / math.sqrt(n))


def seeds_needed(spread: float, half_width: float = 0.01, confidence: float = CONFIDENCE) -> int | None:
    """The fewest seeds whose paired t interval has a half-width of at most ``half_width`` (1 point
    of accuracy by default) if the per-seed differences keep the observed sample std ``spread``.
    None when ``spread`` is unknown, or more than ``SEEDS_NEEDED_LIMIT`` would be needed."""
    if spread is None or not np.isfinite(spread):
        return None
    if spread == 0:
        return 2
    for n in range(2, SEEDS_NEEDED_LIMIT + 1):
        if _t_half_width(n, spread, confidence) <= half_width:
            return n
    return None


def seeds_to_exclude_zero(mean: float, spread: float, confidence: float = CONFIDENCE) -> int | None:
    """The fewest seeds whose t interval would exclude zero if the mean difference and its spread
    stayed as observed (a planning figure, not a promise); None for a zero mean or unknown spread."""
    if not (np.isfinite(mean) and np.isfinite(spread)) or mean == 0:
        return None
    return seeds_needed(spread, abs(mean) * (1 - 1e-9), confidence)


def crossings(budgets, diff) -> list[tuple[float, float, float]]:
    """Budget intervals (lo, hi, budget at the linear interpolation of the zero on a log-budget axis)
    where ``diff`` (one value per ascending budget) changes sign. Exact zeros count as a crossing at
    that budget."""
    b = np.asarray(budgets, dtype=float)
    d = np.asarray(diff, dtype=float)
    order = np.argsort(b)
    b, d = b[order], d[order]
    out = []
    for i in range(len(b) - 1):
        if not (np.isfinite(d[i]) and np.isfinite(d[i + 1])):
            continue
        if d[i] == 0:
            out.append((b[i], b[i], b[i]))
        elif d[i] * d[i + 1] < 0:
            lb, hb = np.log(b[i]), np.log(b[i + 1])
            x = lb + (hb - lb) * d[i] / (d[i] - d[i + 1])
            out.append((b[i], b[i + 1], float(np.exp(x))))
    return out


def ranking(values: Mapping[str, Sequence[float]]) -> list[str]:
    """Names ordered by mean value, best first; equal means keep alphabetical order, so the
    ranking of the same numbers is always the same."""
    means = {k: float(by_seed(v).mean()) if len(by_seed(v)) else float("nan") for k, v in values.items()}
    return sorted((k for k in means if np.isfinite(means[k])), key=lambda k: (-means[k], k))


@dataclass
class Flip:
    """``first`` ranked above ``second`` in the first setting and below it in the other."""
    first: str
    second: str
    before: Difference   # first - second in the first setting (mean > 0)
    after: Difference    # second - first in the other setting (mean > 0)

    @property
    def resolved(self) -> bool:
        """Both orders beyond noise: each setting's paired interval excludes zero on its side, so
        the ranking really changed, not just the means."""
        return verdict(self.before) == REPRODUCED and verdict(self.after) == REPRODUCED


def order_flips(before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]]) -> list[Flip]:
    """Pairs of names present in both settings whose order by mean differs, in the first setting's
    ranking order; each with its paired interval (by seed) in both settings."""
    common = set(before) & set(after)
    rank_a = [k for k in ranking(before) if k in common]
    pos_b = {k: i for i, k in enumerate(k for k in ranking(after) if k in common)}
    return [Flip(x, y, difference(before[x], before[y]), difference(after[y], after[x]))
            for x, y in combinations(rank_a, 2) if x in pos_b and y in pos_b and pos_b[x] > pos_b[y]]


def kendall_tau(n_items: int, n_flips: int) -> float:
    """Kendall's tau between two strict rankings of the same ``n_items`` that disagree on
    ``n_flips`` pairs: 1 for the same order, -1 for the reverse."""
    pairs = n_items * (n_items - 1) / 2
    return float(1 - 2 * n_flips / pairs) if pairs else float("nan")
