"""Pure functions behind the comparisons: arrays in, numbers out.

- ``effective_rank``: exp of the Shannon entropy of the normalised eigenvalues (Roy & Vetterli,
  EUSIPCO 2007); 1 for a single direction, d for d equal ones. It is the one number per run beside
  the feature spectra (a collapsed feature space has a small effective rank).
- ``compare``: mean, sample std (ddof=1) and n of two groups and whether the first leads the second
  by more than two standard deviations of each (the rule every claim verdict uses).
- ``crossings``: where the sign of a difference between two curves over budgets changes."""

from __future__ import annotations

from dataclasses import dataclass

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
