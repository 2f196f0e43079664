"""Gradient-boosted trees (xgboost) on architecture features.

Two choices make it accurate with ~1,000 samples. The target is log-latency
(errors become relative, and a multiplicative device effect additive). And
the trees start from a ridge fit (``linear_base``): latency of a network of
fixed-shape layers is close to a sum of per-layer costs, which shallow trees
approximate poorly on a one-hot encoding (each tree sees two or three
columns), while ridge gets it in closed form; the trees then model what is
left (interactions, saturation). The defaults (shallow trees, many rounds,
small learning rate) were chosen by 3-fold cross-validation on training
networks only, pooled over devices; ``tune=True`` repeats that search on the
data at hand.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwprof.errors import DataError
from predictors.base import Predictor, ProgressCallback, check_bool, finite_values, positive_float, positive_int
from predictors.linear import ridge_fit

TUNE_GRID: dict[str, tuple[Any, ...]] = {"max_depth": (2, 3, 4, 6), "learning_rate": (0.03, 0.1)}
TUNE_MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError as exc:  # pragma: no cover - xgboost is a declared dependency
        raise DataError(f"the gbdt predictor needs xgboost ({exc}); pip install xgboost") from None
    return xgboost


class GBDTPredictor(Predictor):
    """xgboost regressor; ``tune=True`` picks depth, learning rate and rounds by k-fold CV on the training data."""

    name = "gbdt"
    min_samples = 5

    def __init__(
        self,
        n_estimators: int = 600,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        linear_base: bool = True,
        ridge_alpha: float = 1.0,
        log_target: bool = True,
        tune: bool = False,
        n_folds: int = 3,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.linear_base = linear_base
        self.ridge_alpha = ridge_alpha
        self.log_target = log_target
        self.tune = tune
        self.n_folds = n_folds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = "GBDTPredictor"
        positive_int(owner, "n_estimators", self.n_estimators)
        positive_int(owner, "max_depth", self.max_depth)
        positive_int(owner, "n_folds", self.n_folds, minimum=2)
        positive_int(owner, "n_jobs", self.n_jobs)
        positive_int(owner, "random_state", self.random_state, minimum=0)
        positive_float(owner, "learning_rate", self.learning_rate, maximum=1.0)
        positive_float(owner, "subsample", self.subsample, maximum=1.0)
        positive_float(owner, "colsample_bytree", self.colsample_bytree, maximum=1.0)
        positive_float(owner, "min_child_weight", self.min_child_weight, allow_zero=True)
        positive_float(owner, "reg_lambda", self.reg_lambda, allow_zero=True)
        positive_float(owner, "ridge_alpha", self.ridge_alpha, allow_zero=True)
        for name in ("linear_base", "log_target", "tune"):
            check_bool(owner, name, getattr(self, name))

    # --- training ----------------------------------------------------------------------
    def _booster_params(self, **override: Any) -> dict[str, Any]:
        params = {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": int(self.max_depth),
            "eta": float(self.learning_rate),
            "subsample": float(self.subsample),
            "colsample_bytree": float(self.colsample_bytree),
            "min_child_weight": float(self.min_child_weight),
            "lambda": float(self.reg_lambda),
            "nthread": int(self.n_jobs),
            "seed": int(self.random_state),
        }
        if "learning_rate" in override:
            override["eta"] = override.pop("learning_rate")
        params.update(override)
        return params

    def _target(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.log_target else y

    def _base(self, X: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
        if self.linear_base:
            return ridge_fit(X, target, float(self.ridge_alpha))
        return np.zeros(X.shape[1]), float(np.mean(target))

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> None:
        xgb = _xgb()
        target = self._target(y)
        n_rounds = int(self.n_estimators)
        override: dict[str, Any] = {}
        total = n_rounds
        if self.tune:
            candidates = [dict(zip(TUNE_GRID, values)) for values in itertools.product(*TUNE_GRID.values())]
            total = len(candidates) * int(self.n_folds)
            override, n_rounds, self.cv_rmse_ = self._search(X, target, candidates, progress, total)
            total += n_rounds
        self.best_params_ = {**{k: v for k, v in self._booster_params(**override).items() if k in ("max_depth", "eta")},
                             "n_estimators": n_rounds}
        self.base_coef_, self.base_intercept_ = self._base(X, target)
        margin = X @ self.base_coef_ + self.base_intercept_
        dtrain = xgb.DMatrix(X, label=target, base_margin=margin)
        offset = total - n_rounds
        callbacks = [_ProgressCallback(xgb, progress, offset, total)] if progress is not None else None
        self.booster_ = xgb.train(self._booster_params(**override), dtrain, num_boost_round=n_rounds, callbacks=callbacks)

    def _search(
        self,
        X: np.ndarray,
        target: np.ndarray,
        candidates: list[dict[str, Any]],
        progress: ProgressCallback | None,
        total: int,
    ) -> tuple[dict[str, Any], int, float]:
        """k-fold CV with early stopping per fold; returns the best override, its rounds and CV RMSE."""
        xgb = _xgb()
        n_folds = min(int(self.n_folds), X.shape[0])
        folds = np.array_split(np.random.default_rng(self.random_state).permutation(X.shape[0]), n_folds)
        best: tuple[float, dict[str, Any], int] = (math.inf, {}, int(self.n_estimators))
        done = 0
        for cand in candidates:
            rmses, rounds = [], []
            for k in range(n_folds):
                val = folds[k]
                trn = np.concatenate([f for j, f in enumerate(folds) if j != k])
                coef, icpt = self._base(X[trn], target[trn])
                dtr = xgb.DMatrix(X[trn], label=target[trn], base_margin=X[trn] @ coef + icpt)
                dva = xgb.DMatrix(X[val], label=target[val], base_margin=X[val] @ coef + icpt)
                booster = xgb.train(
                    self._booster_params(**cand), dtr, num_boost_round=TUNE_MAX_ROUNDS,
                    evals=[(dva, "val")], early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose_eval=False,
                )
                rounds.append(booster.best_iteration + 1)
                rmses.append(float(booster.best_score))
                done += 1
                if progress is not None:
                    progress(done, total)
            score = float(np.mean(rmses))
            if score < best[0]:
                best = (score, cand, int(round(float(np.mean(rounds)))))
        return dict(best[1]), max(best[2], 1), best[0]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        xgb = _xgb()
        margin = X @ self.base_coef_ + self.base_intercept_
        out = self.booster_.predict(xgb.DMatrix(X, base_margin=margin))
        return np.exp(out) if self.log_target else out

    # --- persistence ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        self.booster_.save_model(str(directory / "model.json"))
        np.savez(directory / "base.npz", coef=self.base_coef_, intercept=np.array([self.base_intercept_]))
        return {"model": "model.json", "base": "base.npz", "best_params": self.best_params_}

    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        xgb = _xgb()
        booster = xgb.Booster()
        booster.load_model(str(directory / str(state["model"])))
        with np.load(directory / str(state["base"]), allow_pickle=False) as data:
            coef, intercept = data["coef"], data["intercept"]
        if coef.shape != (self.n_features_in_,) or booster.num_features() != self.n_features_in_:
            raise DataError(
                f"saved model has {booster.num_features()} features and a base of shape {coef.shape}; "
                f"the schema says {self.n_features_in_}"
            )
        self.booster_ = booster
        self.base_coef_ = finite_values("the linear base's coefficients", coef)
        self.base_intercept_ = float(finite_values("the linear base's intercept", intercept)[0])
        self.best_params_ = dict(state.get("best_params", {}))


class _ProgressCallback:
    """Adapts xgboost's per-round callback to progress(done, total)."""

    def __new__(cls, xgb: Any, progress: ProgressCallback, offset: int, total: int) -> Any:
        class Callback(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                progress(offset + epoch + 1, total)
                return False

        return Callback()
