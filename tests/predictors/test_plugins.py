"""Featurizers and few-shot methods are found through the one plugin registry (``hwprof.registry``)."""

from __future__ import annotations

import numpy as np
import pytest

from hwprof import registry
from hwprof.errors import PersistenceError, UnknownNameError
from predictors import transfer
from predictors.features import featurizer_prefixes, get_featurizer, register_featurizer
from predictors.schema import FeatureSchema
from predictors.transfer.combination import NNLSCombination


class _Length:
    """Third-party features: the length of the spec string."""

    def __init__(self, kind: str) -> None:
        self.schema = FeatureSchema(kind, ("length",))

    def transform(self, items):
        return np.array([[float(len(str(i)))] for i in items])


def test_builtin_featurizers_come_from_entry_points():
    assert {"onehot", "onehot+counts", "flops", "graph", "ops-nodes"} <= set(registry.names("featurizer"))
    assert get_featurizer("onehot:nb201").schema.kind == "onehot:nb201"
    with pytest.raises(UnknownNameError, match="unknown feature kind 'magic:nb201'; known prefixes: .*onehot"):
        get_featurizer("magic:nb201")


def test_register_featurizer_is_a_registry_entry():
    register_featurizer("length", _Length)
    try:
        assert "length" in featurizer_prefixes() and "length" in registry.names("featurizer")
        np.testing.assert_array_equal(get_featurizer("length:any").transform(["abc"]), [[3.0]])
    finally:
        registry.unregister("featurizer", "length")
    assert "length" not in featurizer_prefixes()


class _Positive(NNLSCombination):
    method = "positive-test"


def test_transfer_methods_come_from_the_registry(nb201_rows, tmp_path):
    assert transfer.transfer_methods() == ["auto", "embedding", "finetune", "nnls", "ridge"]
    with pytest.raises(UnknownNameError, match="unknown few-shot method 'magic'; known: auto, embedding, finetune, nnls, ridge"):
        transfer.get_transfer_method("magic")
    archs, lat = nb201_rows
    sources = transfer.SourceLatencies.from_columns(archs, {d: lat[d] for d in ("titanx_32", "pixel3")})
    registry.register("transfer", _Positive.method, _Positive)
    try:
        model = transfer.pretrain(_Positive.method, sources)
        assert isinstance(model, _Positive) and _Positive.method in transfer.transfer_methods()
        model.save(tmp_path / "m")
        assert isinstance(transfer.load_transfer_model(tmp_path / "m"), _Positive)
    finally:
        registry.unregister("transfer", _Positive.method)
    with pytest.raises(PersistenceError, match="unusable few-shot method"):
        transfer.load_transfer_model(tmp_path / "m")


def test_one_pretrain_signature():
    assert all("pretrain" not in vars(transfer.get_transfer_method(m)) for m in transfer.transfer_methods())
