"""A search costed by a predictor says how many evaluated networks it predicted below the predictor's floor."""

import json

import numpy as np
import pytest

import nas.search.workflow as workflow
from nas.cost.predictor import PredictorCost
from tests.cli_helpers import run


class LinearStub:
    """A predictor whose answers are the architecture's position in the space (ms), with a floor."""

    def __init__(self, floor_ms):
        self.floor_ms_ = floor_ms

    def predict_archs(self, archs):
        return np.asarray([0.1 + (sum(map(ord, a.spec)) % 97) / 10 for a in archs], dtype=np.float64)


@pytest.fixture
def floor(monkeypatch):
    stub = LinearStub(1.0)
    monkeypatch.setattr(workflow, "parse_costs", lambda specs, space, **kw: [PredictorCost(stub, source="stub")])
    return stub


def search(capsys, tmp_path, *extra):
    return run(capsys, "search", "--algo", "random", "--cost", "predictor:stub", "--budget", "30", "-o", tmp_path, *extra)


def test_predictions_below_the_floor_are_counted_and_warned_about(floor, tmp_path, capsys):
    code, out, err = search(capsys, tmp_path, "--multi-objective")
    assert code == 0, err
    data = json.loads((tmp_path / "random_seed0.json").read_text())
    below = sum(1 for e in data["history"] if e["costs"]["latency_ms"] < 1.0)
    assert below > 0 and data["below_predictor_floor"] == {"latency_ms": below}
    (line,) = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert f"warning: {below} of 30 evaluated networks" in line
    assert "below the predictor's floor (1 ms" in line and "measure them before trusting them" in line


def test_no_warning_when_every_prediction_is_above_the_floor(floor, tmp_path, capsys):
    floor.floor_ms_ = 0.05
    code, _, err = search(capsys, tmp_path, "--multi-objective")
    assert code == 0, err
    assert "warning" not in err
    assert json.loads((tmp_path / "random_seed0.json").read_text())["below_predictor_floor"] == {"latency_ms": 0}
