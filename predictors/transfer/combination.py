"""New device = a combination of source devices, fitted on the K samples.

``latency_new(a) ~ b + sum_j w_j * latency_j(a)`` over source devices j.

- ``ridge``: the issue's reference method, ridge (alpha = 1) on the source latencies.
- ``nnls``: the same with ``w_j >= 0`` (non-negative least squares, free
  intercept). A device is plausibly "like these devices, scaled", never "the
  opposite of that one"; the constraint removes the sign-flipping fits that
  10 samples and 17 correlated sources otherwise allow, and makes the fit
  sparse (it picks the few sources that match). No penalty to tune.

Source latencies come from a :class:`~predictors.transfer.sources.SourceBank`
(ridge per device on the architecture features), so the adapted predictor is
itself linear in those features: it is returned as a plain ``linear``
predictor, saved, loaded and differentiated like any other.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwprof.errors import ConfigError
from predictors.base import check_y, data_hash, positive_float
from predictors.linear import LinearPredictor, ridge_fit
from predictors.transfer.sources import SourceBank


def combination_weights(S: np.ndarray, y: np.ndarray, *, nonnegative: bool, alpha: float) -> tuple[np.ndarray, float]:
    """Weights w and intercept b with y ~ b + S @ w (S: samples x sources)."""
    if not nonnegative:
        return ridge_fit(S, y, alpha)
    from scipy.optimize import nnls

    s_mean, y_mean = S.mean(axis=0), y.mean()
    w, _ = nnls(S - s_mean, y - y_mean)
    return w, float(y_mean - s_mean @ w)


class SourceCombination:
    """Few-shot method: fit a (non-negative or ridge) combination of source devices on K samples."""

    def __init__(self, nonnegative: bool = True, alpha: float = 1.0) -> None:
        self.nonnegative = nonnegative
        self.alpha = alpha

    @property
    def name(self) -> str:
        return "nnls" if self.nonnegative else "ridge"

    def adapt(self, bank: SourceBank, archs: Sequence[Any], latency_ms: Any, progress: Any = None) -> LinearPredictor:
        positive_float("SourceCombination", "alpha", self.alpha, allow_zero=True)
        y = check_y(latency_ms, len(archs))
        if len(y) < 2:
            raise ConfigError(f"need at least 2 measured architectures on the new device, got {len(y)}")
        X = bank.featurizer.transform(archs)
        S = X @ bank.coef + bank.intercept
        w, b = combination_weights(S, y, nonnegative=bool(self.nonnegative), alpha=float(self.alpha))
        predictor = LinearPredictor.from_coefficients(
            bank.coef @ w, float(bank.intercept @ w + b), bank.schema, n_train=len(y), train_hash=data_hash(X, y)
        )
        predictor.source_weights_ = dict(zip(bank.devices, (float(v) for v in w)))
        if progress is not None:
            progress(1, 1)
        return predictor
