"""Which K architectures to measure on a new device.

The K samples are the only information about the new device, so they should
span the ways devices disagree. Each candidate is represented by its
standardized log latencies on the source devices (one coordinate per device);
**farthest-point sampling** in that space (the default) starts at a seeded
random candidate and repeatedly adds the candidate farthest from those chosen.
It picks the fastest and slowest networks and the ones whose relative speed
differs most between devices (e.g. GPU-friendly vs CPU-friendly), which is
what a combination of source devices needs to be identified from K points;
the benchmark compares it with random choice (see docs/predictors.md).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError
from predictors.transfer.sources import standardized_log

SELECTION_METHODS = ("farthest", "kmeans++", "quantile", "random")


def suggest_samples(
    k: int,
    source_latency_matrix: Any,
    seed: int = 0,
    *,
    pool: Sequence[int] | None = None,
    method: str = "farthest",
) -> np.ndarray:
    """Row indices (into ``source_latency_matrix``, shape (n_archs, n_devices), ms) of K architectures to measure.

    ``pool`` restricts the candidates to those rows (e.g. the networks one is able to measure).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if method not in SELECTION_METHODS:
        raise ConfigError(f"unknown selection method {method!r}; known: {', '.join(SELECTION_METHODS)}")
    lat = np.asarray(source_latency_matrix, dtype=np.float64)
    if lat.ndim != 2 or lat.shape[1] < 1:
        raise DataError(f"expected a source latency matrix of shape (n_archs, n_devices), got {lat.shape}")
    if not (np.all(np.isfinite(lat)) and np.all(lat > 0)):
        raise DataError("source latencies must be finite and positive")
    candidates = np.arange(lat.shape[0]) if pool is None else np.asarray(pool, dtype=np.int64)
    if candidates.ndim != 1 or (candidates.size and (candidates.min() < 0 or candidates.max() >= lat.shape[0])):
        raise DataError(f"pool indices must lie in 0..{lat.shape[0] - 1}")
    candidates = np.unique(candidates)
    if k > candidates.size:
        raise DataError(f"cannot choose {k} architectures from {candidates.size} candidates")
    rng = np.random.default_rng(seed)
    if method == "random":
        return np.sort(rng.choice(candidates, size=k, replace=False))
    z = standardized_log(lat[candidates])
    if method == "quantile":
        order = np.argsort(z.mean(axis=1), kind="stable")
        # One candidate at the centre of each of k equal-count strata of mean speed.
        positions = ((np.arange(k) + 0.5) / k * candidates.size).astype(np.int64)
        return np.sort(candidates[order[positions]])
    chosen = [int(rng.integers(candidates.size))]
    dist2 = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    for _ in range(k - 1):
        dist2[chosen] = 0.0
        if method == "farthest" or dist2.sum() <= 0:
            nxt = int(np.argmax(dist2)) if dist2.max() > 0 else _first_unchosen(candidates.size, chosen)
        else:  # kmeans++: sample proportionally to the squared distance
            nxt = int(rng.choice(candidates.size, p=dist2 / dist2.sum()))
        chosen.append(nxt)
        dist2 = np.minimum(dist2, np.sum((z - z[nxt]) ** 2, axis=1))
    return np.sort(candidates[chosen])


def _first_unchosen(n: int, chosen: list[int]) -> int:
    taken = set(chosen)
    return next(i for i in range(n) if i not in taken)
