"""Cost models and constraints."""

import numpy as np
import pytest

from hwprof.errors import ConfigError, DataError, UnknownNameError
from nas.cost import (
    Constraint,
    LookupCost,
    MacsCost,
    MeasuredCost,
    ParamsCost,
    PredictorCost,
    check_constraints,
    cost_bounds,
    count_macs,
)
from nas.spaces import NB201Space
from nas.tabular import load_nb201

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def table():
    return load_nb201()


@pytest.fixture(scope="module")
def space():
    return NB201Space()


# --- constraints -----------------------------------------------------------------
def test_constraint_parse_and_check():
    c = Constraint.parse(" latency_ms <= 5.5 ")
    assert (c.objective, c.max_value) == ("latency_ms", 5.5)
    assert c.satisfied(5.5) and not c.satisfied(5.5000001)
    assert c.violation(7.0) == pytest.approx(1.5) and c.violation(1.0) == 0.0
    assert Constraint.parse(str(c)) == c


@pytest.mark.parametrize("text", ["latency_ms<5", "latency_ms>=5", "<=5", "latency_ms<=fast", "", "5<=latency_ms"])
def test_constraint_parse_rejects(text):
    with pytest.raises(ConfigError, match="NAME<=VALUE"):
        Constraint.parse(text)


def test_constraint_rejects_non_finite_bound():
    with pytest.raises(ConfigError, match="finite"):
        Constraint("latency_ms", float("inf"))


def test_constraint_must_name_a_cost(table):
    cost = LookupCost.from_nb201(table, "pixel3")
    assert check_constraints([cost], [Constraint("latency_ms", 1)]) == [0]
    with pytest.raises(ConfigError, match="'energy_mj', which is not a cost objective"):
        check_constraints([cost], [Constraint("energy_mj", 1)])


# --- lookup ------------------------------------------------------------------------
def test_lookup_from_nb201_matches_the_table(table, space):
    cost = LookupCost.from_nb201(table, "pixel3")
    archs = [space.from_index(i) for i in (0, 17, 15624)]
    expected = [float(table.latency_ms["pixel3"][i]) for i in (0, 17, 15624)]
    assert [cost.cost(a) for a in archs] == expected
    assert cost.costs(archs).tolist() == expected
    assert (cost.name, cost.unit, cost.cheap) == ("latency_ms", "ms", True)


def test_lookup_unknown_device_and_arch(table, space):
    with pytest.raises(UnknownNameError, match="'pixel9'.*known: .*pixel3"):
        LookupCost.from_nb201(table, "pixel9")
    small = LookupCost({CONV: 3.0}, source="my.csv")
    other = space.from_index(0)
    with pytest.raises(DataError, match=r"no latency_ms for architecture .* in my\.csv"):
        small.cost(other)
    with pytest.raises(DataError, match="my.csv"):
        small.costs([space.parse(CONV), other])


def test_lookup_from_csv_by_device_or_column_name(tmp_path, space):
    path = tmp_path / "lat.csv"
    a, b = space.from_index(3), space.from_index(4)
    path.write_text(f"arch,lat_board_ms,lat_other_ms\n{a.spec},1.5,9\n{b.spec},2.5,9\n")
    for column in ("board", "lat_board_ms"):
        cost = LookupCost.from_csv(path, column, space=space)
        assert cost.costs([a, b]).tolist() == [1.5, 2.5]
    with pytest.raises(UnknownNameError, match="known: board, other"):
        LookupCost.from_csv(path, "missing")
    # a table that does not cover the space gives bounds over its own rows, flagged as not exact
    lo, hi = cost_bounds(space, LookupCost.from_csv(path, "board", space=space))
    assert (lo.value, hi.value, lo.exact) == (1.5, 2.5, False)
    assert "does not cover" in lo.method


class FakeStore:
    path = "fake.db"

    def __init__(self, values):
        self.values = values
        self.asked = []

    def latencies(self, device, space=None):
        self.asked.append((device, space))
        return self.values


def test_lookup_from_store(space):
    a = space.from_index(5)
    store = FakeStore({a.spec: 4.25})
    cost = LookupCost.from_store(store, "ort-cpu", space=space)
    assert cost.cost(a) == 4.25 and store.asked == [("ort-cpu", "nb201")]
    with pytest.raises(DataError, match="no measurements on device 'ort-cpu'"):
        LookupCost.from_store(FakeStore({}), "ort-cpu", space=space)


def test_bounds_exhaustive_for_a_full_table(table, space):
    cost = LookupCost.from_nb201(table, "1080ti_1")
    lo, hi = cost_bounds(space, cost)
    col = table.latency_ms["1080ti_1"]
    assert lo.exact and hi.exact and "exhaustive over all 15625" in lo.method
    assert lo.value == col.min() and hi.value == col.max()
    assert cost.cost(lo.arch) == lo.value


class ConvCount:
    """An expensive-looking cost (cheap=False): number of conv edges; minimum 0 at any conv-free cell."""

    name, unit, cheap = "convs", "count", False

    def __init__(self, space):
        self.space = space
        self.calls = 0

    def describe(self):
        return "conv edges"

    def cost(self, arch):
        self.calls += 1
        return float(sum(c in (2, 3) for c in self.space.to_choices(arch)))

    def costs(self, archs):
        return np.array([self.cost(a) for a in archs])


