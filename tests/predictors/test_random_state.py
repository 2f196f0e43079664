"""One seed name, ``random_state``: predictors saved with the old name ``seed`` still load and predict the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predictors.gbdt import GBDTPredictor
from predictors.mlp import MLPPredictor
from predictors.persistence import load_predictor, read_info
from predictors.training import make_predictor
from tests.predictors.conftest import additive_data

SAVED = Path(__file__).resolve().parents[1] / "data" / "predictors"  # written by hwprof before the rename


@pytest.mark.parametrize("name", ["gbdt_seed3", "mlp_seed3"])
def test_a_predictor_saved_with_seed_loads_as_random_state(name):
    directory = SAVED / name
    assert read_info(directory).params["seed"] == 3
    predictor = load_predictor(directory)
    assert predictor.random_state == 3
    expected = json.loads((directory / "expected.json").read_text())
    np.testing.assert_allclose(predictor.predict(np.array(expected["X"])), expected["predicted_ms"], rtol=1e-6)


@pytest.mark.parametrize("cls, params, name", [
    (GBDTPredictor, dict(n_estimators=40, learning_rate=0.2), "gbdt_seed3"),
    (MLPPredictor, dict(hidden_sizes=(8,), max_epochs=5, patience=2), "mlp_seed3"),
])  # fmt: skip
def test_random_state_gives_the_numbers_the_old_seed_gave(cls, params, name):
    X, y = additive_data(60, noise=0.05)
    expected = json.loads((SAVED / name / "expected.json").read_text())
    fresh = cls(**params, random_state=3).fit(X, y)
    np.testing.assert_allclose(fresh.predict(np.array(expected["X"])), expected["predicted_ms"], rtol=1e-6)


def test_make_predictor_seeds_through_random_state_unless_given():
    assert make_predictor("gbdt", {}, 7).random_state == 7
    assert make_predictor("mlp", {"random_state": 2}, 7).random_state == 2
    assert "random_state" not in make_predictor("linear", {}, 7).get_params()
