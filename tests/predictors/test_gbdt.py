"""The xgboost predictor: accuracy on an additive law, determinism, validation of data and parameters."""

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, NotFittedError
from predictors.base import FeatureSchema
from predictors.gbdt import GBDTPredictor
from predictors.metrics import evaluate_predictions
from tests.predictors.conftest import additive_data

FAST = dict(n_estimators=80, learning_rate=0.1)


def test_fits_an_additive_law_within_a_few_percent():
    X, y = additive_data(300, noise=0.01)
    Xt, yt = additive_data(100, seed=1)
    m = evaluate_predictions(yt, GBDTPredictor(**FAST).fit(X, y).predict(Xt))
    assert m.within_10pct >= 0.95 and m.spearman > 0.97


def test_trees_alone_are_worse_than_with_the_linear_base():
    # The linear base is what makes 1-2 hundred samples enough on an additive law.
    X, y = additive_data(120, d=10, noise=0.01)
    Xt, yt = additive_data(200, d=10, seed=1)
    with_base = evaluate_predictions(yt, GBDTPredictor(**FAST).fit(X, y).predict(Xt)).mape
    trees_only = evaluate_predictions(yt, GBDTPredictor(**FAST, linear_base=False).fit(X, y).predict(Xt)).mape
    assert with_base < trees_only


def test_same_seed_same_model_and_progress_reaches_total():
    X, y = additive_data(80)
    calls = []
    a = GBDTPredictor(**FAST, random_state=3).fit(X, y, progress=lambda done, total: calls.append((done, total)))
    b = GBDTPredictor(**FAST, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert calls[-1] == (FAST["n_estimators"], FAST["n_estimators"])


def test_tune_picks_from_the_grid_by_cross_validation():
    X, y = additive_data(60, noise=0.02)
    p = GBDTPredictor(tune=True, n_folds=2).fit(X, y)
    assert p.best_params_["max_depth"] in (2, 3, 4, 6)
    assert 1 <= p.best_params_["n_estimators"] <= 2000
    assert np.isfinite(p.cv_rmse_)


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(NotFittedError, match="not fitted"):
        GBDTPredictor().predict(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"n_estimators": 0}, "n_estimators must be an integer >= 1"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"subsample": 0.0}, "subsample"),
        ({"max_depth": 2.5}, "max_depth"),
        ({"n_folds": 1}, "n_folds"),
        ({"reg_lambda": -1.0}, "reg_lambda"),
    ],
)
def test_bad_parameters_fail_in_fit(params, needle):
    X, y = additive_data(20)
    p = GBDTPredictor(**params)  # __init__ only stores
    with pytest.raises(ConfigError, match=needle):
        p.fit(X, y)


def test_unknown_parameter_name():
    with pytest.raises(ConfigError, match="no parameter 'depth'"):
        GBDTPredictor().set_params(depth=3)


@pytest.mark.parametrize(
    "y_fix, needle",
    [
        (lambda y: np.where(np.arange(len(y)) == 2, np.nan, y), r"latency y\[2\] = nan"),
        (lambda y: np.where(np.arange(len(y)) == 4, -1.0, y), r"latency y\[4\] = -1.0"),
        (lambda y: y[:-1], "one latency per row"),
    ],
)
def test_bad_latencies(y_fix, needle):
    X, y = additive_data(20)
    with pytest.raises(DataError, match=needle):
        GBDTPredictor(**FAST).fit(X, y_fix(y))


def test_too_few_samples_and_wrong_width():
    X, y = additive_data(20)
    with pytest.raises(DataError, match="at least 5 training samples, got 4"):
        GBDTPredictor(**FAST).fit(X[:4], y[:4])
    p = GBDTPredictor(**FAST).fit(X, y)
    with pytest.raises(DataError, match="expected X with 6 features"):
        p.predict(X[:, :5])
    with pytest.raises(DataError, match="does not match X"):
        GBDTPredictor(**FAST).fit(X, y, schema=FeatureSchema.raw(5))
