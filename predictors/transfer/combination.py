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

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from hwprof.errors import ConfigError
from predictors.base import FeatureSchema, ProgressCallback, data_hash, latency_floor, positive_float
from predictors.linear import LinearPredictor, ridge_fit
from predictors.features.encoding import ArchFeaturizer
from predictors.transfer.base import TransferModel
from predictors.transfer.sources import SourceBank, SourceLatencies


def combination_weights(S: np.ndarray, y: np.ndarray, *, nonnegative: bool, alpha: float) -> tuple[np.ndarray, float]:
    """Weights w and intercept b with y ~ b + S @ w (S: samples x sources)."""
    if not nonnegative:
        return ridge_fit(S, y, alpha)
    from scipy.optimize import nnls

    s_mean, y_mean = S.mean(axis=0), y.mean()
    w, _ = nnls(S - s_mean, y - y_mean)
    return w, float(y_mean - s_mean @ w)


class _CombinationModel(TransferModel):
    """A :class:`SourceBank` plus the combination rule; adapting fits the weights on the K samples."""

    nonnegative: ClassVar[bool] = True
    min_samples = 2
    PARAMS = ("alpha", "bank_alpha")

    def __init__(self, bank: SourceBank, alpha: float = 1.0) -> None:
        self.bank = bank
        self.alpha = positive_float(type(self).__name__, "alpha", alpha, allow_zero=True)
        self.schema = bank.schema
        self.devices = bank.devices

    @classmethod
    def _settings(cls, params: dict[str, Any]) -> dict[str, Any]:
        bank_alpha = positive_float(cls.__name__, "bank_alpha", params.get("bank_alpha", 1.0), allow_zero=True)
        return {"alpha": params.get("alpha", 1.0), "bank_alpha": bank_alpha}

    @classmethod
    def _pretrain(
        cls, sources: SourceLatencies, featurizer: ArchFeaturizer, settings: dict[str, Any], seed: int,
        progress: ProgressCallback | None,
    ) -> "_CombinationModel":
        """Fit the bank (ridge per source device; ``bank_alpha``) on the source table; ``alpha`` is the ridge penalty of the combination."""
        bank = SourceBank.fit(sources, featurizer, settings["bank_alpha"])
        if progress is not None:
            progress(1, 1)
        return cls(bank, settings["alpha"])

    def _adapt(self, specs: list[str], X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> LinearPredictor:
        S = self.bank.predict(X)
        w, b = combination_weights(S, y, nonnegative=self.nonnegative, alpha=self.alpha)
        predictor = LinearPredictor.from_coefficients(
            self.bank.coef @ w, float(self.bank.intercept @ w + b), self.schema, n_train=len(y), train_hash=data_hash(X, y),
            floor_ms=latency_floor(y),
        )
        predictor.source_weights_ = dict(zip(self.devices, (float(v) for v in w)))
        if progress is not None:
            progress(1, 1)
        return predictor

    def _save_state(self, directory: Path) -> dict[str, Any]:
        self.bank.save(directory / "bank")
        return {"bank": "bank", "alpha": self.alpha}

    @classmethod
    def _load_state(cls, directory: Path, schema: FeatureSchema, devices: tuple[str, ...], state: Mapping[str, Any]) -> "_CombinationModel":
        bank = SourceBank.load(directory / str(state["bank"]))
        if bank.schema != schema or bank.devices != devices:
            raise ConfigError(f"the source bank in {str(directory)!r} does not match its transfer.json (schema or devices differ)")
        return cls(bank, float(state.get("alpha", 1.0)))


def _loo_relative_error(S: np.ndarray, y: np.ndarray, fit: Any) -> float:
    """Mean squared relative error of leave-one-out predictions of the K samples."""
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        w, b = fit(S[keep], y[keep])
        errors.append((float(S[i] @ w + b) - y[i]) / y[i])
    return float(np.mean(np.square(errors)))


class AutoCombination(_CombinationModel):
    """Per new device, the combination its own K samples predict best (leave-one-out over the K samples).

    Candidates: ``nnls`` (non-negative weights: sparse, stable, but unable to
    express a device unlike every source) and ridge over the *standardized*
    source latencies (any sign, penalty ``alpha`` x K on unit-variance
    columns, so its strength does not depend on the sources' ms scale). Both
    share one bank; the result is still a ``linear`` predictor. With fewer
    than ``MIN_LOO`` samples there is nothing to compare: ``nnls``.
    How the candidates and ``alpha`` (0.1) were chosen: docs/predictors.md.
    """

    method = "auto"
    min_samples = 2
    MIN_LOO = 8  # at K = 5 the leave-one-out choice was worse than nnls on the public devices (docs/predictors.md)
    PARAMS = ("alpha", "bank_alpha")

    def __init__(self, bank: SourceBank, alpha: float = 0.1, column_mean: Any = None, column_std: Any = None) -> None:
        super().__init__(bank, alpha)
        d = len(bank.devices)
        self.column_mean = np.zeros(d) if column_mean is None else np.asarray(column_mean, dtype=np.float64)
        self.column_std = np.ones(d) if column_std is None else np.asarray(column_std, dtype=np.float64)
        if self.column_mean.shape != (d,) or self.column_std.shape != (d,) or not np.all(self.column_std > 0):
            raise ConfigError(f"auto: column scaling must be {d} means and {d} positive spreads")

    @classmethod
    def _settings(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {**super()._settings(params), "alpha": params.get("alpha", 0.1)}

    @classmethod
    def _pretrain(cls, sources: SourceLatencies, featurizer: ArchFeaturizer, settings: dict[str, Any], seed: int,
                  progress: ProgressCallback | None) -> "AutoCombination":
        bank = SourceBank.fit(sources, featurizer, settings["bank_alpha"])
        S = bank.predict(featurizer.transform(sources.archs))
        std = S.std(axis=0)
        if progress is not None:
            progress(1, 1)
        return cls(bank, settings["alpha"], S.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def choose(self, S: np.ndarray, y: np.ndarray) -> tuple[str, np.ndarray, float, dict[str, float]]:
        """(chosen candidate, weights on S, intercept, leave-one-out error of each candidate)."""
        Z = (S - self.column_mean) / self.column_std

        def nonneg(A: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
            return combination_weights(A, t, nonnegative=True, alpha=0.0)

        def ridge_z(A: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
            return ridge_fit(A, t, self.alpha * len(t))

        candidates = {"nnls": (S, nonneg), "ridge-standardized": (Z, ridge_z)}
        if len(y) < self.MIN_LOO:
            errors = {"nnls": 0.0}
        else:
            errors = {name: _loo_relative_error(A, y, fit) for name, (A, fit) in candidates.items()}
        name = min(errors, key=errors.get)
        A, fit = candidates[name]
        w, b = fit(A, y)
        if name == "ridge-standardized":  # back to weights on the source latencies themselves
            w = w / self.column_std
            b = float(b - self.column_mean @ w)
        return name, w, float(b), errors

    def _adapt(self, specs: list[str], X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> LinearPredictor:
        S = self.bank.predict(X)
        name, w, b, errors = self.choose(S, y)
        predictor = LinearPredictor.from_coefficients(
            self.bank.coef @ w, float(self.bank.intercept @ w + b), self.schema, n_train=len(y), train_hash=data_hash(X, y),
            floor_ms=latency_floor(y),
        )
        predictor.source_weights_ = dict(zip(self.devices, (float(v) for v in w)))
        predictor.transfer_choice_ = {"chosen": name, "loo_relative_mse": errors}
        if progress is not None:
            progress(1, 1)
        return predictor

    def _save_state(self, directory: Path) -> dict[str, Any]:
        return {**super()._save_state(directory), "column_mean": self.column_mean.tolist(), "column_std": self.column_std.tolist()}

    @classmethod
    def _load_state(cls, directory: Path, schema: FeatureSchema, devices: tuple[str, ...], state: Mapping[str, Any]) -> "AutoCombination":
        base = super()._load_state(directory, schema, devices, state)
        return cls(base.bank, base.alpha, state["column_mean"], state["column_std"])


class RidgeCombination(_CombinationModel):
    """The issue's reference: ridge (alpha = 1) over the source devices' latencies."""

    method = "ridge"
    nonnegative = False


class NNLSCombination(_CombinationModel):
    """Non-negative combination of source devices (free intercept); no penalty to tune."""

    method = "nnls"
    nonnegative = True
