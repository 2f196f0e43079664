"""Latency from a trained predictor: cheap enough to cost the whole space."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, HwprofError, PersistenceError
from hwprof.types import Architecture

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace


class PredictorCost:
    """Wraps any object with ``predict_archs(list[Architecture]) -> np.ndarray`` (milliseconds).

    Predictions are cached per architecture: search algorithms ask for the same
    architecture many times, and a predictor call has fixed overhead. A
    predictor that builds and exports every network it predicts (its class
    says ``exports_networks = True``, e.g. ``ops``) is not cheap: the search
    does not enumerate the space with it.
    """

    cheap = True

    def __init__(self, predictor: Any, name: str = "latency_ms", unit: str = "ms", source: str = "") -> None:
        if not callable(getattr(predictor, "predict_archs", None)):
            raise ConfigError(
                f"PredictorCost needs an object with predict_archs(archs), got {type(predictor).__name__}"
            )
        self.predictor = predictor
        self.cheap = not getattr(predictor, "exports_networks", False)
        self.name = name
        self.unit = unit
        self.source = source or type(predictor).__name__
        self._cache: dict[Architecture, float] = {}

    @classmethod
    def load(cls, directory: str | Path, name: str = "latency_ms", space: "SearchSpace | None" = None) -> "PredictorCost":
        """A predictor saved with ``predictors.persistence`` (``hwprof predict train``).

        With ``space``, a predictor that cannot cost that space's architectures
        (fitted on raw columns, or on another space's features) is refused here
        with a ``PersistenceError``, before a search starts.
        """
        try:
            from predictors.persistence import load_predictor
        except ImportError as exc:
            raise ConfigError(f"cannot load predictors ({exc}); is the predictors package installed?") from exc
        predictor = load_predictor(directory)
        if space is not None:
            _check_predictor_space(predictor, str(directory), space)
        return cls(predictor, name=name, source=f"predictor {directory}")

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


def _check_predictor_space(predictor: Any, where: str, space: "SearchSpace") -> None:
    """PersistenceError unless ``predictor`` featurizes and predicts ``space``'s architectures."""
    schema = getattr(predictor, "schema_", None)
    kind = getattr(schema, "kind", "?")
    if kind == "raw":
        raise PersistenceError(
            f"predictor {where!r} was fitted on raw feature columns, so it cannot cost architectures; "
            f"expected one fitted on architecture features (e.g. 'onehot+counts:{space.name}')"
        )
    try:
        trained_on = getattr(getattr(predictor.featurizer, "space", None), "name", None)
        if trained_on is not None and trained_on != space.name:
            raise PersistenceError(
                f"predictor {where!r} was fitted on {trained_on} architectures (features {kind!r}), "
                f"not {space.name}; expected a predictor for the searched space"
            )
        probe = space.from_choices([0] * space.num_layers)
        pred = np.asarray(predictor.predict_archs([probe]), dtype=np.float64).reshape(-1)
    except PersistenceError:
        raise
    except HwprofError as exc:
        raise PersistenceError(f"predictor {where!r} cannot cost {space.name} architectures: {exc}") from None
    if pred.shape != (1,) or not np.isfinite(pred[0]):
        raise PersistenceError(f"predictor {where!r} returned {pred.tolist()} for one {space.name} architecture; expected one finite number")
