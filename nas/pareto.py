"""Pareto dominance, non-dominated sorting and hypervolume, with the conventions made explicit.

Conventions:
- Every function takes ``points`` of shape (n, m) and ``senses``: one ``"min"``
  or ``"max"`` per objective (default: all ``"min"``). Internally everything is
  turned into minimisation by negating the ``"max"`` columns.
- Hypervolume is measured in the minimisation frame against a reference point
  that every counted point must strictly dominate; points that do not dominate
  the reference contribute nothing.
- MODNAS normalisation (Sukthanker et al., arXiv 2402.18213): error
  (= 100 - accuracy %) and cost are each scaled to [0, 1] with per-objective
  ``lower``/``upper`` bounds (for a tabular benchmark: the minimum and maximum
  over the whole space on that device), and the hypervolume is taken against
  the reference point [1, 1]. ``modnas_hypervolume`` does exactly that.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError

SENSES = ("min", "max")


def _as_points(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        return arr.reshape(0, 0)
    if arr.ndim != 2:
        raise DataError(f"expected points of shape (n, m), got shape {arr.shape}")
    if np.isnan(arr).any():
        raise DataError("points contain NaN; expected numbers (use inf for 'infinitely bad')")
    return arr


def to_minimization(points: np.ndarray | Sequence[Sequence[float]], senses: Sequence[str] | None = None) -> np.ndarray:
    """A copy of ``points`` with every ``"max"`` column negated."""
    arr = _as_points(points).copy()
    if senses is None:
        return arr
    senses = list(senses)
    if arr.shape[0] and len(senses) != arr.shape[1]:
        raise ConfigError(f"got {len(senses)} senses for {arr.shape[1]} objectives; expected one 'min'/'max' each")
    for j, s in enumerate(senses):
        if s not in SENSES:
            raise ConfigError(f"sense {s!r} for objective {j}; expected 'min' or 'max'")
        if s == "max" and arr.shape[0]:
            arr[:, j] = -arr[:, j]
    return arr


def dominates(a: Sequence[float], b: Sequence[float], senses: Sequence[str] | None = None) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    pa, pb = to_minimization([a, b], senses)
    return bool(np.all(pa <= pb) and np.any(pa < pb))


def _pareto_mask_min(f: np.ndarray) -> np.ndarray:
    """Non-dominated mask for minimisation points.

    Points are visited in lexicographic order, so a dominating point always
    comes before the points it dominates; each point is compared only with the
    non-dominated points found so far (transitivity makes that enough).
    O(n * front size), vectorised over the front.
    """
    n = f.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if f.shape[1] == 2:
        return _pareto_mask_2d(f)
    order = np.lexsort(f.T[::-1])
    front = np.empty_like(f)
    size = 0
    for i in order:
        p = f[i]
        if size:
            kept = front[:size]
            if np.any(np.all(kept <= p, axis=1) & np.any(kept < p, axis=1)):
                continue
        front[size] = p
        size += 1
        mask[i] = True
    return mask


def _pareto_mask_2d(f: np.ndarray) -> np.ndarray:
    """2-D case in O(n log n): after sorting by (x, y), a distinct point is non-dominated
    exactly when its y is below every y seen before it."""
    uniq, inverse = np.unique(f, axis=0, return_inverse=True)  # sorted by x, then y
    prev_min = np.concatenate([[np.inf], np.minimum.accumulate(uniq[:-1, 1])])
    return (uniq[:, 1] < prev_min)[inverse.reshape(-1)]


def pareto_mask(points: np.ndarray | Sequence[Sequence[float]], senses: Sequence[str] | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated points (duplicates of a front point are all kept)."""
    return _pareto_mask_min(to_minimization(points, senses))


def pareto_front(points: np.ndarray | Sequence[Sequence[float]], senses: Sequence[str] | None = None) -> np.ndarray:
    """Indices of the non-dominated points, sorted by the first objective (best first), then the next."""
    f = to_minimization(points, senses)
    idx = np.flatnonzero(_pareto_mask_min(f))
    if idx.size == 0:
        return idx
    return idx[np.lexsort(f[idx].T[::-1])]


