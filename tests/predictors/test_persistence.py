"""Saving and loading predictors: identical predictions, explicit metadata, no pickles, clear refusals."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from hwprof.errors import PersistenceError
from predictors.base import FeatureSchema
from predictors.features.encoding import ArchFeaturizer
from predictors.gbdt import GBDTPredictor
from predictors.linear import LinearPredictor
from predictors.metrics import evaluate_predictions
from predictors.mlp import MLPPredictor
from predictors.persistence import FORMAT_VERSION, METADATA_FILE, load_predictor, read_info, save

MODELS = {
    "gbdt": lambda: GBDTPredictor(n_estimators=30),
    "mlp": lambda: MLPPredictor(hidden_sizes=(8,), max_epochs=5),
    "linear": lambda: LinearPredictor(alpha=0.5, log_target=True),
}


@pytest.fixture(scope="module")
def data(nb201_rows):
    archs, lat = nb201_rows
    f = ArchFeaturizer("nb201", "onehot+counts")
    return archs, f.transform(archs[:120]), lat["silver_4114"][:120], f.schema


@pytest.fixture(scope="module", params=sorted(MODELS))
def saved(request, data, tmp_path_factory):
    archs, X, y, schema = data
    p = MODELS[request.param]().fit(X[:100], y[:100], schema=schema)
    metrics = evaluate_predictions(y[100:], p.predict(X[100:]))
    directory = tmp_path_factory.mktemp(request.param)
    save(p, directory, device="cpu-a", metrics=metrics, extra={"space": "nb201"})
    return p, directory, metrics


def copy_dir(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_round_trip_gives_identical_predictions_and_metadata(saved, data):
    p, directory, metrics = saved
    archs, X, y, schema = data
    q = load_predictor(directory)
    assert type(q) is type(p) and q.get_params() == p.get_params()
    np.testing.assert_array_equal(q.predict(X), p.predict(X))
    np.testing.assert_array_equal(q.predict_archs(archs[:50]), p.predict_archs(archs[:50]))
    info = read_info(directory)
    assert info.device == "cpu-a" and info.schema == schema and info.metrics == metrics
    assert info.train_hash == p.train_hash_ and info.n_train == 100 and info.format_version == FORMAT_VERSION
    assert info.extra == {"space": "nb201"}


def test_no_pickles_in_a_saved_predictor(saved):
    _, directory, _ = saved
    for f in directory.iterdir():
        raw = f.read_bytes()
        if f.suffix == ".json":
            json.loads(raw)
        elif f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as npz:
                assert all(npz[k].dtype != object for k in npz.files)
        elif f.suffix == ".pt":  # a state_dict: tensors only, readable without unpickling arbitrary objects
            state = torch.load(f, weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in state.values())
        else:
            pytest.fail(f"unexpected file {f.name} in a saved predictor")


def test_a_pickled_object_in_place_of_weights_is_refused(tmp_path, data):
    archs, X, y, schema = data
    p = MLPPredictor(hidden_sizes=(8,), max_epochs=2).fit(X, y, schema=schema)
    save(p, tmp_path / "m")
    torch.save({"deep.0.weight": _Boom()}, tmp_path / "m" / "mlp.pt")
    with pytest.raises(PersistenceError, match="unreadable model file|corrupt model file"):
        load_predictor(tmp_path / "m")
    assert not _Boom.ran


class _Boom:
    ran = False

    def __reduce__(self):
        return (_Boom._run, ())

    @staticmethod
    def _run():
        _Boom.ran = True
        return 0


def test_object_arrays_in_npz_are_refused(tmp_path, data):
    archs, X, y, schema = data
    save(LinearPredictor().fit(X, y, schema=schema), tmp_path / "l")
    np.savez(tmp_path / "l" / "linear.npz", coef=np.array([object()], dtype=object), intercept=np.array([0.0]))
    with pytest.raises(PersistenceError, match=r"linear\.npz is corrupt \(not a numpy \.npz of arrays\)"):
        load_predictor(tmp_path / "l")


def _edit(directory, fn):
    meta = json.loads((directory / METADATA_FILE).read_text())
    fn(meta)
    (directory / METADATA_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m.update(format_version=FORMAT_VERSION + 1), "newer than this hwprof supports"),
        (lambda m: m.update(format_version="1"), "format_version is '1'"),
        (lambda m: m.pop("feature_schema"), "missing field 'feature_schema'"),
        (lambda m: m.update(predictor="nope"), "unknown predictor 'nope'"),
        (lambda m: m["params"].update(depth=3), "saved parameter 'depth' is unknown"),
        (lambda m: m["feature_schema"]["names"].reverse(), "is stale"),
        (lambda m: m["feature_schema"].update(version=2), "is stale"),
        (lambda m: m["feature_schema"].update(kind="onehot+counts:atlantis"), "is stale"),
    ],
)
def test_tampered_metadata_is_refused(saved, tmp_path, edit, needle):
    _, directory, _ = saved
    d = copy_dir(directory, tmp_path / "copy")
    _edit(d, edit)
    with pytest.raises(PersistenceError, match=needle):
        load_predictor(d)


def test_corrupt_or_missing_files(saved, tmp_path):
    p, directory, _ = saved
    d = copy_dir(directory, tmp_path / "copy")
    (d / METADATA_FILE).write_text("{not json")
    with pytest.raises(PersistenceError, match="not valid JSON"):
        load_predictor(d)
    d2 = copy_dir(directory, tmp_path / "copy2")
    model_file = next(f for f in d2.iterdir() if f.name != METADATA_FILE)
    model_file.unlink()
    with pytest.raises(PersistenceError, match="incomplete|missing|corrupt"):
        load_predictor(d2)
    with pytest.raises(PersistenceError, match="does not exist"):
        load_predictor(tmp_path / "nowhere")


def test_expected_schema_and_device_are_checked(saved, data):
    _, directory, _ = saved
    schema = data[3]
    assert load_predictor(directory, expected_schema=schema, expected_device="cpu-a").is_fitted
    with pytest.raises(PersistenceError, match="feature schema mismatch"):
        load_predictor(directory, expected_schema=FeatureSchema.raw(schema.width))
    with pytest.raises(PersistenceError, match="trained for device 'cpu-a', not 'cpu-b'"):
        load_predictor(directory, expected_device="cpu-b")


def test_saving_requires_a_fitted_predictor(tmp_path):
    from hwprof.errors import NotFittedError

    with pytest.raises(NotFittedError):
        save(GBDTPredictor(), tmp_path / "x")


def test_a_loaded_predictor_keeps_its_metadata_when_saved_again(saved, tmp_path):
    _, directory, metrics = saved
    q = load_predictor(directory)
    save(q, tmp_path / "again")
    info = read_info(tmp_path / "again")
    assert info.device == "cpu-a" and info.metrics == metrics and info.extra == {"space": "nb201"}



def test_a_saved_predictor_gets_the_usual_permissions(tmp_path, data):
    """predictor.json was written owner-only (mkstemp's 0600): a predictor shared in a team folder was unreadable."""
    import stat

    old = os.umask(0o022)
    try:
        _, X, y, schema = data
        save(LinearPredictor(alpha=1.0).fit(X, y, schema=schema), tmp_path / "p")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p" / METADATA_FILE).stat().st_mode) == 0o644
    assert not [p for p in (tmp_path / "p").iterdir() if p.name.endswith(".tmp")]
