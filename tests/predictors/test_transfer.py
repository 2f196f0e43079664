"""Transfer building blocks: source latency tables, the source bank and the choice of K architectures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, PersistenceError
from predictors.features.encoding import ArchFeaturizer
from predictors.transfer import SELECTION_METHODS, SourceBank, SourceLatencies, standardized_log, suggest_samples

DEVICES = ("titanx_1", "titanx_32", "silver_4114", "pixel3")


@pytest.fixture(scope="module")
def table(nb201_rows):
    archs, lat = nb201_rows
    return SourceLatencies.from_columns(archs, lat, devices=DEVICES)


def test_from_columns_selects_and_excludes(nb201_rows):
    archs, lat = nb201_rows
    t = SourceLatencies.from_columns(archs, lat, exclude=["titanx_1"])
    assert "titanx_1" not in t.devices and len(t.devices) == len(lat) - 1
    assert t.latency_ms.shape == (len(archs), len(lat) - 1)
    assert not t.latency_ms.flags.writeable
    sub = t.select(["pixel3", "gold_6240"])
    np.testing.assert_array_equal(sub.latency_ms[:, 0], lat["pixel3"])
    assert t.without(["pixel3"]).devices == tuple(d for d in t.devices if d != "pixel3")


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"devices": ["nope"]}, "unknown source device"),
        ({"devices": ["pixel3"], "exclude": ["pixel3"]}, "every source device was excluded"),
    ],
)
def test_from_columns_errors(nb201_rows, kwargs, needle):
    archs, lat = nb201_rows
    with pytest.raises(DataError, match=needle):
        SourceLatencies.from_columns(archs, lat, **kwargs)


def test_bad_latencies_name_the_architecture_and_device():
    lat = np.ones((3, 2))
    lat[1, 1] = -2.0
    with pytest.raises(DataError, match=r"of 'b' on 'd2' is -2.0"):
        SourceLatencies(("a", "b", "c"), ("d1", "d2"), lat)
    with pytest.raises(DataError, match="do not match"):
        SourceLatencies(("a",), ("d1", "d2"), np.ones((3, 2)))
    with pytest.raises(DataError, match="repeat"):
        SourceLatencies(("a",), ("d1", "d1"), np.ones((1, 2)))


def test_standardized_log_has_zero_mean_unit_std_per_device():
    z = standardized_log(np.array([[1.0, 10.0], [2.0, 10.0], [4.0, 10.0]]))
    np.testing.assert_allclose(z[:, 0].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, 0].std(), 1.0)
    np.testing.assert_array_equal(z[:, 1], 0.0)  # a constant device stays finite


def test_bank_predicts_sources_and_round_trips(table, tmp_path):
    f = ArchFeaturizer("nb201", "onehot+counts")
    bank = SourceBank.fit(table, f)
    pred = bank.predict_archs(list(table.archs))
    assert pred.shape == (len(table.archs), len(DEVICES))
    for j in range(len(DEVICES)):  # an additive model of each source is a good ranker of it
        from scipy.stats import spearmanr

        assert spearmanr(pred[:, j], table.latency_ms[:, j])[0] > 0.9
    assert np.all(pred >= bank.floor_ms)
    bank.save(tmp_path / "b")
    again = SourceBank.load(tmp_path / "b")
    np.testing.assert_array_equal(again.predict_archs(list(table.archs[:20])), pred[:20])
    assert again.without(["pixel3"]).devices == DEVICES[:3]


def test_bank_load_refusals(table, tmp_path):
    bank = SourceBank.fit(table, ArchFeaturizer("nb201", "onehot"))
    bank.save(tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "bank.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "b" / "bank.json").write_text(json.dumps(meta))
    with pytest.raises(PersistenceError, match="newer"):
        SourceBank.load(tmp_path / "b")
    with pytest.raises(PersistenceError, match="bank.json is missing"):
        SourceBank.load(tmp_path / "nothing")


def test_bank_needs_enough_source_architectures(table):
    few = SourceLatencies(table.archs[:5], table.devices, table.latency_ms[:5])
    with pytest.raises(DataError, match="at least 20 source architectures"):
        SourceBank.fit(few, ArchFeaturizer("nb201", "onehot"))


@pytest.mark.parametrize("method", SELECTION_METHODS)
def test_selection_gives_k_distinct_rows_reproducibly(table, method):
    a = suggest_samples(8, table.latency_ms, seed=1, method=method)
    b = suggest_samples(8, table.latency_ms, seed=1, method=method)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 8 and a.min() >= 0 and a.max() < len(table.archs)


def test_farthest_point_sampling_spans_the_latency_range(table):
    rows = suggest_samples(10, table.latency_ms, seed=0, method="farthest")
    mean_z = standardized_log(table.latency_ms).mean(axis=1)
    # The fastest and the slowest network are extreme points: farthest-point sampling reaches both ends.
    lo, hi = np.quantile(mean_z, [0.02, 0.98])
    assert mean_z[rows].min() <= lo and mean_z[rows].max() >= hi


def test_selection_respects_the_pool(table):
    pool = list(range(50, 80))
    rows = suggest_samples(5, table.latency_ms, pool=pool)
    assert set(rows.tolist()) <= set(pool)


@pytest.mark.parametrize(
    "kwargs, error, needle",
    [
        ({"k": 0}, ConfigError, "positive integer"),
        ({"k": 3, "method": "best"}, ConfigError, "unknown selection method"),
        ({"k": 5, "pool": [1, 2]}, DataError, "cannot choose 5 architectures from 2"),
        ({"k": 2, "pool": [10_000]}, DataError, "pool indices"),
    ],
)
def test_selection_errors(table, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        suggest_samples(source_latency_matrix=table.latency_ms, **kwargs)
