"""Few-shot transfer: every method adapts, persists, folds exactly, and rejects bad input clearly."""

import json

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError, DataError, PersistenceError, UnknownNameError
from predictors import transfer
from predictors.linear import LinearPredictor
from predictors.mlp import MLPPredictor
from predictors.persistence import load_predictor, save
from predictors.transfer.networks import predict_network

N_SOURCE = 400
FAST = {
    "auto": {},
    "ridge": {},
    "nnls": {},
    "finetune": {"max_epochs": 3, "hidden_sizes": (16, 16), "steps": 5},
    "embedding": {"steps": 150, "hidden_sizes": (16, 16), "n_refs": 6, "embedding_steps": 20},
}


@pytest.fixture(scope="module")
def table():
    from nas.tabular import load_nb201

    return load_nb201()


@pytest.fixture(scope="module")
def sources(table):
    cols = {d: table.latency_ms[d][:N_SOURCE] for d in ("1080ti_1", "2080ti_32", "gold_6240", "pixel3", "titanxp_256")}
    return transfer.SourceLatencies.from_columns(table.archs[:N_SOURCE], cols)


@pytest.fixture(scope="module")
def models(sources):
    torch.manual_seed(0)
    return {m: transfer.pretrain(m, sources, exclude=["gold_6240"], **FAST[m]) for m in transfer.transfer_methods()}


def target_device(table):
    """A new device: titanx_32 (not a source)."""
    return np.asarray(table.latency_ms["titanx_32"], dtype=np.float64)


@pytest.mark.parametrize("method", list(transfer.transfer_methods()))
def test_adapt_persist_roundtrip(method, models, table, sources, tmp_path):
    model = models[method]
    assert "gold_6240" not in model.devices
    picked = list(model.reference_archs) or transfer.suggest_archs(sources, 8, seed=1)
    y = target_device(table)
    rows = [table.index_of(a) for a in picked]
    pred = model.adapt(picked, y[rows])
    assert isinstance(pred, (LinearPredictor, MLPPredictor))
    assert pred.transfer_method_ == method
    test = table.archs[1000:1200]
    out = pred.predict_archs(test)
    assert out.shape == (200,) and np.all(np.isfinite(out))
    # The adapted predictor is an ordinary one: saved and loaded by predictors.persistence.
    save(pred, tmp_path / "pred", device="titanx_32")
    again = load_predictor(tmp_path / "pred", expected_device="titanx_32")
    np.testing.assert_allclose(again.predict_archs(test), out, rtol=1e-5)
    # The pretrained model reloads and adapts to the same predictor.
    model.save(tmp_path / "model")
    assert transfer.is_transfer_model(tmp_path / "model")
    reloaded = transfer.load_transfer_model(tmp_path / "model")
    assert type(reloaded) is type(model) and reloaded.devices == model.devices
    np.testing.assert_allclose(reloaded.adapt(picked, y[rows]).predict_archs(test), out, rtol=1e-4)
    via_dir = transfer.adapt(method, tmp_path / "model", picked, y[rows])
    np.testing.assert_allclose(via_dir.predict_archs(test), out, rtol=1e-4)


def test_nnls_recovers_a_mixture_of_sources(sources, table):
    """A device that is exactly 0.3 * A + 0.7 * B (ms) of two source banks is predicted almost perfectly."""
    model = transfer.pretrain("nnls", sources)
    bank = model.bank
    X = bank.featurizer.transform(table.archs[:2000])
    S = X @ bank.coef + bank.intercept  # the banks' linear part (bank.predict floors tiny values)
    a, b = bank.devices.index("1080ti_1"), bank.devices.index("pixel3")
    ok = np.flatnonzero(np.all(S > bank.floor_ms, axis=1))  # where no floor applies
    y = 0.3 * S[:, a] + 0.7 * S[:, b]
    picked = transfer.suggest_archs(sources, 10, pool=ok[ok < N_SOURCE])
    rows = [table.index_of(p) for p in picked]
    pred = model.adapt(picked, y[rows])
    np.testing.assert_allclose(pred.predict(X[ok]), y[ok], rtol=1e-6)
    assert pred.source_weights_["pixel3"] == pytest.approx(0.7, rel=1e-6)
    assert min(pred.source_weights_.values()) >= 0