def non_dominated_sort(points: np.ndarray | Sequence[Sequence[float]], senses: Sequence[str] | None = None) -> list[np.ndarray]:
    """Fronts of indices: front 0 is non-dominated, front 1 is non-dominated once front 0 is removed, ..."""
    f = to_minimization(points, senses)
    remaining = np.arange(f.shape[0])
    fronts: list[np.ndarray] = []
    while remaining.size:
        mask = _pareto_mask_min(f[remaining])
        fronts.append(remaining[mask])
        remaining = remaining[~mask]
    return fronts


def normalize(points: np.ndarray | Sequence[Sequence[float]], lower: Sequence[float], upper: Sequence[float]) -> np.ndarray:
    """Scale each objective j to [0, 1] by (x - lower[j]) / (upper[j] - lower[j]); no clipping."""
    arr = _as_points(points)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    m = arr.shape[1] if arr.shape[0] else lo.size
    if lo.shape != (m,) or hi.shape != (m,):
        raise ConfigError(f"expected lower and upper of length {m}, got {lo.shape} and {hi.shape}")
    if np.any(hi <= lo):
        raise ConfigError(f"expected upper > lower for every objective, got lower={lo.tolist()} upper={hi.tolist()}")
    if arr.shape[0] == 0:
        return arr.reshape(0, m)
    return (arr - lo) / (hi - lo)


def _hypervolume_2d(f: np.ndarray, ref: np.ndarray) -> float:
    front = f[_pareto_mask_min(f)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    # Along increasing x the front's y strictly decreases; sum the vertical slabs.
    xs = np.append(front[1:, 0], ref[0])
    return float(np.sum((xs - front[:, 0]) * (ref[1] - front[:, 1])))


def hypervolume(
    points: np.ndarray | Sequence[Sequence[float]],
    reference: Sequence[float],
    senses: Sequence[str] | None = None,
) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (both in the frame given by ``senses``).

    1-D and 2-D are computed exactly here; 3 or more objectives use pymoo's HV indicator.
    """
    f = to_minimization(points, senses)
    ref = to_minimization([list(reference)], senses)[0]
    if f.shape[0] == 0:
        return 0.0
    if f.shape[1] != ref.size:
        raise ConfigError(f"reference point has {ref.size} values for {f.shape[1]} objectives")
    if not np.all(np.isfinite(ref)):
        raise ConfigError(f"reference point must be finite, got {list(reference)}")
    f = f[np.all(f < ref, axis=1)]
    if f.shape[0] == 0:
        return 0.0
    if f.shape[1] == 1:
        return float(ref[0] - f[:, 0].min())
    if f.shape[1] == 2:
        return _hypervolume_2d(f, ref)
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=ref)(f))


def modnas_points(
    accuracy: Sequence[float] | np.ndarray,
    costs: Sequence[Sequence[float]] | np.ndarray,
    lower: Sequence[float],
    upper: Sequence[float],
) -> np.ndarray:
    """(error, cost...) per architecture, normalised to [0, 1] per objective (both minimised).

    ``lower``/``upper`` are in the (error %, cost...) frame, e.g. the minimum and
    maximum error and latency over the whole benchmark on that device.
    """
    acc = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim == 1:
        c = c.reshape(-1, 1)
    if c.shape[0] != acc.size:
        raise DataError(f"got {acc.size} accuracies and {c.shape[0]} cost rows; expected one cost row per accuracy")
    return normalize(np.column_stack([100.0 - acc, c]), lower, upper)


def modnas_hypervolume(
    accuracy: Sequence[float] | np.ndarray,
    costs: Sequence[Sequence[float]] | np.ndarray,
    lower: Sequence[float],
    upper: Sequence[float],
) -> float:
    """Hypervolume of (error, cost) points after MODNAS normalisation, reference point [1, ..., 1]."""
    pts = modnas_points(accuracy, costs, lower, upper)
    return hypervolume(pts, [1.0] * pts.shape[1])
