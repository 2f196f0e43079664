"""The cost and accuracy spec grammars (`hwprof search --cost/--accuracy`) as library calls."""

import csv
from contextlib import ExitStack

import numpy as np
import pytest

from hwprof.errors import ConfigError, HwprofError
from nas.cost import LookupCost, MacsCost, ParamsCost, parse_cost, parse_costs, split_cost
from nas.evaluators import EVALUATOR_FORMS, NaswotEvaluator, SynflowEvaluator, TabularEvaluator, TrainEvaluator, parse_evaluator
from nas.spaces import NB201Space
from nas.spaces.fbnet import FBNetSpace
from nas.tabular import load_nb201


@pytest.fixture(scope="module")
def space():
    return NB201Space()


@pytest.fixture(scope="module")
def table():
    return load_nb201()


def test_each_cost_form_builds_its_model(space, table, tmp_path):
    arch = space.from_index(42)
    lookup = parse_cost("lookup:pixel3", space)
    assert isinstance(lookup, LookupCost) and lookup.cost(arch) == table.latency_ms["pixel3"][42]
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["arch", "lat_board_ms"], [arch.spec, "2.5"]])
    assert parse_cost(f"lookup-csv:{path}:board", space).cost(arch) == 2.5
    assert isinstance(parse_cost("params", space), ParamsCost) and isinstance(parse_cost("macs", space), MacsCost)


def test_store_cost_reads_the_store_and_leaves_nothing_open(space, tmp_path):
    from hwprof.store import Store

    db = tmp_path / "h.db"
    Store(db).close()
    with pytest.raises(HwprofError, match="no measurements on device 'ort-cpu'"):
        parse_cost(f"store:{db}:ort-cpu", space)
    db.unlink()  # on every platform only possible when no connection is left open


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("telepathy", r"unknown cost objective 'telepathy'; expected lookup:DEVICE .* \| macs"),
        ("lookup", r"cost 'lookup': expected lookup:DEVICE, e.g. lookup:pixel3"),
        ("lookup-csv:only-a-file", r"expected lookup-csv:FILE:COLUMN"),
        ("lookup-csv:f.csv:", r"expected lookup-csv:FILE:COLUMN"),
        ("store:missing.db", r"expected store:DB:DEVICE"),
        ("predictor:", r"expected predictor:DIR"),
        ("measure", r"expected measure:DEVICE"),
        ("params:all", r"params takes no argument"),
    ],
)
def test_malformed_cost_specs_are_config_errors_naming_the_form(spec, pattern, space):
    with pytest.raises(ConfigError, match=pattern):
        parse_cost(spec, space)


def test_split_cost_keeps_colons_of_the_path_and_tags_the_latency():
    spec = split_cost("lookup-csv:C:/data/t.csv:board")
    assert spec.args == ("C:/data/t.csv", "board") and spec.tag == "board"
    assert split_cost("predictor:models/pixel3").tag == "pixel3" and split_cost("params").tag == "params"


def test_several_latencies_get_distinct_names(space):
    costs = parse_costs(["lookup:pixel3", "params", "lookup:1080ti_1"], space)
    assert [c.name for c in costs] == ["latency_ms_pixel3", "params", "latency_ms_1080ti_1"]
    assert parse_costs(["lookup:pixel3", "params"], space)[0].name == "latency_ms"


def test_nb201_table_objectives_refuse_another_space():
    fbnet = FBNetSpace()
    with pytest.raises(ConfigError, match="only scores the nb201 space, not 'fbnet'"):
        parse_cost("lookup:pixel3", fbnet)
    with pytest.raises(ConfigError, match="only scores the nb201 space"):
        parse_evaluator("tabular:cifar10", fbnet)


def test_measure_cost_is_closed_by_the_resources(space, tmp_path, monkeypatch):
    import hwprof.profiling

    closed = []

    class FakeProfiler:
        def close(self):
            closed.append(True)

    monkeypatch.setattr(hwprof.profiling, "open_profiler", lambda *a, **k: FakeProfiler())
    with ExitStack() as resources:
        cost = parse_cost("measure:ort-cpu", space, resources=resources)
        assert isinstance(cost.profiler, FakeProfiler) and not closed
    assert closed == [True]


def test_each_accuracy_form_builds_its_evaluator(space, table):
    ev = parse_evaluator("tabular:cifar100", space)
    assert isinstance(ev, TabularEvaluator) and ev.evaluate(space.from_index(3)) == table.accuracy["cifar100"][3]
    assert parse_evaluator("tabular", space).name == "tabular:cifar10"
    trained = parse_evaluator("train:digits", space, seed=3)
    assert isinstance(trained, TrainEvaluator) and trained.space.channels == 8 and trained.seed == 3
    assert isinstance(parse_evaluator("train", space), TrainEvaluator)
    assert isinstance(parse_evaluator("proxy:synflow", space), SynflowEvaluator)
    assert isinstance(parse_evaluator("proxy:naswot", space), NaswotEvaluator)


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("oracle", "unknown accuracy objective 'oracle'; expected one of " + EVALUATOR_FORMS.replace("|", r"\|")),
        ("proxy:snip", "unknown proxy 'snip' in accuracy 'proxy:snip'; known: synflow, naswot"),
        ("train:cifar10", "unknown training data 'cifar10' in accuracy 'train:cifar10'; known: digits"),
    ],
)
def test_malformed_accuracy_specs_are_config_errors(spec, pattern, space):
    with pytest.raises(ConfigError, match=pattern):
        parse_evaluator(spec, space)


def test_same_spec_same_numbers_as_the_objects(space, table):
    """parse_cost('lookup:X') is LookupCost.from_nb201(table, X): a notebook gets the command's costs."""
    archs = [space.from_index(i) for i in range(0, 15625, 997)]
    assert np.array_equal(parse_cost("lookup:titanx_1", space).costs(archs),
                          LookupCost.from_nb201(table, "titanx_1").costs(archs))
