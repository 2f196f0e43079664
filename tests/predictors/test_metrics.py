"""Latency metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from hwprof.errors import DataError
from predictors.metrics import LatencyMetrics, evaluate_predictions


def test_hand_computed_values():
    # relative errors 0.08, 0.03, 0, 0.25; squared errors 0.0064, 0.0036, 0, 4
    m = evaluate_predictions([1.0, 2.0, 4.0, 8.0], [1.08, 1.94, 4.0, 10.0])
    assert m.n == 4
    assert m.mape == pytest.approx(0.09)
    assert m.within_5pct == pytest.approx(0.5)
    assert m.within_10pct == pytest.approx(0.75)
    assert m.rmse_ms == pytest.approx(math.sqrt(1.0025))
    assert m.spearman == pytest.approx(1.0)
    assert m.kendall_tau == pytest.approx(1.0)


def test_rank_correlations_with_one_swap():
    # d = (1, -1, 0, 0): Spearman 1 - 6*2/(4*15) = 0.8; Kendall (5 - 1)/6
    m = evaluate_predictions([1, 2, 3, 4], [2, 1, 3, 4])
    assert m.spearman == pytest.approx(0.8)
    assert m.kendall_tau == pytest.approx(2 / 3)
    assert m.within_10pct == pytest.approx(0.5)


def test_within_bounds_are_inclusive():
    m = evaluate_predictions([100.0, 200.0], [105.0, 190.0])  # exactly 5% off each
    assert m.within_5pct == 1.0 and m.within_10pct == 1.0


def test_constant_predictions_give_nan_rank_correlations_and_json_null():
    m = evaluate_predictions([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert math.isnan(m.spearman) and math.isnan(m.kendall_tau)
    data = m.to_json()
    assert data["spearman"] is None and data["kendall_tau"] is None
    back = LatencyMetrics.from_json(data)
    assert math.isnan(back.spearman) and back.rmse_ms == m.rmse_ms and back.n == 3


def test_values_are_numbers_not_strings():
    m = evaluate_predictions(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    assert all(isinstance(v, (int, float)) for v in m.to_json().values())


@pytest.mark.parametrize(
    "y_true, y_pred, needle",
    [
        ([1.0, 2.0], [1.0], "one prediction per measurement"),
        ([1.0], [1.0], "at least 2"),
        ([1.0, 0.0], [1.0, 1.0], "finite and positive"),
        ([1.0, -2.0], [1.0, 1.0], "finite and positive"),
        ([1.0, float("nan")], [1.0, 1.0], "finite and positive"),
        ([1.0, 2.0], [1.0, float("inf")], "predicted latencies must be finite"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_bad_input_is_rejected(y_true, y_pred, needle):
    with pytest.raises(DataError, match=needle):
        evaluate_predictions(y_true, y_pred)


def test_from_json_rejects_missing_fields():
    with pytest.raises(DataError, match="missing field"):
        LatencyMetrics.from_json({"rmse_ms": 1.0})
