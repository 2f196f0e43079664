"""A predictor never answers a latency <= 0 ms: below a tenth of the fastest latency it learned from (the floor),
its answers are squeezed smoothly into (floor / 2, floor], keeping their order (issue 15's "no output silently
wrong")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwprof.errors import DataError, PersistenceError
from predictors import transfer
from predictors.base import FLOOR_FRACTION, soft_floor
from predictors.linear import LinearPredictor
from predictors.persistence import METADATA_FILE, load_predictor, save


def test_soft_floor_is_positive_increasing_and_smooth_at_the_floor():
    pred = np.array([-1e300, -1e6, -50.0, -2.0, -0.5, 0.0, 0.09, 0.1, 0.1 + 1e-9, 3.0])
    out = soft_floor(pred, 0.1)
    assert np.all(out >= 0.05) and np.all(out[:-3] < 0.1)  # between half the floor and the floor
    assert np.all(np.diff(out) > 0)  # strictly increasing
    assert np.array_equal(out[-3:], pred[-3:])  # at and above the floor: untouched
    assert out[6] == pytest.approx(0.05 + 0.05**2 / 0.06, rel=1e-12)
    slope = (soft_floor(np.array([0.1 - 1e-7]), 0.1)[0] - 0.1) / -1e-7
    assert slope == pytest.approx(1.0, rel=1e-5)
    assert np.array_equal(soft_floor(np.array([1.0, 2.0]), 0.0), [1.0, 2.0])  # a file saved before floors
    with pytest.raises(DataError, match=r"predicted -1 ms for row 0 \(1 of 2 <= 0\); .*saved before"):
        soft_floor(np.array([-1.0, 2.0]), 0.0)


def test_a_linear_fit_never_extrapolates_to_a_negative_latency():
    X, y = np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 2.0, 3.0])
    predictor = LinearPredictor(alpha=0.0).fit(X, y)
    assert predictor.floor_ms_ == pytest.approx(FLOOR_FRACTION * 1.0)
    pred = predictor.predict(np.array([[-5.0], [-1.0], [1.5]]))
    assert FLOOR_FRACTION / 2 < pred[0] < pred[1] < FLOOR_FRACTION  # raw -4 ms and 0 ms: positive, order kept
    assert pred[2] == pytest.approx(2.5)


@pytest.fixture(scope="module")
def pixel3_case():
    """A real case from the leave-one-device-out benchmark: pixel3 as the new device, the 20 other public
    devices as sources, 10 random pool networks (seed 0). The default `auto` combination extrapolated to
    <= 0 ms for 1,631 of the 15,625 networks before predictions had a floor."""
    from nas.tabular import load_nb201

    table = load_nb201()
    archs = list(table.archs)
    sources = transfer.SourceLatencies.from_columns(archs, table.latency_ms, exclude=["pixel3"])
    rows = transfer.suggest_samples(10, sources.latency_ms, 0, pool=np.arange(900), method="random")
    y = np.asarray(table.latency_ms["pixel3"], dtype=np.float64)
    model = transfer.pretrain("auto", sources)
    return archs, model.adapt([archs[i] for i in rows], y[rows]), y[rows]


def test_the_default_few_shot_path_never_predicts_zero_or_less(pixel3_case):
    archs, predictor, samples = pixel3_case
    raw = predictor.featurizer.transform(archs) @ predictor.coef_ + predictor.intercept_
    assert (raw <= 0).sum() > 1000  # the defect this guards against is real for this case
    pred = predictor.predict_archs(archs)
    assert predictor.floor_ms_ == pytest.approx(FLOOR_FRACTION * samples.min())
    assert np.all(pred >= predictor.floor_ms_ / 2)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(pred[order]) >= 0)  # the same order as the raw combination


def test_the_floor_is_saved_and_checked_on_load(pixel3_case, tmp_path):
    archs, predictor, _ = pixel3_case
    save(predictor, tmp_path / "p")
    loaded = load_predictor(tmp_path / "p")
    assert loaded.floor_ms_ == predictor.floor_ms_
    assert np.array_equal(loaded.predict_archs(archs), predictor.predict_archs(archs))
    meta_path = tmp_path / "p" / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    for bad in ("0.1", -1.0, 0, 1e9, 1e308, None, True):
        meta["training_data"]["floor_ms"] = bad
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(PersistenceError, match="floor_ms"):
            load_predictor(tmp_path / "p")
    del meta["training_data"]["floor_ms"]  # written before floors: still loads, and refuses to answer <= 0
    meta_path.write_text(json.dumps(meta))
    old = load_predictor(tmp_path / "p")
    with pytest.raises(DataError, match="saved before hwprof kept a prediction floor"):
        old.predict_archs(archs)
    fine = [a for a, p in zip(archs, predictor.predict_archs(archs)) if p > predictor.floor_ms_][:50]
    assert np.array_equal(old.predict_archs(fine), predictor.predict_archs(fine))
