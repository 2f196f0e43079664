"""Featurizers turn architectures (or exported graphs) into a feature matrix plus its schema.

The lookup by schema kind lives in :mod:`predictors.schema` (through the one
plugin registry, kind ``"featurizer"``); it is re-exported here, where users
look for it.
"""

from __future__ import annotations

from predictors.schema import (
    FeatureSchema,
    Featurizer,
    FeaturizerFactory,
    featurizer_for_schema,
    featurizer_prefixes,
    get_featurizer,
    register_featurizer,
)

__all__ = [
    "FeatureSchema",
    "Featurizer",
    "FeaturizerFactory",
    "featurizer_for_schema",
    "featurizer_prefixes",
    "get_featurizer",
    "register_featurizer",
]
