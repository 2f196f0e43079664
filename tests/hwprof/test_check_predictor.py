"""hwprof.testing.check_predictor: the built-in predictors pass it, and it catches broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

from hwprof import registry
from hwprof.testing import check_predictor
from predictors import persistence
from predictors.gbdt import GBDTPredictor
from predictors.linear import LinearPredictor
from predictors.mlp import MLPPredictor


def saved_and_loaded(predictor: Any, directory: Path) -> Any:
    persistence.save(predictor, directory)
    return persistence.load_predictor(directory)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: LinearPredictor(alpha=0.1),
        lambda: GBDTPredictor(n_estimators=20, max_depth=2),
        lambda: MLPPredictor(hidden_sizes=(8,), max_epochs=5, patience=5),
    ],
    ids=["linear", "gbdt", "mlp"],
)
def test_built_in_predictors_pass(factory):
    check_predictor(factory, round_trip=saved_and_loaded)


def test_ops_predictor_passes_on_a_node_table():
    """The ops predictor's fit(X, y) is defined on node tables (X = node rows, y = node ms)."""
    from predictors.ops import NODE_SCHEMA, OpsPredictor

    rng = np.random.default_rng(0)
    X = np.zeros((60, NODE_SCHEMA.width))
    X[:, 0] = rng.choice([11, 22], size=60)  # two kernel kinds
    X[:, 1:] = rng.integers(1, 64, size=(60, NODE_SCHEMA.width - 1))
    y = 0.01 + 1e-4 * X[:, NODE_SCHEMA.names.index("macs")]
    check_predictor(lambda: OpsPredictor(n_estimators=10, min_samples_xgb=20), X, y, round_trip=saved_and_loaded)


# --- broken predictors: each must be caught -------------------------------------------------------------


class StoresStateInInit(LinearPredictor):
    name = "broken-init"

    def __init__(self, alpha: float = 1.0, log_target: bool = False) -> None:
        super().__init__(alpha, log_target)
        self.scale = 2.0


class CopiesParam(LinearPredictor):
    name = "broken-copy"

    def __init__(self, alpha: float = 1.0, log_target: bool = False) -> None:
        self.alpha = [alpha]  # not the value given
        self.log_target = log_target


class PredictsAColumn(LinearPredictor):
    name = "broken-shape"

    def predict(self, X: Any) -> np.ndarray:
        return super().predict(X).reshape(-1, 1)


class PredictsUnfitted(LinearPredictor):
    name = "broken-unfitted"

    def predict(self, X: Any) -> np.ndarray:
        return np.ones(len(X)) if not self.is_fitted else super().predict(X)


class ChangesParamsInFit(LinearPredictor):
    name = "broken-fit-params"

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: Any) -> None:
        self.alpha = 0.0
        super()._fit(X, y, progress)


class Unseeded(LinearPredictor):
    name = "broken-seed"

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: Any) -> None:
        super()._fit(X, y * np.random.default_rng().uniform(0.9, 1.1), progress)


class IgnoresWidth(LinearPredictor):
    name = "broken-width"

    def predict(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        return X[:, : self.n_features_in_] @ self.coef_[: X.shape[1]] + self.intercept_


class LosesPrecisionOnLoad(LinearPredictor):
    name = "broken-load"

    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        super()._load_state(directory, state)
        self.coef_ = self.coef_.astype(np.float32).astype(np.float64)


class ReturnsSelfNot(LinearPredictor):
    name = "broken-fit-return"

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
        super().fit(X, y, **kwargs)
        return None


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (StoresStateInInit, r"only store its parameters; it also sets \['scale'\]"),
        (CopiesParam, r"\(\*\*get_params\(\)\) must give the same parameters"),
        (PredictsUnfitted, "predict before fit must raise NotFittedError"),
        (ReturnsSelfNot, "fit must return self"),
        (ChangesParamsInFit, "must not change its parameters"),
        (PredictsAColumn, r"must return shape \(60,\)"),
        (Unseeded, "same model twice"),
        (IgnoresWidth, "DataError for X of 5 features"),
        (LosesPrecisionOnLoad, "predict exactly as the saved one"),
    ],
)
def test_broken_predictors_are_caught(cls, message):
    registry.register("predictor", cls.name, cls)  # so that loading a saved one finds its class
    try:
        with pytest.raises(AssertionError, match=message):
            check_predictor(cls, round_trip=saved_and_loaded)
    finally:
        registry.unregister("predictor", cls.name)


def test_without_round_trip_the_predictors_own_save_load_is_required():
    with pytest.raises(AssertionError, match="pass round_trip"):
        check_predictor(lambda: LinearPredictor(alpha=0.1))
