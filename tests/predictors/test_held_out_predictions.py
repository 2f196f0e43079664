"""A saved predictor keeps its held-out predictions beside it (``held_out_predictions.json``), for the report's plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwprof.errors import PersistenceError
from predictors.data import LatencyData
from predictors.metrics import evaluate_predictions
from predictors.persistence import load_predictor, read_info
from predictors.training import HELD_OUT_FILE, read_held_out, train_predictor


@pytest.fixture(scope="module")
def data(nb201_rows) -> LatencyData:
    archs, lat = nb201_rows
    return LatencyData(tuple(archs[:60]), np.asarray(lat["pixel3"][:60], dtype=np.float64), "nb201", "pixel3", "test rows")


def test_saved_held_out_predictions_are_the_validation_split_and_the_models_answers(data, tmp_path):
    result = train_predictor(data, "linear", seed=3)
    result.save(tmp_path / "p")
    held = read_held_out(tmp_path / "p")
    assert held is not None and held.device == "pixel3" and held.data == "test rows"
    assert held.archs == tuple(data.archs[i] for i in result.val_idx)
    np.testing.assert_allclose(held.measured_ms, data.latency_ms[result.val_idx])
    reloaded = load_predictor(tmp_path / "p")
    np.testing.assert_allclose(held.predicted_ms, reloaded.predict_archs(list(held.archs)), rtol=1e-9)
    assert evaluate_predictions(held.measured_ms, held.predicted_ms) == read_info(tmp_path / "p").metrics


def test_a_predictor_saved_without_validation_removes_the_previous_points(data, tmp_path):
    train_predictor(data, "linear", seed=0).save(tmp_path / "p")
    assert (tmp_path / "p" / HELD_OUT_FILE).is_file()
    train_predictor(data, "linear", seed=0, val_fraction=0.0).save(tmp_path / "p")
    assert not (tmp_path / "p" / HELD_OUT_FILE).exists() and read_held_out(tmp_path / "p") is None


def test_points_of_another_predictor_or_a_corrupt_file_are_refused(data, tmp_path):
    train_predictor(data, "linear", seed=0).save(tmp_path / "p")
    path = tmp_path / "p" / HELD_OUT_FILE
    doc = json.loads(path.read_text())
    doc["predictor"]["name"] = "gbdt"
    path.write_text(json.dumps(doc))
    with pytest.raises(PersistenceError, match="belongs to another predictor"):
        read_held_out(tmp_path / "p")
    doc["predictor"]["name"] = "linear"
    doc["predicted_ms"] = doc["predicted_ms"][:-1]
    path.write_text(json.dumps(doc))
    with pytest.raises(PersistenceError, match="corrupt: .* architectures"):
        read_held_out(tmp_path / "p")
    path.write_text("{")
    with pytest.raises(PersistenceError, match="corrupt"):
        read_held_out(tmp_path / "p")
