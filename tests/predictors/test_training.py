"""The train/evaluate/predict workflow as library calls (what `hwprof train/evaluate/predict` run)."""

from __future__ import annotations

import numpy as np
import pytest

from hwprof import registry
from hwprof.errors import ConfigError, DataError
from predictors.data import LatencyData, from_csv
from predictors.linear import LinearPredictor
from predictors.persistence import load_predictor, read_info
from predictors.training import (
    evaluate_saved,
    make_predictor,
    predict_latencies,
    train_predictor,
)
from tests.predictors.conftest import write_table

FAST = {"n_estimators": 40, "learning_rate": 0.2}


@pytest.fixture(scope="module")
def data(tmp_path_factory, nb201_rows):
    archs, lat = nb201_rows
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    write_table(path, archs[:120], {"titanx_1": lat["titanx_1"][:120]})
    return from_csv(path, "titanx_1")


def test_train_predictor_splits_fits_measures_and_saves(data, tmp_path):
    result = train_predictor(data, "gbdt", FAST, n_train=100, seed=1)
    assert len(result.train_idx) == 100 and result.held_out.n == 20 and result.train_metrics.n == 100
    assert result.predictor.random_state == 1
    assert result.extra["split"] == {"seed": 1, "val_fraction": 0.2, "n_train": 100, "n_val": 20}
    assert result.extra["features"] == "onehot+counts" and result.extra["space"] == "nb201"
    result.save(tmp_path / "p")
    info = read_info(tmp_path / "p")
    assert info.device == "titanx_1" and info.metrics == result.held_out
    again = train_predictor(data, make_predictor("gbdt", FAST, 1), n_train=100, seed=1)
    np.testing.assert_array_equal(
        predict_latencies(again.predictor, data.archs), predict_latencies(load_predictor(tmp_path / "p"), data.archs)
    )


def test_evaluate_saved_measures_on_the_device_it_was_trained_for(data, tmp_path):
    train_predictor(data, "linear", features="onehot").save(tmp_path / "lin")
    source = data.source.removeprefix("csv:")
    evaluation = evaluate_saved(tmp_path / "lin", csv_path=source, target="lat_titanx_1_ms")
    assert evaluation.metrics.n == len(data) and evaluation.data.device == "titanx_1"
    np.testing.assert_allclose(evaluation.predicted_ms, load_predictor(tmp_path / "lin").predict_archs(list(data.archs)))


class _GraphOnly(LinearPredictor):
    """A predictor that brings its own features and learns from a store, as the ops predictor does."""

    name = "graph-only-test"
    fixed_features = True
    needs_store = True


def test_predictor_declared_needs_are_checked_generically(data):
    registry.register("predictor", _GraphOnly.name, _GraphOnly)
    try:
        with pytest.raises(ConfigError, match="has fixed features of its own; drop --features"):
            train_predictor(data, _GraphOnly.name, features="onehot")
        with pytest.raises(ConfigError, match="train it with --db, not --csv"):
            train_predictor(data, _GraphOnly.name)
    finally:
        registry.unregister("predictor", _GraphOnly.name)


def test_too_few_training_architectures_and_a_lone_validation_row_are_refused(data):
    with pytest.raises(DataError, match="needs at least 5 training architectures, got 3"):
        train_predictor(data, "gbdt", n_train=3)
    with pytest.raises(DataError, match="a validation set of 1 architecture"):
        train_predictor(data, "gbdt", n_train=len(data) - 1)


def test_predictions_of_another_space_say_where_they_came_from(data):
    predictor = train_predictor(data, "linear").predictor
    with pytest.raises(DataError, match="my.txt does not hold architectures of the predictor's space 'nb201'"):
        predict_latencies(predictor, ["|bogus|"], where="my.txt")


def test_a_latency_data_subset_keeps_its_store(data):
    stored = LatencyData(data.archs, data.latency_ms, data.space, data.device, "db:x", db=data.source)
    assert stored.subset([0, 1]).db == data.source and len(stored.subset([0, 1])) == 2
