"""The default few-shot path `auto`: per device, the combination its own K samples predict best (leave-one-out)."""

import numpy as np
import pytest

from predictors import transfer
from predictors.transfer.combination import AutoCombination


@pytest.fixture(scope="module")
def table():
    from nas.tabular import load_nb201

    return load_nb201()


def _sources(table, devices, n=600):
    return transfer.SourceLatencies.from_columns(table.archs[:n], {d: table.latency_ms[d][:n] for d in devices})


def test_auto_is_the_default_and_picks_ridge_for_a_device_unlike_every_source(table):
    assert transfer.DEFAULT_METHOD == "auto" and "auto" in transfer.transfer_methods()
    sources = _sources(table, ("1080ti_1", "titanxp_256", "pixel3"))
    model = transfer.pretrain("auto", sources)
    S = model.bank.predict_archs(table.archs[:600])
    # A device that is a *difference* of sources: non-negative weights cannot express it, any-sign weights can.
    y = 2.0 * S[:, 1] - 1.0 * S[:, 0] + 5.0
    rows = np.arange(0, 600, 40)
    archs = [table.archs[i] for i in rows]
    name, w, b, errors = model.choose(S[rows], y[rows])
    assert name == "ridge-standardized" and errors["ridge-standardized"] < errors["nnls"]
    predictor = model.adapt(archs, y[rows])
    pred = predictor.predict_archs(table.archs[:600])
    assert np.corrcoef(pred, y)[0, 1] > 0.99
    assert predictor.transfer_choice_["chosen"] == "ridge-standardized"
    nnls = transfer.pretrain("nnls", sources).adapt(archs, y[rows]).predict_archs(table.archs[:600])
    assert np.corrcoef(nnls, y)[0, 1] < np.corrcoef(pred, y)[0, 1]


def test_auto_keeps_nnls_for_a_plain_mixture_and_below_eight_samples(table):
    model = transfer.pretrain("auto", _sources(table, ("1080ti_1", "titanxp_256", "pixel3")))
    S = model.bank.predict_archs(table.archs[:600])
    y = 0.7 * S[:, 0] + 0.2 * S[:, 2] + 0.3
    rows = np.arange(0, 600, 60)
    name, w, b, errors = model.choose(S[rows], y[rows])
    assert name == "nnls" and np.allclose(S[rows] @ w + b, y[rows], rtol=1e-6)
    unlike = 2.0 * S[:, 1] - 1.0 * S[:, 0] + 5.0  # ridge wins this one from 8 samples on (first test)
    assert model.choose(S[rows[:8]], unlike[rows[:8]])[0] == "ridge-standardized"
    name, _, _, errors = model.choose(S[rows[:7]], unlike[rows[:7]])
    assert name == "nnls" and errors == {"nnls": 0.0}


def test_auto_saves_its_scaling(table, tmp_path):
    model = transfer.pretrain("auto", _sources(table, ("1080ti_1", "titanxp_256", "pixel3")), alpha=0.3)
    model.save(tmp_path / "m")
    again = transfer.load_transfer_model(tmp_path / "m")
    assert isinstance(again, AutoCombination) and again.alpha == 0.3
    assert np.array_equal(again.column_mean, model.column_mean) and np.array_equal(again.column_std, model.column_std)
