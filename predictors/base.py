"""The predictor contract (scikit-learn style).

``__init__`` only stores parameters; ``fit`` validates data and parameters and
returns ``self``; fitted state lives in attributes ending in ``_``. A
subclass implements ``_fit``/``_predict`` plus ``_save_state``/``_load_state``
(its model in a portable format, see :mod:`predictors.persistence`) and is
registered under ``name`` in the ``hwprof.predictors`` entry-point group.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, NotFittedError
from hwprof.types import Architecture
# FeatureSchema and RAW_KIND are re-exported: code written against predictors.base keeps working.
from predictors.schema import RAW_KIND, FeatureSchema, Featurizer, featurizer_for_schema  # noqa: F401

if TYPE_CHECKING:
    from predictors.context import ArchContext


# progress(done, total): called by long-running fits (boosting rounds, epochs, tuning candidates).
ProgressCallback = Callable[[int, int], None]

def check_X(X: Any, n_features: int | None = None) -> np.ndarray:
    """X as a finite float64 2-D array (with ``n_features`` columns when given)."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"expected a numeric 2-D X, got {type(X).__name__}") from None
    if arr.ndim != 2:
        raise DataError(f"expected 2-D X, got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"expected X with {n_features} features, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"X holds a non-finite value {arr[r, c]} at row {r}, column {c}; expected finite numbers")
    return np.ascontiguousarray(arr)


