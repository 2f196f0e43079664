"""Latency from a trained predictor: cheap enough to cost the whole space."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError
from hwprof.types import Architecture


class PredictorCost:
    """Wraps any object with ``predict_archs(list[Architecture]) -> np.ndarray`` (milliseconds).

    Predictions are cached per architecture: search algorithms ask for the same
    architecture many times, and a predictor call has fixed overhead.
    """

    cheap = True

    def __init__(self, predictor: Any, name: str = "latency_ms", unit: str = "ms", source: str = "") -> None:
        if not callable(getattr(predictor, "predict_archs", None)):
            raise ConfigError(
                f"PredictorCost needs an object with predict_archs(archs), got {type(predictor).__name__}"
            )
        self.predictor = predictor
        self.name = name
        self.unit = unit
        self.source = source or type(predictor).__name__
        self._cache: dict[Architecture, float] = {}

    @classmethod
    def load(cls, directory: str | Path, name: str = "latency_ms") -> "PredictorCost":
        """A predictor saved with ``predictors.persistence`` (``hwprof predict train``)."""
        try:
            from predictors.persistence import load_predictor
        except ImportError as exc:
            raise ConfigError(f"cannot load predictors ({exc}); is the predictors package installed?") from exc
        return cls(load_predictor(directory), name=name, source=f"predictor {directory}")

    def describe(self) -> str:
        return f"{self.name} predicted by {self.source}"

    def cost(self, arch: Architecture) -> float:
        return float(self.costs([arch])[0])

    def costs(self, archs: Sequence[Architecture]) -> np.ndarray:
        todo = list(dict.fromkeys(a for a in archs if a not in self._cache))
        if todo:
            pred = np.asarray(self.predictor.predict_archs(todo), dtype=np.float64).reshape(-1)
            if pred.shape != (len(todo),):
                raise DataError(f"{self.source} returned {pred.size} predictions for {len(todo)} architectures; expected one each")
            if not np.all(np.isfinite(pred)):
                raise DataError(f"{self.source} predicted a non-finite {self.name}; expected finite numbers")
            self._cache.update(zip(todo, pred.tolist()))
        return np.fromiter((self._cache[a] for a in archs), dtype=np.float64, count=len(archs))
