"""Latency estimators: one number per measured model from its raw samples.

Timing noise on a shared host is additive and positive (preemption, cache
pollution by neighbours, frequency dips): a slow sample says something else
ran, a fast one cannot be faster than the work. So beside the median, low
quantiles and the minimum are candidates (Chen & Revels, "Robust benchmarking
in noisy environments", arXiv 1608.04295). What remains after them is the
host's speed shifting between minutes and processes; a *paired* estimator
divides each visit of a model by the calibration models' visits in the same
round (they were timed seconds apart), takes the median of those ratios over
the rounds, and scales it back to milliseconds by the calibration models'
pooled estimate of the same group (``paired_<q>``).

Every estimate is computed for every measurement and stored
(``Measurement.estimates``); ``PRIMARY`` is the one ``latency_ms`` means —
chosen by the side-by-side benchmark in ``benchmarks/profiling.py`` on a quiet
and a loaded host: the pooled minimum (see docs/profiling.md for the evidence;
pairing and per-group calibration added the calibration networks' own noise
and did worse on both hosts).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

# Pooled-sample estimators: name -> quantile (0 = the minimum).
QUANTILES: Mapping[str, float] = {"median": 0.5, "p25": 0.25, "p10": 0.10, "min": 0.0}
PAIRED_PREFIX = "paired_"  # paired_<name>: per-round ratio to the calibration models, of the <name> of each visit
REFERENCE_PREFIX = "reference_"  # reference_<name>: the calibration models' level in <name> (not a latency of the model)
PRIMARY = "min"  # chosen by benchmarks/profiling.py on a quiet and a loaded host (docs/profiling.md)
STOP_QUANTILE = 0.10  # the stopping rule tracks the CI of this low quantile: the lower tail the minimum belongs to


def quantile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``samples`` (linear interpolation; q = 0 is the minimum)."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    return float(np.min(x)) if q <= 0 else float(np.quantile(x, q))


def split_visits(samples: Sequence[float], visit_sizes: Sequence[int]) -> list[np.ndarray]:
    """The samples of each visit, in order (one visit holding everything when sizes are absent or inconsistent)."""
    x = np.asarray(samples, dtype=float)
    if not visit_sizes or sum(visit_sizes) != x.size or any(s <= 0 for s in visit_sizes):
        return [x]
    return np.split(x, np.cumsum(visit_sizes)[:-1])


def pooled_estimates(samples: Sequence[float]) -> dict[str, float]:
    """Every pooled-sample estimator of one model."""
    x = np.asarray(samples, dtype=float)
    return {name: quantile(x, q) for name, q in QUANTILES.items()}


def visit_values(samples: Sequence[float], visit_sizes: Sequence[int], q: float) -> list[float]:
    """The ``q`` quantile of each visit."""
    return [quantile(v, q) for v in split_visits(samples, visit_sizes)]


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def paired_ratio(model: Sequence[float], references: Sequence[Sequence[float]]) -> float | None:
    """Median over rounds of ``model[r] / geomean(references[.][r])``; None without a common round.

    ``model`` and each reference hold one value per visit; visit r of every
    model of a group happens in round r, so the pairs were timed seconds apart.
    A model that stopped early has fewer visits: only common rounds count.
    """
    rounds = min([len(model), *(len(r) for r in references)]) if references else 0
    if rounds == 0:
        return None
    ratios = [model[r] / geometric_mean([ref[r] for ref in references]) for r in range(rounds)]
    return float(np.median(ratios))


def group_estimates(
    samples: Sequence[Sequence[float]],
    visit_sizes: Sequence[Sequence[int]],
    references: Sequence[int],
) -> tuple[list[dict[str, float]], dict[str, float] | None]:
    """Every estimate of every model of one interleaved group, and the calibration level per estimator.

    ``references`` are the positions of the calibration models in the group
    (empty: no paired estimates). The level is the geometric mean of the
    calibration models' pooled estimates: the paired estimates are ratios to
    it, in milliseconds of this group's machine state; each model's estimates
    also record it (``reference_<name>``), so any estimator can be calibrated later.
    """
    pooled = [pooled_estimates(s) for s in samples]
    if not references:
        return pooled, None
    level = {name: geometric_mean([pooled[i][name] for i in references]) for name in QUANTILES}
    # the calibration models' per-visit values, once per estimator (every model of the group is paired with them)
    ref_visits = {q: [visit_values(samples[i], visit_sizes[i], q) for i in references] for q in QUANTILES.values()}
    out = []
    for s, sizes, est in zip(samples, visit_sizes, pooled):
        est = dict(est)
        for name, q in QUANTILES.items():
            ratio = paired_ratio(visit_values(s, sizes, q), ref_visits[q])
            if ratio is not None:
                est[PAIRED_PREFIX + name] = ratio * level[name]
            est[REFERENCE_PREFIX + name] = level[name]
        out.append(est)
    return out, level


def primary_of(estimates: Mapping[str, float]) -> str:
    """The estimator ``latency_ms`` uses for a measurement with these estimates (the median when none was computed)."""
    return PRIMARY if PRIMARY in estimates else "median"


def reference_of(estimator: str, level: Mapping[str, float] | None) -> float | None:
    """The calibration models' level in ``estimator`` (a pooled one), stored as the row's ``reference_ms``."""
    return None if level is None else level.get(estimator)


__all__ = [
    "PAIRED_PREFIX",
    "STOP_QUANTILE",
    "REFERENCE_PREFIX",
    "PRIMARY",
    "QUANTILES",
    "geometric_mean",
    "group_estimates",
    "paired_ratio",
    "pooled_estimates",
    "primary_of",
    "reference_of",
    "quantile",
    "split_visits",
    "visit_values",
]
