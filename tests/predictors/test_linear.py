"""Ridge in closed form: exact on a linear law, log target, weights, construction from coefficients."""

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, NotFittedError
from predictors.base import FeatureSchema
from predictors.linear import LinearPredictor, ridge_fit
from tests.predictors.conftest import additive_data


def test_least_squares_recovers_the_costs_exactly():
    X, y = additive_data(50)
    p = LinearPredictor(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(p.coef_, np.linspace(0.5, 3.0, 6), atol=1e-9)
    assert p.intercept_ == pytest.approx(1.0)
    np.testing.assert_allclose(p.predict(X), y, rtol=1e-9)


def test_ridge_shrinks_towards_zero():
    X, y = additive_data(50)
    small = LinearPredictor(alpha=0.1).fit(X, y).coef_
    big = LinearPredictor(alpha=100.0).fit(X, y).coef_
    assert np.abs(big).sum() < np.abs(small).sum()


def test_log_target_fits_a_multiplicative_law():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(60, 4)).astype(float)
    y = np.exp(0.3 + X @ np.array([0.1, 0.2, 0.4, 0.8]))
    p = LinearPredictor(alpha=0.0, log_target=True).fit(X, y)
    np.testing.assert_allclose(p.predict(X), y, rtol=1e-9)


def test_ridge_fit_with_weights_ignores_zero_weight_rows():
    X, y = additive_data(40)
    y_bad = y.copy()
    y_bad[:5] += 100.0
    w = np.ones(40)
    w[:5] = 0.0
    coef, icpt = ridge_fit(X, y_bad, 0.0, weights=w)
    np.testing.assert_allclose(coef, np.linspace(0.5, 3.0, 6), atol=1e-8)


def test_from_coefficients_is_a_fitted_predictor():
    schema = FeatureSchema.raw(3)
    p = LinearPredictor.from_coefficients([1.0, 2.0, 3.0], 0.5, schema)
    np.testing.assert_allclose(p.predict([[1, 1, 1], [0, 0, 1]]), [6.5, 3.5])
    with pytest.raises(DataError, match="2 coefficients for a schema of 3"):
        LinearPredictor.from_coefficients([1.0, 2.0], 0.0, schema)


def test_errors():
    with pytest.raises(NotFittedError):
        LinearPredictor().predict([[1.0]])
    with pytest.raises(ConfigError, match="alpha"):
        LinearPredictor(alpha=-1.0).fit([[0.0], [1.0]], [1.0, 2.0])
    with pytest.raises(DataError, match="at least 2"):
        LinearPredictor().fit([[0.0]], [1.0])
    with pytest.raises(DataError, match="2-D X"):
        LinearPredictor().fit([1.0, 2.0], [1.0, 2.0])
