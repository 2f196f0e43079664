"""Pareto sorting and hypervolume against hand-computed cases and brute force."""

import itertools

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError
from nas.pareto import (
    dominates,
    hypervolume,
    modnas_hypervolume,
    modnas_points,
    non_dominated_sort,
    normalize,
    pareto_front,
    pareto_mask,
    to_minimization,
)


def brute_mask(f):
    """O(n^2) definition: non-dominated in minimisation."""
    n = len(f)
    return np.array(
        [not any(np.all(f[j] <= f[i]) and np.any(f[j] < f[i]) for j in range(n) if j != i) for i in range(n)]
    )


def brute_hv(f, ref):
    """Exact union-of-boxes volume on the grid of distinct coordinates (fine for small n)."""
    f = f[np.all(f < ref, axis=1)]
    if len(f) == 0:
        return 0.0
    axes = [np.unique(np.append(f[:, d], ref[d])) for d in range(f.shape[1])]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = np.array([axes[d][c] for d, c in enumerate(cell)])
        hi = np.array([axes[d][c + 1] for d, c in enumerate(cell)])
        if np.any(np.all(f <= lo, axis=1)):
            total += float(np.prod(hi - lo))
    return total


HAND = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [5, 5]], dtype=float)


def test_hand_front_and_fronts():
    assert set(np.flatnonzero(pareto_mask(HAND))) == {0, 1, 3}
    assert pareto_front(HAND).tolist() == [0, 1, 3]  # sorted by the first objective
    assert [sorted(f.tolist()) for f in non_dominated_sort(HAND)] == [[0, 1, 3], [2], [4]]


def test_senses_max_flips_the_objective():
    # accuracy (max), latency (min): (90, 5) dominates (85, 6); (95, 9) is a trade-off.
    pts = [[90, 5], [85, 6], [95, 9]]
    assert pareto_mask(pts, ["max", "min"]).tolist() == [True, False, True]
    assert dominates([90, 5], [85, 6], ["max", "min"]) and not dominates([85, 6], [90, 5], ["max", "min"])
    assert to_minimization(pts, ["max", "min"])[:, 0].tolist() == [-90, -85, -95]


def test_duplicates_are_all_kept_and_equal_points_do_not_dominate():
    pts = [[1, 1], [1, 1], [2, 2]]
    assert pareto_mask(pts).tolist() == [True, True, False]
    assert not dominates([1, 1], [1, 1])


@pytest.mark.parametrize("m", [2, 3])
def test_mask_and_sort_match_brute_force(m):
    rng = np.random.default_rng(7)
    for trial in range(5):
        # integer grid -> many ties, the hard case
        f = rng.integers(0, 6, size=(60, m)).astype(float)
        assert pareto_mask(f).tolist() == brute_mask(f).tolist()
        fronts = non_dominated_sort(f)
        assert sorted(np.concatenate(fronts).tolist()) == list(range(60))
        remaining = np.arange(60)
        for front in fronts:
            sub = f[remaining]
            expected = remaining[brute_mask(sub)]
            assert sorted(front.tolist()) == sorted(expected.tolist())
            remaining = np.setdiff1d(remaining, front)


def test_hypervolume_hand_cases():
    # boxes [1,3]x[2,3] and [2,3]x[1,3] overlap in [2,3]x[2,3]: 2 + 2 - 1
    assert hypervolume([[1, 2], [2, 1]], [3, 3]) == pytest.approx(3.0)
    assert hypervolume([[0.5, 0.5]], [1, 1]) == pytest.approx(0.25)
    # a point that does not dominate the reference adds nothing
    assert hypervolume([[0.5, 0.5], [1.5, 0.1]], [1, 1]) == pytest.approx(0.25)
    assert hypervolume(np.empty((0, 2)), [1, 1]) == 0.0
    assert hypervolume([[2.0]], [5.0]) == pytest.approx(3.0)
    # maximised accuracy: reference accuracy 0, latency 10
    assert hypervolume([[90, 5]], [0, 10], ["max", "min"]) == pytest.approx(450.0)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_brute_force(m):
    rng = np.random.default_rng(3)
    for _ in range(4):
        f = rng.random((12, m))
        ref = np.full(m, 1.0)
        assert hypervolume(f, ref) == pytest.approx(brute_hv(f, ref), rel=1e-9, abs=1e-12)


def test_normalize_and_modnas_convention():
    assert normalize([[5, 10]], [0, 10], [10, 20]).tolist() == [[0.5, 0.0]]
    # accuracy 90 -> error 10 -> 0.5 of [0, 20]; latency 5 -> 0.5 of [0, 10]; HV = 0.5 * 0.5
    assert modnas_points([90], [5], [0, 0], [20, 10]).tolist() == [[0.5, 0.5]]
    assert modnas_hypervolume([90], [5], [0, 0], [20, 10]) == pytest.approx(0.25)
    # the ideal corner (error = min, latency = min) fills the unit square
    assert modnas_hypervolume([100], [0], [0, 0], [20, 10]) == pytest.approx(1.0)


def test_bad_input_is_reported():
    with pytest.raises(DataError, match="NaN"):
        pareto_mask([[np.nan, 1]])
    with pytest.raises(DataError, match=r"shape \(n, m\)"):
        pareto_mask([[[1]]])
    with pytest.raises(ConfigError, match="senses"):
        pareto_mask([[1, 2]], ["min"])
    with pytest.raises(ConfigError, match="'min' or 'max'"):
        pareto_mask([[1, 2]], ["min", "up"])
    with pytest.raises(ConfigError, match="upper > lower"):
        normalize([[1, 2]], [0, 5], [1, 5])
    with pytest.raises(ConfigError, match="reference point"):
        hypervolume([[1, 2]], [3])