def check_y(y: Any, n_rows: int | None = None) -> np.ndarray:
    """y as a finite, positive float64 1-D array of latencies (ms)."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"expected numeric latencies y, got {type(y).__name__}") from None
    if arr.ndim != 1:
        raise DataError(f"expected 1-D y, got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(f"X has {n_rows} rows but y has {arr.shape[0]} values; expected one latency per row")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"latency y[{i}] = {arr[i]}; expected finite positive milliseconds ({bad.size} bad value(s))")
    return np.ascontiguousarray(arr)


class NonFinitePrediction(DataError):
    """A model answered NaN or infinity: its parameters are corrupt or the input lies far outside what it learnt."""


def check_predictions(pred: np.ndarray, owner: str) -> np.ndarray:
    """``pred`` when every value is finite, else NonFinitePrediction naming the first bad row."""
    bad = np.flatnonzero(~np.isfinite(pred))
    if bad.size:
        i = int(bad[0])
        raise NonFinitePrediction(
            f"{owner} predicted {pred[i]} ms for row {i} ({bad.size} of {pred.size} non-finite); expected finite "
            "milliseconds: the model's parameters are corrupt or the input is far outside its training data"
        )
    return pred


def finite_values(what: str, values: Any) -> np.ndarray:
    """``values`` as a float64 array when all are finite, else DataError (a saved model file holding NaN or inf)."""
    arr = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
    if bad.size:
        raise DataError(f"{what} holds {bad.size} non-finite value(s), e.g. {arr.reshape(-1)[int(bad[0])]}; expected finite numbers")
    return arr


def check_training_data(X: Any, y: Any, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    X = check_X(X)
    y = check_y(y, X.shape[0])
    if X.shape[0] < min_samples:
        raise DataError(f"need at least {min_samples} training samples, got {X.shape[0]}")
    if X.shape[1] == 0:
        raise DataError(f"expected at least one feature, got shape {X.shape}")
    return X, y


# A linear model (or a few-shot combination of source devices) can extrapolate to zero or below for the
# smallest networks, and a latency of -0.2 ms is wrong output, not a prediction. Below this fraction of
# the fastest latency a predictor learned from, its answers are squeezed into (floor / 2, floor] (soft_floor).
FLOOR_FRACTION = 0.1


def latency_floor(y: Any) -> float:
    """The prediction floor (ms) of a predictor trained on latencies ``y``: FLOOR_FRACTION x the smallest."""
    return FLOOR_FRACTION * float(np.min(np.asarray(y, dtype=np.float64)))


def soft_floor(pred: np.ndarray, floor_ms: float) -> np.ndarray:
    """``pred`` above ``floor``; below it ``h + h^2 / (h + floor - pred)`` with ``h = floor / 2``: in [h, floor].

    The map is increasing (an order of networks, a Spearman, a search's choices are kept), smooth at the
    floor (value and slope match) and never below half the floor, however far a linear model extrapolates.
    A floor of 0 (a predictor saved before floors) has nothing to squeeze into: a prediction <= 0 is a DataError.
    """
    if floor_ms <= 0:
        bad = np.flatnonzero(pred <= 0)
        if bad.size:
            raise DataError(
                f"predicted {pred[bad[0]]:.4g} ms for row {int(bad[0])} ({bad.size} of {pred.size} <= 0); this predictor "
                "was saved before hwprof kept a prediction floor: train or adapt it again"
            )
        return pred
    below = pred < floor_ms
    if not below.any():
        return pred
    out = pred.copy()
    half = floor_ms / 2
    out[below] = half + half * half / (half + (floor_ms - pred[below]))
    return out


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training data (shapes, then X and y as little-endian float64 bytes)."""
    h = hashlib.sha256()
    X = np.ascontiguousarray(X, dtype="<f8")
    y = np.ascontiguousarray(y, dtype="<f8")
    h.update(f"{X.shape}{y.shape}".encode())
    h.update(X.tobytes())
    h.update(y.tobytes())
    return h.hexdigest()


def arch_specs(archs: Sequence[str | Architecture]) -> list[str]:
    return [a.spec if isinstance(a, Architecture) else str(a) for a in archs]


class Predictor(ABC):
    """Latency predictor: ``fit(X, y)`` on features and measured milliseconds, ``predict(X)``.

    Subclasses declare every parameter as an explicit keyword of ``__init__`` and
    store it unchanged under the same attribute name (that is what
    ``get_params`` and persistence rely on); validation belongs in
    ``_check_params``, called by ``fit``.
    """

    name: ClassVar[str] = ""
    min_samples: ClassVar[int] = 2  # rows of X that fit() needs
    # Architectures fit_archs() needs; None: one feature row per architecture, so min_samples.
    min_archs: ClassVar[int | None] = None
    # The predictor computes its own features (e.g. from exported graphs): a feature-set choice is refused.
    fixed_features: ClassVar[bool] = False
    # The predictor learns from what only a store's measurements give (their device settings, e.g. to
    # re-profile the networks the same way): training data from a CSV is refused.
    needs_store: ClassVar[bool] = False
    # predict_archs builds and exports every network (slow): a search cost must not cost a whole space with it.
    exports_networks: ClassVar[bool] = False

    @classmethod
    def min_training_archs(cls) -> int:
        """How many architectures :meth:`fit_archs` needs at least (a workflow checks before it starts)."""
        return cls.min_archs if cls.min_archs is not None else cls.min_samples

    # --- parameters ----------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._param_names()}

    def set_params(self, **params: Any) -> "Predictor":
        known = self._param_names()
        for key, value in params.items():
            if key not in known:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}; known: {', '.join(known)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:
        """Raise ConfigError for invalid parameter values (called by fit, and by loading a saved predictor)."""

    # --- fit / predict ----------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        schema: FeatureSchema | None = None,
        progress: ProgressCallback | None = None,
    ) -> "Predictor":
        """Train on features X (n, d) and latencies y (n,) in ms; returns self."""
        self._check_params()
        X, y = check_training_data(X, y, self.min_samples)
        if schema is None:
            schema = FeatureSchema.raw(X.shape[1])
        if schema.width != X.shape[1]:
            raise DataError(f"feature schema {schema.describe()} does not match X of shape {X.shape}")
        self._fit(X, y, progress)
        self.schema_ = schema
        self.n_features_in_ = X.shape[1]
        self.n_train_ = X.shape[0]
        self.train_hash_ = data_hash(X, y)
        self.floor_ms_ = latency_floor(y)
        self._featurizer = None
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latency (ms) per row of X."""
        self._check_fitted()
        X = check_X(X, self.n_features_in_)
        pred = check_predictions(np.asarray(self._predict(X), dtype=np.float64).reshape(-1), type(self).__name__)
        return soft_floor(pred, self.floor_ms_)

    def fit_archs(
        self,
        archs: Sequence[str | Architecture],
        y: Any,
        *,
        featurizer: "Featurizer | None" = None,
        context: "ArchContext | None" = None,
        progress: ProgressCallback | None = None,
    ) -> "Predictor":
        """Train on architecture specs and their latencies (ms); returns self.

        The default featurizes with ``featurizer`` and calls :meth:`fit`;
        predictors that work on exported graphs override it and use ``context``.
        """
        if featurizer is None:
            raise ConfigError(f"{type(self).__name__}.fit_archs needs a featurizer (e.g. predictors.schema.get_featurizer('onehot+counts:nb201'))")
        return self.fit(featurizer.transform(list(archs)), y, schema=featurizer.schema, progress=progress)

    def predict_archs(self, archs: Sequence[str | Architecture], *, context: "ArchContext | None" = None) -> np.ndarray:
        """Predicted latency (ms) of architecture specs, featurized with the fitted schema."""
        self._check_fitted()
        return self.predict(self.featurizer.transform(archs))

    @property
    def featurizer(self) -> Featurizer:
        """The featurizer rebuilt from the fitted schema (ConfigError for raw features)."""
        self._check_fitted()
        if getattr(self, "_featurizer", None) is None:
            self._featurizer = featurizer_for_schema(self.schema_)
        return self._featurizer

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "schema_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first or load a saved one")

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> None:
        """Train on validated data."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Predict on validated X."""

    # --- persistence hooks (see predictors.persistence) --------------------------------
    @abstractmethod
    def _save_state(self, directory: Path) -> dict[str, Any]:
        """Write the fitted model into ``directory`` in a portable format; return JSON-able state."""

    @abstractmethod
    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        """Restore the fitted model written by ``_save_state`` (schema attributes are set by the loader)."""

    def _restore_common(self, schema: FeatureSchema, n_train: int, train_hash: str, floor_ms: float = 0.0) -> None:
        """The fitted attributes every predictor has; ``floor_ms`` 0 (a file saved before floors) only keeps
        predictions non-negative."""
        self.schema_ = schema
        self.n_features_in_ = schema.width
        self.n_train_ = n_train
        self.train_hash_ = train_hash
        self.floor_ms_ = float(floor_ms)
        self._featurizer = None


def positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_bool(owner: str, name: str, value: Any) -> bool:
    """A switch must be a real bool: the string ``"false"`` is truthy and would silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{owner}: {name} must be true or false, got {value!r}")
    return bool(value)


def positive_float(owner: str, name: str, value: Any, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0) and (maximum is None or value <= maximum)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{owner}: {name} must be a finite number {bound}{upper}, got {value!r}")
    return float(value)
