"""Ridge regression in closed form (numpy only).

On a one-hot encoding this is an additive cost model — latency = sum of a cost
per (layer, option) — which is what a chain of fixed-shape layers physically
is; so it is a strong baseline and, on one feature (MACs), the FLOPs baseline.
The default fits milliseconds directly (additive); ``log_target=True`` fits
log-latency (multiplicative).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hwprof.errors import DataError
from predictors.base import Predictor, ProgressCallback, check_bool, finite_values, positive_float


def ridge_fit(X: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of min ||W^1/2 (y - Xw - b)||^2 + alpha ||w||^2 (intercept not penalised).

    ``y`` may be 2-D (one column per target); alpha = 0 gives the minimum-norm least-squares fit.
    """
    w = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    sw = w / w.sum()
    x_mean = sw @ X
    y_mean = sw @ y
    Xc = (X - x_mean) * np.sqrt(w)[:, None]
    yc = (y - y_mean) * (np.sqrt(w)[:, None] if y.ndim == 2 else np.sqrt(w))
    if alpha == 0:
        coef = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    else:
        coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ yc)
    intercept = y_mean - x_mean @ coef
    return coef, intercept


class LinearPredictor(Predictor):
    """Ridge on the features; ``alpha`` is the L2 penalty (0 = ordinary least squares)."""

    name = "linear"
    min_samples = 2

    def __init__(self, alpha: float = 1.0, log_target: bool = False) -> None:
        self.alpha = alpha
        self.log_target = log_target

    def _check_params(self) -> None:
        positive_float("LinearPredictor", "alpha", self.alpha, allow_zero=True)
        check_bool("LinearPredictor", "log_target", self.log_target)

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> None:
        target = np.log(y) if self.log_target else y
        self.coef_, self.intercept_ = ridge_fit(X, target, float(self.alpha))
        if progress is not None:
            progress(1, 1)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        out = X @ self.coef_ + self.intercept_
        return np.exp(out) if self.log_target else out

    def _save_state(self, directory: Path) -> dict[str, Any]:
        np.savez(directory / "linear.npz", coef=self.coef_, intercept=np.array([self.intercept_]))
        return {"file": "linear.npz"}

    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        from predictors.persistence import read_npz

        arrays = read_npz(directory / str(state["file"]), ("coef", "intercept"))
        coef, intercept = arrays["coef"], arrays["intercept"]
        if coef.ndim != 1 or coef.shape[0] != self.n_features_in_ or intercept.shape != (1,):
            raise DataError(f"linear.npz holds coefficients of shape {coef.shape}; expected ({self.n_features_in_},)")
        self.coef_ = finite_values("linear.npz coefficients", coef)
        self.intercept_ = float(finite_values("linear.npz intercept", intercept)[0])

    @classmethod
    def from_coefficients(cls, coef: np.ndarray, intercept: float, schema: Any, *, log_target: bool = False,
                          n_train: int = 0, train_hash: str = "", floor_ms: float = 0.0) -> "LinearPredictor":
        """A fitted linear predictor with given coefficients (e.g. a few-shot combination of source models).

        ``floor_ms``: its predictions never go below it (``predictors.base.latency_floor`` of the samples).
        """
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        if coef.shape[0] != schema.width:
            raise DataError(f"{coef.shape[0]} coefficients for a schema of {schema.width} features")
        pred = cls(alpha=0.0, log_target=log_target)
        pred._restore_common(schema, n_train, train_hash, floor_ms)
        pred.coef_ = coef
        pred.intercept_ = float(intercept)
        return pred