def test_bounds_estimated_when_costing_is_expensive(space):
    cost = ConvCount(space)
    lo, hi = cost_bounds(space, cost, np.random.default_rng(0), sample_size=16)
    assert not lo.exact and "estimated from 16 random" in lo.method
    assert (lo.value, hi.value) == (0.0, 6.0)  # the greedy sweep finds both extremes
    assert cost.calls < 200  # never enumerates the 15,625 architectures


# --- predictor / measured ------------------------------------------------------------
class FakePredictor:
    def __init__(self, space, broken=False):
        self.space, self.broken, self.batches = space, broken, []

    def predict_archs(self, archs):
        self.batches.append(len(archs))
        out = [1.0 + sum(self.space.to_choices(a)) for a in archs]
        return np.array(out[:-1] if self.broken else out)


def test_predictor_cost_batches_and_caches(space):
    pred = FakePredictor(space)
    cost = PredictorCost(pred)
    archs = [space.from_index(i) for i in range(4)]
    expected = [1.0 + sum(space.to_choices(a)) for a in archs]
    assert cost.costs(archs + archs[:2]).tolist() == expected + expected[:2]
    assert cost.cost(archs[1]) == expected[1]
    assert pred.batches == [4]  # one call for four unique architectures, then served from the cache


def test_predictor_cost_rejects_bad_predictors(space):
    with pytest.raises(ConfigError, match="predict_archs"):
        PredictorCost(object())
    with pytest.raises(DataError, match="3 predictions for 4 architectures"):
        PredictorCost(FakePredictor(space, broken=True)).costs([space.from_index(i) for i in range(4)])


class FakeMeasurement:
    def __init__(self, ms):
        self.latency_ms = ms


class FakeProfiler:
    def __init__(self, stored):
        self.stored = stored
        self.measured = []

    def cached_latency_ms(self, arch):
        return self.stored.get(arch.spec)

    def measure(self, arch):
        self.measured.append(arch.spec)
        return FakeMeasurement(7.0)


def test_measured_cost_uses_the_store_then_profiles_once(space):
    a, b = space.from_index(1), space.from_index(2)
    prof = FakeProfiler({a.spec: 3.0})
    cost = MeasuredCost(prof)
    assert cost.costs([a, b, b, a]).tolist() == [3.0, 7.0, 7.0, 3.0]
    assert prof.measured == [b.spec]
    assert (cost.n_measured, cost.n_from_store, cost.cheap) == (1, 1, False)


# --- params / MACs ---------------------------------------------------------------------
def test_count_macs_by_hand():
    import torch

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),  # 4*8*8 outputs x 3*9 -> 6912
        torch.nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False),  # 4*8*8 x 2*9 -> 4608
        torch.nn.Flatten(),
        torch.nn.Linear(256, 5),  # 5 x 256 -> 1280
    )
    assert count_macs(model, (1, 3, 8, 8)) == 6912 + 4608 + 1280


def test_params_and_macs_of_one_conv_edge():
    """Replacing a skip edge with a 3x3 conv adds 9w^2 + 2w parameters and w*9*w*h*w MACs per cell.

    Cells have widths 4, 8, 16 at resolutions 8, 4, 2 (channels=4, one cell per stage, 8x8 input).
    """
    space = NB201Space(channels=4, cells_per_stage=1, input_size=8)
    skip = space.parse("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    conv = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    params, macs = ParamsCost(space), MacsCost(space)
    widths, sides = (4, 8, 16), (8, 4, 2)
    assert params.cost(conv) - params.cost(skip) == sum(9 * w * w + 2 * w for w in widths)
    assert macs.cost(conv) - macs.cost(skip) == sum(w * s * s * w * 9 for w, s in zip(widths, sides))
    assert macs.costs([conv, skip]).tolist() == [macs.cost(conv), macs.cost(skip)]
    assert (params.name, macs.name, macs.cheap) == ("params", "macs", False)


# --- finite costs (the protocol search and cost_bounds rely on, not the LookupCost class) ---------------
class TwoArchTable:
    """A finite cost that is not a LookupCost: two NB201 architectures with made-up costs."""

    name, unit, cheap = "latency_ms", "ms", True

    def __init__(self, space):
        self.archs = [space.from_index(7), space.from_index(11)]
        self.values = {self.archs[0].spec: 3.0, self.archs[1].spec: 1.0}

    def describe(self):
        return "two-row table"

    def cost(self, arch):
        return self.values[arch.spec]

    def costs(self, archs):
        return np.array([self.cost(a) for a in archs])

    def covers(self, space):
        return False

    def domain(self, space):
        return [space.choices_from_spec(a.spec) for a in self.archs]

    def bounds(self, space):
        from nas.cost import CostBound

        return (CostBound(1.0, self.archs[1], "two rows", False), CostBound(3.0, self.archs[0], "two rows", False))


def test_any_finite_cost_declares_its_domain_and_bounds(space, table):
    from nas.cost import FiniteCost
    from nas.evaluators import TabularEvaluator
    from nas.search import search

    cost = TwoArchTable(space)
    assert isinstance(cost, FiniteCost) and not isinstance(ParamsCost(space), FiniteCost)
    lo, hi = cost_bounds(space, cost)
    assert (lo.value, lo.method, hi.value) == (1.0, "two rows", 3.0)
    res = search("random", space, TabularEvaluator(table, "cifar10"), cost, "latency_ms<=5", budget=24)
    assert {e.spec for e in res.history} == {a.spec for a in cost.archs}


def test_cost_base_does_not_import_the_lookup_table():
    import ast
    from pathlib import Path

    import nas.cost.base

    tree = ast.parse(Path(nas.cost.base.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("nas.cost.") for m in imported), imported
