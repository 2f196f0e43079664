"""Accuracy evaluators: table lookups, the budgeted cache, training, zero-cost proxies."""

import math

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, UnknownNameError
from hwprof.types import Architecture
from nas.evaluators import (
    BudgetExhausted,
    CachedEvaluator,
    ImageData,
    NaswotEvaluator,
    SynflowEvaluator,
    TabularEvaluator,
    TrainEvaluator,
    load_digits_data,
    naswot_score,
    synflow_score,
)
from nas.spaces import NB201Space
from nas.tabular import load_nb201

CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
POOL = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def table():
    return load_nb201()


@pytest.fixture(scope="module")
def tiny_space():
    """Small enough that building, training and scoring take well under a second."""
    return NB201Space(channels=4, cells_per_stage=1, num_classes=10, input_size=8)


# --- tabular ---------------------------------------------------------------------------
def test_tabular_returns_the_benchmark_accuracy(table):
    space = NB201Space()
    arch = space.from_index(123)
    for dataset, key in (("cifar10", "cifar10"), ("CIFAR100", "cifar100"), ("imagenet16-120", "ImageNet16-120")):
        ev = TabularEvaluator(table, dataset)
        assert ev.evaluate(arch) == float(table.accuracy[key][123])
        assert ev.name == f"tabular:{key}" and ev.unit == "%"


def test_tabular_rejects_unknown_dataset_and_foreign_space(table):
    with pytest.raises(UnknownNameError, match="'svhn'; known: cifar10, cifar100, ImageNet16-120"):
        TabularEvaluator(table, "svhn")
    with pytest.raises(ConfigError, match="space 'fbnet'"):
        TabularEvaluator(table).evaluate(Architecture("fbnet", "x"))


# --- cache and budget ---------------------------------------------------------------------
class Counting:
    name, unit = "counting", "%"

    def __init__(self):
        self.calls = []

    def evaluate(self, arch):
        self.calls.append(arch.spec)
        return float(len(arch.spec))


def test_cached_evaluator_counts_unique_evaluations_against_the_budget():
    inner = Counting()
    ev = CachedEvaluator(inner, budget=2)
    a, b, c = (Architecture("s", x) for x in ("a", "bb", "ccc"))
    assert ev.evaluate(a) == 1.0 and ev.evaluate(a) == 1.0 and ev.evaluate(b) == 2.0
    assert ev.n_evaluations == 2 and ev.remaining == 0 and inner.calls == ["a", "bb"]
    with pytest.raises(BudgetExhausted, match="budget of 2"):
        ev.evaluate(c)
    assert ev.evaluate(b) == 2.0  # cached answers stay free after the budget is spent
    assert list(ev.cached()) == [a, b]
    with pytest.raises(ConfigError, match="positive integer"):
        CachedEvaluator(inner, budget=0)


