"""A saved predictor is checked on load (parameter types, finite model files) and never answers NaN or inf."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError, PersistenceError
from predictors.base import NonFinitePrediction
from predictors.features.encoding import ArchFeaturizer
from predictors.gbdt import GBDTPredictor
from predictors.linear import LinearPredictor
from predictors.mlp import MLPPredictor
from predictors.persistence import METADATA_FILE, load_predictor, save
from tests.predictors.test_predict_cli import one_line_error, run

MODELS = {
    "gbdt": (lambda: GBDTPredictor(n_estimators=20), ("linear_base", "log_target", "tune")),
    "mlp": (lambda: MLPPredictor(hidden_sizes=(8,), max_epochs=5), ("linear_skip", "refit", "log_target")),
    "linear": (lambda: LinearPredictor(alpha=0.5), ("log_target",)),
}


@pytest.fixture(scope="module")
def data(nb201_rows):
    archs, lat = nb201_rows
    f = ArchFeaturizer("nb201", "onehot+counts")
    return archs, f.transform(archs[:100]), lat["pixel3"][:100], f.schema


def fitted(name, data, directory):
    archs, X, y, schema = data
    save(MODELS[name][0]().fit(X, y, schema=schema), directory)
    return directory


def edit_metadata(directory, change):
    meta = json.loads((directory / METADATA_FILE).read_text())
    change(meta)
    (directory / METADATA_FILE).write_text(json.dumps(meta))


def test_log_target_as_a_string_is_refused_not_read_as_true(data, tmp_path, capsys):
    """The issue: "log_target": "false" made a linear predictor exponentiate, 98.6 ms instead of 4.6 ms."""
    archs = data[0]
    directory = fitted("linear", data, tmp_path / "p")
    expected = load_predictor(directory).predict_archs(archs[:1])[0]
    edit_metadata(directory, lambda m: m["params"].update(log_target="false"))
    with pytest.raises(PersistenceError, match=r"log_target must be true or false, got 'false'"):
        load_predictor(directory)
    code, out, err = run(capsys, "predict", directory, "--arch", archs[0])
    assert code == 1 and out == ""
    assert "predictor.json is corrupt: saved parameter LinearPredictor: log_target must be true or false" in one_line_error(err)
    edit_metadata(directory, lambda m: m["params"].update(log_target=False))
    assert load_predictor(directory).predict_archs(archs[:1])[0] == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_saved_switch_must_be_a_bool(name, data, tmp_path):
    directory = fitted(name, data, tmp_path / name)
    for param in MODELS[name][1]:
        d = tmp_path / f"{name}-{param}"
        d.mkdir()
        for f in directory.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        edit_metadata(d, lambda m: m["params"].update({param: "true"}))
        with pytest.raises(PersistenceError, match=rf"{param} must be true or false, got 'true'"):
            load_predictor(d)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_refuses_a_string_switch_too(name, data):
    _, X, y, schema = data
    model = MODELS[name][0]()
    model.set_params(**{MODELS[name][1][0]: "no"})
    with pytest.raises(ConfigError, match="must be true or false, got 'no'"):
        model.fit(X, y, schema=schema)


def test_saved_numbers_of_the_wrong_type_are_refused(data, tmp_path):
    directory = fitted("gbdt", data, tmp_path / "g")
    edit_metadata(directory, lambda m: m["params"].update(max_depth="3"))
    with pytest.raises(PersistenceError, match=r"max_depth must be an integer >= 1, got '3'"):
        load_predictor(directory)


def _nan_linear(directory):
    with np.load(directory / "linear.npz") as z:
        coef, intercept = z["coef"].copy(), z["intercept"]
    coef[2] = np.nan
    np.savez(directory / "linear.npz", coef=coef, intercept=intercept)


def _nan_gbdt(directory):
    with np.load(directory / "base.npz") as z:
        coef = z["coef"]
    np.savez(directory / "base.npz", coef=coef, intercept=np.array([np.inf]))


def _nan_mlp(directory):
    weights = torch.load(directory / "mlp.pt", weights_only=True)
    key = next(iter(weights))
    weights[key][0, 0] = float("nan")
    torch.save(weights, directory / "mlp.pt")


@pytest.mark.parametrize("name, corrupt, needle", [
    ("linear", _nan_linear, "linear.npz coefficients holds 1 non-finite value"),
    ("gbdt", _nan_gbdt, "linear base's intercept holds 1 non-finite value"),
    ("mlp", _nan_mlp, "mlp.pt tensor .* holds 1 non-finite value"),
])  # fmt: skip
def test_a_model_file_with_nan_or_inf_is_refused_on_load(name, corrupt, needle, data, tmp_path, capsys):
    directory = fitted(name, data, tmp_path / name)
    corrupt(directory)
    with pytest.raises(PersistenceError, match=needle):
        load_predictor(directory)
    code, out, err = run(capsys, "predict", directory, "--arch", data[0][0])
    assert code == 1 and out == "" and "corrupt model file" in one_line_error(err)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
def test_a_prediction_that_overflows_is_refused(data, tmp_path, capsys):
    """Finite coefficients can still give inf (exp of a huge log-latency): never printed as 'inf ms'."""
    archs, X, _, schema = data
    huge = LinearPredictor.from_coefficients(np.full(schema.width, 800.0), 0.0, schema, log_target=True)
    with pytest.raises(NonFinitePrediction, match=r"LinearPredictor predicted inf ms for row 0"):
        huge.predict(X[:3])
    save(huge, tmp_path / "huge")
    code, out, err = run(capsys, "predict", tmp_path / "huge", "--arch", archs[0])
    assert code == 1 and out == ""
    line = one_line_error(err)
    assert "predicted inf ms" in line and "does not hold architectures" not in line
