"""Pure functions behind the comparisons: arrays in, numbers out.

- ``effective_rank``: exp of the Shannon entropy of the normalised eigenvalues (Roy & Vetterli,
  EUSIPCO 2007); 1 for a single direction, d for d equal ones. It is the one number per run beside
  the feature spectra (a collapsed feature space has a small effective rank).
- ``compare``: mean, sample std (ddof=1) and n of two groups and whether the first leads the second
  by more than two standard deviations of each (the rule every claim verdict uses).
- ``crossings``: where the sign of a difference between two curves over budgets changes.
- ``ranking`` and ``order_flips``: methods ordered by mean, and the pairs whose order differs between
  two settings (e.g. two training lengths), each with whether either order was beyond noise;
  ``kendall_tau`` turns the number of flips into Kendall's tau."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

SIGNIFICANCE_STDS = 2.0  # a lead counts when it exceeds this many stds of both groups


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


@dataclass
class Group:
    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values) -> "Group":
        v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
        return cls(float(v.mean()) if v.size else float("nan"), float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                   int(v.size))

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        if self.n == 0:
            return "n/a"
        spread = f" ± {self.std * scale:.{digits}f}" if self.n > 1 else ""
        return f"{self.mean * scale:.{digits}f}{spread} (n={self.n})"


@dataclass
class Comparison:
    a: Group
    b: Group
    lead: float          # a.mean - b.mean
    threshold: float     # SIGNIFICANCE_STDS * max(a.std, b.std); NaN with fewer than 2 values in a group
    testable: bool       # both groups have at least 2 values

    @property
    def leads(self) -> bool:
        """a beats b by more than 2 std of both."""
        return self.testable and self.lead > self.threshold

    @property
    def trails(self) -> bool:
        return self.testable and -self.lead > self.threshold


def compare(a, b, stds: float = SIGNIFICANCE_STDS) -> Comparison:
    ga, gb = Group.of(a), Group.of(b)
    testable = ga.n >= 2 and gb.n >= 2
    threshold = stds * max(ga.std, gb.std) if testable else float("nan")
    return Comparison(ga, gb, ga.mean - gb.mean, threshold, testable)


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
    means = {k: Group.of(v).mean for k, v in values.items()}
    return sorted((k for k in means if np.isfinite(means[k])), key=lambda k: (-means[k], k))


@dataclass
class Flip:
    """``first`` ranked above ``second`` in the first setting and below it in the other."""
    first: str
    second: str
    before: Comparison   # first vs second in the first setting (lead > 0)
    after: Comparison    # second vs first in the other setting (lead > 0)

    @property
    def resolved(self) -> bool:
        """Both orders beyond noise (2 std): the ranking really changed, not just the means."""
        return self.before.leads and self.after.leads


def order_flips(before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]],
                stds: float = SIGNIFICANCE_STDS) -> list[Flip]:
    """Pairs of names present in both settings whose order by mean differs, in the first setting's
    ranking order."""
    common = set(before) & set(after)
    rank_a = [k for k in ranking(before) if k in common]
    pos_b = {k: i for i, k in enumerate(k for k in ranking(after) if k in common)}
    return [Flip(x, y, compare(before[x], before[y], stds), compare(after[y], after[x], stds))
            for x, y in combinations(rank_a, 2) if x in pos_b and y in pos_b and pos_b[x] > pos_b[y]]


def kendall_tau(n_items: int, n_flips: int) -> float:
    """Kendall's tau between two strict rankings of the same ``n_items`` that disagree on
    ``n_flips`` pairs: 1 for the same order, -1 for the reverse."""
    pairs = n_items * (n_items - 1) / 2
    return float(1 - 2 * n_flips / pairs) if pairs else float("nan")
