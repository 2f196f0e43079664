"""Features of the work an exported network really does: each architecture described by its live equivalent.

hwprof's exporters drop the operations of a cell node whose output reaches
the cell output through no live edge (a *dead* node; NB201's ``none`` edges
make them). Published latency tables were measured on networks that keep
them, so the same spec names different work there and on a device measured
through hwprof. A few-shot predictor for such a device must therefore learn
and predict on ``space.live_equivalent(arch)``: ``live:onehot+counts:nb201``
is the ``onehot+counts`` featurization of the live equivalent. Making the
*predictor* see live architectures (rather than re-labelling the source
table's rows) matters: an additive model of the sources applied to the live
equivalent is exactly what the sources measured for that work, while an
additive model fitted to a re-labelled table cannot express "this operation
is free when its node is dead" (docs/predictors.md, own-device figures).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwprof import registry
from hwprof.errors import UnknownNameError
from hwprof.types import Architecture
from predictors.base import Predictor, ProgressCallback
from predictors.features.encoding import ArchFeaturizer
from predictors.schema import FeatureSchema

LIVE_PREFIX = "live"


def has_dead_operations(space: str) -> bool:
    """True when the space's exported networks can drop operations (it defines ``live_equivalent``)."""
    return callable(getattr(registry.get_space(space), "live_equivalent", None))


def live_specs(space: str, archs: Sequence[str | Architecture]) -> list[str]:
    """The live-equivalent spec of each architecture (unchanged in a space without dead operations)."""
    specs = [a.spec if isinstance(a, Architecture) else a for a in archs]
    mapper = getattr(registry.get_space(space), "live_equivalent", None)
    if mapper is None:
        return list(specs)
    return [mapper(Architecture(space, s)).spec for s in specs]


class LiveFeaturizer:
    """``live:<feature set>:<space>``: an architecture feature set of each network's live equivalent.

    Not a linear map of the encoding (no ``matrix``), so a predictor on these
    features has no differentiable module; it predicts from specs.
    """

    def __init__(self, space: str, feature_set: str) -> None:
        self.inner = ArchFeaturizer(space, feature_set)
        self.space = self.inner.space.name
        inner = self.inner.schema
        self.schema = FeatureSchema(f"{LIVE_PREFIX}:{inner.kind}", inner.names, inner.version)
        self._live: dict[tuple[int, ...], tuple[int, ...]] = {}  # choices -> choices of the live equivalent

    @classmethod
    def from_kind(cls, kind: str) -> "LiveFeaturizer":
        prefix, _, rest = kind.partition(":")
        feature_set, sep, space = rest.partition(":")
        if prefix != LIVE_PREFIX or not sep or not space:
            raise UnknownNameError(f"feature kind {kind!r} is not of the form 'live:<feature set>:<space>', e.g. 'live:onehot+counts:nb201'")
        return cls(space, feature_set)

    def __repr__(self) -> str:
        return f"LiveFeaturizer({self.space!r}, {self.inner.feature_set!r})"

    def transform(self, archs: Sequence[str | Architecture]) -> np.ndarray:
        space = self.inner.space
        mapper = getattr(space, "live_equivalent", None)
        choices = self.inner.choices(archs)  # a bad architecture is named by its row
        if mapper is None:
            return self.inner.from_encoding(space.encode_choices(choices))
        live = np.empty_like(choices)
        for i, row in enumerate(choices):
            key = tuple(int(v) for v in row)
            if key not in self._live:
                self._live[key] = tuple(space.to_choices(mapper(space.from_choices(key))))
            live[i] = self._live[key]
        return self.inner.from_encoding(space.encode_choices(live))


def live_predictor(predictor: Predictor, schema: FeatureSchema) -> Predictor:
    """``predictor`` (fitted on the plain features of live-equivalent specs) relabelled to featurize live specs itself.

    Both featurizations give identical columns for a live spec, so only the
    schema changes: a saved predictor then maps any spec to its live
    equivalent before predicting (``hwprof predict``, search costs).
    """
    live = LiveFeaturizer.from_kind(f"{LIVE_PREFIX}:{schema.kind}")
    if live.schema.names != predictor.schema_.names or live.schema.version != predictor.schema_.version:
        raise UnknownNameError(f"cannot describe features of kind {predictor.schema_.kind!r} by live equivalents")
    predictor.schema_ = live.schema
    predictor._featurizer = live
    return predictor


def adapt_live(model: Any, archs: Sequence[str], latency_ms: Any, *, progress: ProgressCallback | None = None) -> Predictor:
    """``model.adapt`` for a device measured through hwprof: fitted on, and predicting for, live-equivalent networks.

    Spaces without dead operations adapt unchanged. Two samples with the same
    live equivalent are one network to the sources: their mean latency is used.
    """
    space = model.featurizer.space.name
    if not has_dead_operations(space):
        return model.adapt(archs, latency_ms, progress=progress)
    from predictors.base import arch_specs, check_y

    specs = arch_specs(archs)
    y = check_y(latency_ms, len(specs))
    live = live_specs(space, specs)
    groups: dict[str, list[float]] = {}
    for spec, value in zip(live, y):
        groups.setdefault(spec, []).append(float(value))
    merged = list(groups)
    predictor = model.adapt(merged, [float(np.mean(groups[s])) for s in merged], progress=progress)
    return live_predictor(predictor, model.schema)
