"""Featurizers turn architectures (or exported graphs) into a feature matrix plus its schema.

A saved predictor keeps only its :class:`~predictors.base.FeatureSchema`; the
featurizer is rebuilt from the schema's ``kind`` (``"<prefix>:<argument>"``,
e.g. ``onehot+counts:nb201``) through this registry, and must reproduce the
same names and version, otherwise the predictor is stale.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from hwprof.errors import DataError, UnknownNameError
from predictors.base import FeatureSchema


@runtime_checkable
class Featurizer(Protocol):
    schema: FeatureSchema

    def transform(self, items: Sequence[Any]) -> np.ndarray:
        """Feature matrix (len(items), schema.width), float64."""


# kind prefix -> "module:callable" taking the full kind string; imported on first use.
_BUILTIN: dict[str, str] = {
    "onehot": "predictors.features.encoding:ArchFeaturizer.from_kind",
    "onehot+counts": "predictors.features.encoding:ArchFeaturizer.from_kind",
    "flops": "predictors.features.encoding:ArchFeaturizer.from_kind",
    "graph": "predictors.features.graph:GraphFeaturizer.from_kind",
    "ops-nodes": "predictors.ops:NodeFeaturizer.from_kind",
}
_FACTORIES: dict[str, Callable[[str], Featurizer]] = {}


def register_featurizer(prefix: str, factory: Callable[[str], Featurizer]) -> None:
    """Make ``get_featurizer("<prefix>:...")`` call ``factory(kind)`` (for third-party features)."""
    _FACTORIES[prefix] = factory


def _resolve(target: str) -> Callable[[str], Featurizer]:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def featurizer_prefixes() -> list[str]:
    return sorted(set(_BUILTIN) | set(_FACTORIES))


def get_featurizer(kind: str) -> Featurizer:
    """The featurizer for a schema kind such as ``onehot+counts:nb201``."""
    prefix = kind.split(":", 1)[0]
    if prefix in _FACTORIES:
        return _FACTORIES[prefix](kind)
    if prefix in _BUILTIN:
        return _resolve(_BUILTIN[prefix])(kind)
    raise UnknownNameError(f"unknown feature kind {kind!r}; known prefixes: {', '.join(featurizer_prefixes())}")


def featurizer_for_schema(schema: FeatureSchema) -> Featurizer:
    """Rebuild the featurizer of a fitted predictor; DataError when it no longer yields the same features."""
    if schema.kind == "raw":
        raise DataError("this predictor was trained on raw feature columns; pass a feature matrix to predict(), not architectures")
    featurizer = get_featurizer(schema.kind)
    if featurizer.schema != schema:
        got = featurizer.schema
        if got.version != schema.version:
            why = f"version {schema.version} saved, {got.version} now"
        elif got.names != schema.names:
            diff = next((f"{a!r} vs {b!r}" for a, b in zip(schema.names, got.names) if a != b), f"{schema.width} vs {got.width} features")
            why = f"feature names differ ({diff})"
        else:
            why = "schema differs"
        raise DataError(f"features of kind {schema.kind!r} changed since this predictor was trained: {why}; retrain it")
    return featurizer