def test_finetune_without_steps_is_the_log_combination(sources, table):
    model = transfer.pretrain("finetune", sources, **{**FAST["finetune"], "steps": 0})
    picked = transfer.suggest_archs(sources, 10, seed=2)
    rows = [table.index_of(p) for p in picked]
    y = target_device(table)[rows]
    pred = model.adapt(picked, y)
    X = model.featurizer.transform(table.archs[2000:2100])
    w = np.array([pred.source_weights_[d] for d in model.devices])
    logs = model.source_log_latency(X) @ w
    got = np.log(pred.predict(X))
    # Same ranking and an affine map in log space (the calibration).
    assert np.corrcoef(logs, got)[0, 1] == pytest.approx(1.0, abs=1e-5)


def test_embedding_folding_is_exact(models, table):
    model = models["embedding"]
    refs = list(model.reference_archs)
    y = target_device(table)[[table.index_of(r) for r in refs]]
    pred = model.adapt(refs, y)
    assert pred.embedding_from_references_ is True
    np.testing.assert_allclose(pred.device_embedding_, transfer.reference_embedding(y))
    X = model.featurizer.transform(table.archs[3000:3050])
    Z = (X - model.x_mean) / model.x_std
    direct = predict_network(model.net, np.hstack([Z, np.tile(pred.device_embedding_, (len(Z), 1))]))
    expected = np.exp(direct * pred.y_std_ + pred.y_mean_)
    np.testing.assert_allclose(pred.predict(X), expected, rtol=1e-4)


def test_embedding_fitted_when_samples_are_not_the_references(models, sources, table):
    model = models["embedding"]
    picked = [a for a in transfer.suggest_archs(sources, 12, seed=3) if a not in model.reference_archs][:8]
    y = target_device(table)[[table.index_of(a) for a in picked]]
    pred = model.adapt(picked, y)
    assert pred.embedding_from_references_ is False
    assert not np.allclose(pred.device_embedding_, model.source_embeddings.mean(axis=0))


def test_adapted_mlp_is_differentiable(models, table):
    model = models["embedding"]
    refs = list(model.reference_archs)
    pred = model.adapt(refs, target_device(table)[[table.index_of(r) for r in refs]])
    module = pred.as_module()
    enc = torch.full((2, module.encoding_width), 0.2, requires_grad=True)
    module(enc).sum().backward()
    assert enc.grad is not None and torch.any(enc.grad != 0)


def test_suggest_archs(sources, models):
    picked = transfer.suggest_archs(sources, 7, pool=range(100, 200))
    assert len(set(picked)) == 7 and all(sources.archs.index(p) in range(100, 200) for p in picked)
    assert transfer.suggest_archs(models["embedding"], 6) == list(models["embedding"].reference_archs)
    with pytest.raises(DataError, match="k must be 6"):
        transfer.suggest_archs(models["embedding"], 10)
    with pytest.raises(ConfigError, match="no latency table"):
        transfer.suggest_archs(models["nnls"], 10)


def test_bad_samples_are_rejected(models, sources):
    model = models["nnls"]
    archs = list(sources.archs[:5])
    with pytest.raises(DataError, match="at least 3"):
        models["finetune"].adapt(archs[:2], [1.0, 2.0])
    with pytest.raises(DataError, match="finite positive"):
        model.adapt(archs, [1.0, 2.0, float("nan"), 1.0, 1.0])
    with pytest.raises(DataError, match="finite positive"):
        model.adapt(archs, [1.0, -2.0, 1.0, 1.0, 1.0])
    with pytest.raises(DataError, match="twice"):
        model.adapt([archs[0], *archs[:4]], [1.0] * 5)
    with pytest.raises(DataError, match="architecture 0"):
        model.adapt(["k3_e1|" * 21 + "k3_e1", *archs[1:]], [1.0] * 5)  # an FBNet network, not NB201


def test_bad_configuration_is_rejected(sources, models, tmp_path):
    with pytest.raises(UnknownNameError, match="few-shot method 'magic'"):
        transfer.pretrain("magic", sources)
    with pytest.raises(DataError, match="unknown source device"):
        transfer.pretrain("nnls", sources, exclude=["no_such_device"])
    with pytest.raises(ConfigError, match="no parameter"):
        transfer.pretrain("nnls", sources, learning_rate=0.1)
    with pytest.raises(ConfigError, match="not 'ridge'"):
        transfer.adapt("ridge", models["nnls"], list(sources.archs[:5]), [1.0] * 5)
    with pytest.raises(PersistenceError, match="missing"):
        transfer.load_transfer_model(tmp_path)
    models["ridge"].save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / transfer.TRANSFER_FILE).read_text())
    meta["format_version"] = 99
    (tmp_path / "m" / transfer.TRANSFER_FILE).write_text(json.dumps(meta))
    with pytest.raises(PersistenceError, match="newer"):
        transfer.load_transfer_model(tmp_path / "m")
