"""The torch MLP predictor: accuracy, determinism, parameter checks, and the differentiable module."""

import numpy as np
import pytest
import torch

from hwprof.errors import ConfigError, DataError, NotFittedError
from predictors.features.encoding import ArchFeaturizer
from predictors.metrics import evaluate_predictions
from predictors.mlp import MLPPredictor
from tests.predictors.conftest import additive_data

FAST = dict(hidden_sizes=(16,), max_epochs=150, patience=20, batch_size=32, learning_rate=1e-2, refit=False)
QUICK = dict(FAST, max_epochs=10)


def test_learns_an_additive_law():
    X, y = additive_data(200, noise=0.01)
    Xt, yt = additive_data(100, seed=1)
    m = evaluate_predictions(yt, MLPPredictor(**FAST).fit(X, y).predict(Xt))
    assert m.within_10pct >= 0.9 and m.spearman > 0.95


def test_same_seed_same_weights_and_progress_is_reported():
    X, y = additive_data(60)
    calls = []
    a = MLPPredictor(**QUICK, random_state=1).fit(X, y, progress=lambda d, t: calls.append((d, t)))
    b = MLPPredictor(**QUICK, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert calls and calls[-1][0] == calls[-1][1]  # the bar ends full
    assert 1 <= a.epochs_ <= QUICK["max_epochs"]


def test_one_hidden_layer_may_be_given_as_its_width():
    X, y = additive_data(40)
    p = MLPPredictor(hidden_sizes=6, max_epochs=2, random_state=0).fit(X, y)
    assert p.hidden_sizes == (6,) and p.predict(X).shape == (40,)


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
        ({"hidden_sizes": "64"}, "hidden_sizes"),
        ({"hidden_sizes": 0}, "hidden_sizes"),
        ({"hidden_sizes": True}, "hidden_sizes"),
        ({"activation": "gelu"}, "activation must be one of"),
        ({"validation_fraction": 0.9}, "validation_fraction"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_bad_parameters(params, needle):
    X, y = additive_data(20)
    with pytest.raises(ConfigError, match=needle):
        MLPPredictor(**params).fit(X, y)


def test_not_fitted_and_too_few_samples():
    with pytest.raises(NotFittedError):
        MLPPredictor().predict(np.zeros((1, 2)))
    with pytest.raises(NotFittedError):
        MLPPredictor().as_module()
    X, y = additive_data(9)
    with pytest.raises(DataError, match="at least 10 training samples, got 9"):
        MLPPredictor(**QUICK).fit(X, y)


def test_module_matches_predict_and_is_differentiable(nb201_rows):
    archs, lat = nb201_rows
    f = ArchFeaturizer("nb201", "onehot+counts")
    p = MLPPredictor(**QUICK).fit(f.transform(archs[:200]), lat["titanx_1"][:200], schema=f.schema)
    module = p.as_module()
    enc = torch.as_tensor(f.encode(archs[200:210]), dtype=torch.float32)
    np.testing.assert_allclose(module(enc).numpy(), p.predict_archs(archs[200:210]), rtol=1e-4)
    # relaxed (softmax) encodings: gradients reach the architecture logits, not the frozen weights
    logits = torch.zeros(2, f.encoding_width, requires_grad=True)
    blocks = [torch.softmax(logits[:, i : i + 5], dim=1) for i in range(0, f.encoding_width, 5)]
    out = module(torch.cat(blocks, dim=1)).sum()
    out.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) > 0
    assert all(not q.requires_grad for q in module.parameters())
    with pytest.raises(DataError, match="expected encodings of shape"):
        module(torch.zeros(1, 3))
