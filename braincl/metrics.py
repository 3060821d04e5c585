"""Pure metric functions over the accuracy matrix (PROTOCOLS: Chaudhry et al. 2018; Lopez-Paz &
Ranzato 2017). ``R[t, j]`` is the accuracy on task j's test set after training task t (0-based),
``counts[j]`` the number of test samples of task j. Entries with j > t are ignored (may be NaN).

Sample-weighted A_t pools all seen test samples; task-weighted A_t is the mean of R[t, :t+1].
They agree on balanced test sets and differ on imbalanced ones such as MedMNIST."""

from __future__ import annotations

import numpy as np


def _matrix(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {R.shape}")
    return R


def accuracy_per_step(R, counts=None, weighting: str = "sample") -> np.ndarray:
    """A_t for t = 0..T-1."""
    R = _matrix(R)
    T = R.shape[0]
    if weighting == "task":
        return np.array([R[t, : t + 1].mean() for t in range(T)])
    if weighting != "sample":
        raise ValueError(f"weighting must be 'sample' or 'task', not {weighting!r}")
    if counts is None:
        raise ValueError("sample-weighted accuracy needs the per-task test counts")
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (T,):
        raise ValueError(f"counts must have length {T}, got {counts.shape}")
    return np.array([(R[t, : t + 1] * counts[: t + 1]).sum() / counts[: t + 1].sum() for t in range(T)])


def average_incremental_accuracy(R, counts=None, weighting: str = "sample") -> float:
    return float(accuracy_per_step(R, counts, weighting).mean())


def last_accuracy(R, counts=None, weighting: str = "sample") -> float:
    return float(accuracy_per_step(R, counts, weighting)[-1])


def forgetting(R) -> float:
    """Mean over j < T-1 of max_{l in [j, T-2]} R[l, j] - R[T-1, j]. Zero for a single task."""
    R = _matrix(R)
    T = R.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([R[j : T - 1, j].max() - R[T - 1, j] for j in range(T - 1)]))


def backward_transfer(R) -> float:
    """Mean over j < T-1 of R[T-1, j] - R[j, j]. Negative values mean forgetting."""
    R = _matrix(R)
    T = R.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([R[T - 1, j] - R[j, j] for j in range(T - 1)]))


def summarize(R, counts) -> dict:
    """Every headline number of one accuracy matrix, in [0, 1]."""
    return {
        "avg_acc_sample": average_incremental_accuracy(R, counts, "sample"),
        "avg_acc_task": average_incremental_accuracy(R, counts, "task"),
        "last_acc_sample": last_accuracy(R, counts, "sample"),
        "last_acc_task": last_accuracy(R, counts, "task"),
        "acc_per_step_sample": accuracy_per_step(R, counts, "sample").tolist(),
        "acc_per_step_task": accuracy_per_step(R, counts, "task").tolist(),
        "forgetting": forgetting(R),
        "bwt": backward_transfer(R),
    }


def feature_spectrum(features, top_k: int | None = None) -> list[float]:
    """Eigenvalues of the feature covariance, descending, normalised to sum to 1."""
    X = np.asarray(features, dtype=np.float64)
    X = X - X.mean(axis=0, keepdims=True)
    cov = X.T @ X / max(1, len(X) - 1)
    eig = np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)
    total = eig.sum()
    eig = eig / total if total > 0 else eig
    return eig[:top_k].tolist() if top_k else eig.tolist()