# --- data ------------------------------------------------------------------------------------
def test_digits_are_resized_standardised_and_split_reproducibly():
    d = load_digits_data((1, 3, 16, 16), seed=0)
    assert d.x_train.shape == (1438, 3, 16, 16) and d.x_val.shape == (359, 3, 16, 16)
    assert d.num_classes == 10 and set(d.y_val.tolist()) == set(range(10))
    assert abs(float(d.x_train.mean())) < 1e-4 and float(d.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    assert bool((d.x_train[:, 0] == d.x_train[:, 2]).all())  # grey digits repeated over channels
    again = load_digits_data((3, 16, 16), seed=0)
    assert bool((again.y_val == d.y_val).all())
    assert not bool((load_digits_data((3, 16, 16), seed=1).y_val == d.y_val).all())


def test_image_data_validates_user_tensors():
    x = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(DataError, match="y_train must have shape"):
        ImageData.from_tensors(x, [0, 1, 2], x, [0, 1, 2, 3])
    with pytest.raises(DataError, match="labels must be in 0..1"):
        ImageData.from_tensors(x, [0, 1, 0, 5], x, [0, 1, 0, 1], num_classes=2)
    assert ImageData.from_tensors(x, [0, 1, 0, 1], x, [0, 1, 2, 1]).num_classes == 3


# --- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_digits():
    d = load_digits_data((1, 3, 8, 8), seed=0)
    return ImageData.from_tensors(d.x_train[:200], d.y_train[:200], d.x_val[:100], d.y_val[:100], 10, "digits-subset")


def test_train_evaluator_learns_and_is_deterministic(tiny_space, small_digits):
    """20 SGD steps: a conv cell is far above chance; a cell of only 'none' edges passes zeros on and stays at chance."""
    kw = dict(epochs=2, batch_size=20, lr=0.1, seed=0)
    ev = TrainEvaluator(tiny_space, small_digits, **kw)
    conv = tiny_space.parse(CONV3)
    acc = ev.evaluate(conv)
    empty = ev.evaluate(tiny_space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    assert acc > 30.0 and empty < 20.0
    assert TrainEvaluator(tiny_space, small_digits, **kw).evaluate(conv) == acc
    assert ev.name == "train:digits-subset" and ev.unit == "%"


def test_train_evaluator_checks_classes_and_shapes(small_digits):
    wrong_classes = NB201Space(channels=4, cells_per_stage=1, num_classes=7, input_size=8)
    with pytest.raises(ConfigError, match="num_classes=10"):
        TrainEvaluator(wrong_classes, small_digits, epochs=1).evaluate(wrong_classes.parse(CONV3))
    wrong_size = NB201Space(channels=4, cells_per_stage=1, num_classes=10, input_size=16)
    with pytest.raises(ConfigError, match=r"images have shape \(3, 8, 8\)"):
        TrainEvaluator(wrong_size, small_digits, epochs=1).evaluate(wrong_size.parse(CONV3))
    with pytest.raises(ConfigError, match="unknown training data 'mnist'"):
        TrainEvaluator(wrong_size, "mnist")


@pytest.mark.slow
def test_train_evaluator_on_full_digits_separates_good_from_empty_cells():
    space = NB201Space(channels=8, cells_per_stage=1, num_classes=10, input_size=16)
    ev = TrainEvaluator(space, "digits", epochs=3, seed=0)
    good = ev.evaluate(space.parse(CONV3))
    empty = ev.evaluate(space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    assert good > 90.0 and good > empty


# --- proxies -------------------------------------------------------------------------------------
def test_synflow_by_hand_on_a_linear_network():
    """Two bias-free linear layers, abs weights, all-ones input: each layer contributes R, so the score is 2R."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model[1].weight.copy_(torch.tensor([[-1.0, 2.0]]))
    r = 1 * (1 + 2) + 2 * (3 + 0.5)  # |W2| |W1| 1
    assert synflow_score(model, (1, 2)) == pytest.approx(2 * r)


def test_naswot_by_hand():
    """One ReLU on 3 examples x 2 units: K[i,j] = number of units where i and j agree on being active."""
    import torch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU())
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    k = np.array([[2, 1, 0], [1, 2, 1], [0, 1, 2]], dtype=float)
    assert naswot_score(model, x) == pytest.approx(np.linalg.slogdet(k)[1])
    same = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    assert naswot_score(model, same) == -math.inf  # indistinguishable examples: singular K


def test_proxy_evaluators_are_deterministic_and_rank_conv_cells_higher(tiny_space, small_digits):
    conv, pool = tiny_space.parse(CONV3), tiny_space.parse(POOL)
    syn = SynflowEvaluator(tiny_space, seed=0)
    assert syn.evaluate(conv) == SynflowEvaluator(tiny_space, seed=0).evaluate(conv)
    assert syn.evaluate(conv) > syn.evaluate(pool) > 0
    nw = NaswotEvaluator(tiny_space, small_digits, batch_size=16, seed=0)
    s1 = nw.evaluate(conv)
    assert s1 == NaswotEvaluator(tiny_space, small_digits, batch_size=16, seed=0).evaluate(conv)
    assert math.isfinite(s1) and s1 > nw.evaluate(pool)
    with pytest.raises(ConfigError, match="at least 2"):
        NaswotEvaluator(tiny_space, batch_size=1)
