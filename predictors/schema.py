"""The feature schema of a predictor, and the featurizer that reproduces it.

A fitted predictor keeps only its :class:`FeatureSchema`; the featurizer is
rebuilt from the schema's ``kind`` (``"<prefix>:<argument>"``, e.g.
``onehot+counts:nb201``) through the one plugin registry (kind
``"featurizer"``, entry-point group ``hwprof.featurizers``), and must
reproduce the same names and version, otherwise the predictor is stale. This
module depends on nothing else in :mod:`predictors`, so the predictor
contract and the featurizers can both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from hwprof import registry
from hwprof.errors import DataError, UnknownNameError

RAW_KIND = "raw"


@dataclass(frozen=True)
class FeatureSchema:
    """What the columns of X mean: a kind (e.g. ``onehot:nb201``), column names and a version.

    A predictor refuses inputs of another schema, so a model trained on one
    encoding is never silently fed another.
    """

    kind: str
    names: tuple[str, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise DataError(f"feature schema kind must be a non-empty string, got {self.kind!r}")
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise DataError(f"feature schema {self.kind!r} repeats feature names {dup[:5]}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise DataError(f"feature schema version must be a positive integer, got {self.version!r}")

    @property
    def width(self) -> int:
        return len(self.names)

    @classmethod
    def raw(cls, width: int) -> FeatureSchema:
        """Anonymous columns ``x0..x{width-1}``, for plain matrices without a featurizer."""
        return cls(RAW_KIND, tuple(f"x{i}" for i in range(width)))

    def describe(self) -> str:
        return f"{self.kind!r} v{self.version} ({self.width} features)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "names": list(self.names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSchema:
        try:
            return cls(kind=data["kind"], names=tuple(data["names"]), version=data.get("version", 1))
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed feature schema {data!r}: missing or bad field {exc}") from None


@runtime_checkable
class Featurizer(Protocol):
    schema: FeatureSchema

    def transform(self, items: Sequence[Any]) -> np.ndarray:
        """Feature matrix (len(items), schema.width), float64."""


FeaturizerFactory = Callable[[str], Featurizer]


def register_featurizer(prefix: str, factory: FeaturizerFactory | str) -> None:
    """Make ``get_featurizer("<prefix>:...")`` call ``factory(kind)`` (for features a notebook or test defines).

    A package ships its own featurizers as entry points of the
    ``hwprof.featurizers`` group instead; ``factory`` may be a ``"module:attr"`` path.
    """
    registry.register("featurizer", prefix, factory)


def featurizer_prefixes() -> list[str]:
    return registry.names("featurizer")


def get_featurizer(kind: str) -> Featurizer:
    """The featurizer for a schema kind such as ``onehot+counts:nb201``."""
    prefix = kind.split(":", 1)[0]
    if prefix not in registry.names("featurizer"):
        raise UnknownNameError(f"unknown feature kind {kind!r}; known prefixes: {', '.join(featurizer_prefixes())}")
    return registry.load("featurizer", prefix)(kind)


def featurizer_for_schema(schema: FeatureSchema) -> Featurizer:
    """Rebuild the featurizer of a fitted predictor; DataError when it no longer yields the same features."""
    if schema.kind == RAW_KIND:
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
