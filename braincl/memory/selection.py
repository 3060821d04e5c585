"""Which samples of a class to keep, in priority order (first = keep first).

- ``herding`` follows iCaRL (Rebuffi et al., 2017, Alg. 4): greedily add the sample that keeps the
  running mean of the chosen features closest to the class mean.
- ``closest_to_mean``: the samples whose features lie nearest the class mean (BrainCL's sleep
  selection).
- ``random``: a seeded permutation.
All take L2-normalised features, as iCaRL does."""

from __future__ import annotations

import numpy as np


def _normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def herding(features: np.ndarray, m: int) -> np.ndarray:
    feats = _normalise(features)
    mu = feats.mean(axis=0)
    chosen: list[int] = []
    running = np.zeros_like(mu)
    available = np.ones(len(feats), dtype=bool)
    for k in range(1, min(m, len(feats)) + 1):
        candidates = (running + feats) / k  # running mean if each sample were added
        dist = np.linalg.norm(mu[None, :] - candidates, axis=1)
        dist[~available] = np.inf
        i = int(np.argmin(dist))
        chosen.append(i)
        available[i] = False
        running += feats[i]
    return np.asarray(chosen, dtype=np.int64)


def closest_to_mean(features: np.ndarray, m: int) -> np.ndarray:
    feats = _normalise(features)
    dist = np.linalg.norm(feats - feats.mean(axis=0, keepdims=True), axis=1)
    return np.argsort(dist, kind="stable")[:m].astype(np.int64)


def random_selection(features: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(len(features))[:m].astype(np.int64)


SELECTORS = {"herding": herding, "closest_to_mean": closest_to_mean, "random": random_selection}


def select(strategy: str, features: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    if strategy not in SELECTORS:
        raise ValueError(f"unknown selection {strategy!r}; valid: {', '.join(SELECTORS)}")
    if strategy == "random":
        return random_selection(features, m, seed)
    return SELECTORS[strategy](features, m)
