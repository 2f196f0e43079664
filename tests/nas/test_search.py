"""Search algorithms, the shared problem/result types and the search() factory."""

import csv
import itertools
import json

import numpy as np
import pytest

from hwprof.errors import ConfigError, InvalidArchitecture, SearchError, UnknownNameError
from nas.cost import Constraint, LookupCost, PredictorCost
from nas.evaluators import TabularEvaluator
from nas.pareto import modnas_hypervolume, pareto_mask
from nas.search import SearchResult, algorithm_names, algorithm_params, register_algorithm, search
from nas.search.evolution import mutate
from nas.search.layernas import default_buckets
from nas.spaces import NB201Space
from hwprof.spaces import SearchSpace
from nas.tabular import load_nb201

ALGOS = ["layernas", "random", "evolution", "nsga2"]


@pytest.fixture(scope="module")
def table():
    return load_nb201()


@pytest.fixture(scope="module")
def nb201():
    return NB201Space()


@pytest.fixture(scope="module")
def setting(table):
    """cifar10 accuracy, pixel3 latency, budget at the 25th percentile, and the exhaustive optimum."""
    lat = table.latency_ms["pixel3"]
    bound = float(np.percentile(lat, 25))
    acc = table.accuracy["cifar10"]
    optimum = float(acc[lat <= bound].max())
    return TabularEvaluator(table, "cifar10"), LookupCost.from_nb201(table, "pixel3"), bound, optimum


# --- a synthetic layer-wise space where LayerNAS's assumptions hold exactly ---------------
class ToySpace(SearchSpace):
    """L layers x 3 options, spec 'o0-o1-...'; option 0 is the cheapest in every layer."""

    name = "toy"

    def __init__(self, n_layers=5, n_options=3):
        self._layers = [(f"l{i}", tuple(f"op{j}" for j in range(n_options))) for i in range(n_layers)]

    @property
    def layers(self):
        return list(self._layers)

    @property
    def input_shape(self):
        return (1, 1)

    def spec_from_choices(self, choices):
        return "-".join(str(int(c)) for c in choices)

    def choices_from_spec(self, spec):
        try:
            choices = tuple(int(x) for x in spec.split("-"))
        except ValueError:
            raise InvalidArchitecture(f"toy: bad spec {spec!r}") from None
        self._check_choices(choices)
        return choices

    def build(self, arch, seed=None):
        import torch

        return torch.nn.Identity()


class AdditiveEvaluator:
    """accuracy = sum of per-(layer, option) gains."""

    name, unit = "additive", "%"

    def __init__(self, space, gains):
        self.space, self.gains = space, gains

    def evaluate(self, arch):
        return float(sum(self.gains[i][c] for i, c in enumerate(self.space.to_choices(arch))))


class AdditivePredictor:
    """Integer costs per (layer, option), 0 for option 0: cost grows with heavier options."""

    def __init__(self, space, costs):
        self.space, self.costs = space, costs

    def predict_archs(self, archs):
        return np.array([sum(self.costs[i][c] for i, c in enumerate(self.space.to_choices(a))) for a in archs], float)


def toy_problem(seed):
    rng = np.random.default_rng(seed)
    space = ToySpace()
    gains = rng.random((5, 3)) * 10
    costs = np.column_stack([np.zeros(5), rng.integers(1, 4, size=(5, 2))]).astype(int)
    return space, AdditiveEvaluator(space, gains), PredictorCost(AdditivePredictor(space, costs)), gains, costs


@pytest.mark.parametrize("seed", range(5))
def test_one_layernas_pass_is_exact_on_additive_problems(seed):
    """With one bucket per integer cost and the cheapest default, a single pass is the knapsack DP of the paper."""
    space, ev, cost, gains, costs = toy_problem(seed)
    all_choices = list(itertools.product(range(3), repeat=5))
    total_cost = np.array([sum(costs[i][c] for i, c in enumerate(ch)) for ch in all_choices])
    total_acc = np.array([sum(gains[i][c] for i, c in enumerate(ch)) for ch in all_choices])
    bound = int(np.percentile(total_cost, 40))
    best = float(total_acc[total_cost <= bound].max())
    res = search(
        "layernas", space, ev, cost, Constraint("latency_ms", bound), budget=243, seed=0,
        buckets=bound + 1, refine=False,
    )
    assert res.best_accuracy == pytest.approx(best)
    assert res.params["passes"] == 1 and res.n_evaluations < 243


def test_layernas_first_layer_expands_every_option_around_the_default():
    space, ev, cost, _, _ = toy_problem(0)
    res = search("layernas", space, ev, cost, None, budget=6, seed=0, multi_objective=True, default="first")
    specs = [e.spec for e in res.history]
    assert specs[:3] == ["0-0-0-0-0", "1-0-0-0-0", "2-0-0-0-0"]
    assert res.params["default_spec"] == "0-0-0-0-0"


# --- NB201: every algorithm honours the contract ---------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_algorithms_respect_budget_constraint_and_determinism(algo, nb201, setting):
    ev, cost, bound, optimum = setting
    res = search(algo, nb201, ev, [cost], Constraint("latency_ms", bound), budget=60, seed=1)
    specs = [e.spec for e in res.history]
    assert res.n_evaluations == 60 and len(set(specs)) == 60
    assert [e.index for e in res.history] == list(range(60))
    assert all(e.feasible and e.costs[0] <= bound for e in res.history)  # infeasible ones are never evaluated
    assert res.best.accuracy == max(e.accuracy for e in res.history) <= optimum
    assert res.stop_reason == "budget"
    again = search(algo, nb201, ev, [cost], Constraint("latency_ms", bound), budget=60, seed=1)
    assert [e.spec for e in again.history] == specs


def test_random_search_differs_across_seeds(nb201, setting):
    ev, cost, bound, _ = setting
    a = search("random", nb201, ev, [cost], f"latency_ms<={bound}", budget=20, seed=0)
    b = search("random", nb201, ev, [cost], f"latency_ms<={bound}", budget=20, seed=1)
    assert [e.spec for e in a.history] != [e.spec for e in b.history]


def test_layernas_reaches_the_issue_target_and_beats_the_baselines(table, nb201):
    """Gap to the exhaustive optimum with 300 evaluations, cifar10, 25th-percentile budgets on three devices."""
    ev = TabularEvaluator(table, "cifar10")
    gaps = {a: [] for a in ("layernas", "random", "evolution")}
    for device in ("1080ti_1", "silver_4114", "pixel3"):
        lat = table.latency_ms[device]
        bound = float(np.percentile(lat, 25))
        optimum = float(table.accuracy["cifar10"][lat <= bound].max())
        cost = LookupCost.from_nb201(table, device)
        for algo in gaps:
            for seed in (0, 1):
                res = search(algo, nb201, ev, [cost], Constraint("latency_ms", bound), budget=300, seed=seed)
                gaps[algo].append(optimum - res.best_accuracy)
    assert np.mean(gaps["layernas"]) <= 0.3
    assert np.mean(gaps["layernas"]) < np.mean(gaps["random"])
    assert np.mean(gaps["layernas"]) < np.mean(gaps["evolution"])


@pytest.mark.parametrize("algo", ALGOS)
def test_multi_objective_pareto_set_is_the_front_of_the_history(algo, nb201, setting, table):
    ev, cost, _, _ = setting
    res = search(algo, nb201, ev, [cost], None, budget=120, seed=0, multi_objective=True)
    pts = np.array([[e.accuracy, e.costs[0]] for e in res.history])
    expected = {res.history[i].spec for i in np.flatnonzero(pareto_mask(pts, ["max", "min"]))}
    assert {e.spec for e in res.pareto} == expected
    assert [e.costs[0] for e in res.pareto] == sorted(e.costs[0] for e in res.pareto)


def test_layernas_multi_objective_hypervolume(nb201, table):
    acc, lat = table.accuracy["cifar10"], table.latency_ms["1080ti_1"]
    lower, upper = [100 - acc.max(), lat.min()], [100 - acc.min(), lat.max()]
    true_hv = modnas_hypervolume(acc, lat, lower, upper)
    res = search("layernas", nb201, TabularEvaluator(table, "cifar10"), [LookupCost.from_nb201(table, "1080ti_1")],
                 None, budget=300, seed=0, multi_objective=True)
    hv = modnas_hypervolume([e.accuracy for e in res.pareto], [e.costs[0] for e in res.pareto], lower, upper)
    assert hv / true_hv >= 0.98


def test_two_costs_and_a_constraint_on_the_second(nb201, table):
    ev = TabularEvaluator(table, "cifar10")
    pixel = LookupCost.from_nb201(table, "pixel3", name="latency_pixel3_ms")
    gpu = LookupCost.from_nb201(table, "1080ti_1", name="latency_gpu_ms")
    bound = float(np.percentile(table.latency_ms["1080ti_1"], 50))
    res = search("layernas", nb201, ev, [pixel, gpu], Constraint("latency_gpu_ms", bound), budget=80, seed=0,
                 multi_objective=True)
    assert res.params["bucket_cost"] == "latency_gpu_ms"  # buckets follow the constrained cost
    assert all(e.costs[1] <= bound for e in res.history)
    assert res.best_costs["latency_gpu_ms"] <= bound and set(res.best_costs) == {"latency_pixel3_ms", "latency_gpu_ms"}


# --- progress, result files -------------------------------------------------------------------
def test_progress_callback_and_result_files(tmp_path, nb201, setting):
    ev, cost, bound, _ = setting
    seen = []
    res = search("layernas", nb201, ev, [cost], Constraint("latency_ms", bound), budget=30, seed=0,
                 on_evaluation=lambda p: seen.append((p.n_evaluations, p.budget, p.best.accuracy if p.best else None)))
    assert [n for n, _, _ in seen] == list(range(1, 31)) and all(b == 30 for _, b, _ in seen)
    bests = [a for _, _, a in seen if a is not None]
    assert bests == sorted(bests) and bests[-1] == res.best_accuracy
    csv_path, json_path = res.write(tmp_path)
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["spec"] for r in rows] == [e.spec for e in res.history]
    assert [float(r["latency_ms"]) for r in rows] == [e.costs[0] for e in res.history]
    data = json.loads(json_path.read_text())
    assert data["best"]["spec"] == res.best.spec and data["constraints"] == [f"latency_ms<={bound:g}"]
    back = SearchResult.from_json(data)
    assert back.history == res.history and back.pareto == res.pareto and back.best == res.best
    assert back.best_after(10) == res.best_after(10)


# --- bad input ------------------------------------------------------------------------------------
def test_infeasible_constraint_names_the_minimum(nb201, setting, table):
    ev, cost, _, _ = setting
    minimum = float(table.latency_ms["pixel3"].min())
    with pytest.raises(SearchError, match=rf"infeasible: the minimum latency_ms is {minimum:.6g} ms \(exhaustive over all 15625"):
        search("random", nb201, ev, [cost], "latency_ms<=0.001", budget=50)


def test_infeasible_constraint_with_an_estimated_minimum_says_so():
    space, ev, cost, _, _ = toy_problem(0)
    cost.cheap = False  # pretend costing is expensive: no enumeration
    with pytest.raises(SearchError, match="smallest found latency_ms is 0 .*estimated from"):
        search("random", space, ev, cost, "latency_ms<=-1", budget=50)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"algorithm": "bogus"}, UnknownNameError, "unknown search algorithm 'bogus'; known: evolution, layernas"),
        ({"budget": 4}, SearchError, "smaller than one layer's expansion"),
        ({"budget": 0}, ConfigError, "positive integer"),
        ({"constraint": "energy_mj<=3"}, ConfigError, "not a cost objective"),
        ({"buckets": 0}, ConfigError, "buckets"),
        ({"population": 3}, ConfigError, r"no parameter\(s\) \['population'\]"),
        ({"costs": []}, ConfigError, "at least one cost"),
    ],
)
def test_bad_input(kwargs, error, pattern, nb201, setting):
    ev, cost, bound, _ = setting
    args = {"algorithm": "layernas", "costs": [cost], "constraint": f"latency_ms<={bound}", "budget": 50}
    args.update(kwargs)
    algorithm, costs = args.pop("algorithm"), args.pop("costs")
    with pytest.raises(error, match=pattern):
        search(algorithm, nb201, ev, costs, **args)


def test_registry_and_helpers():
    assert set(ALGOS) <= set(algorithm_names())
    assert algorithm_params("evolution")["population_size"] == 20
    # NB201: 6 layers x 4 alternatives = 24 expansions per bucket and pass
    assert [default_buckets(b, 24) for b in (100, 300, 1000)] == [2, 4, 8]
    assert [default_buckets(b, 24, multi_objective=True) for b in (100, 300, 1000)] == [4, 8, 24]
    # FBNet: 22 x 8 = 176 expansions; one pass must fit in the budget
    assert [default_buckets(b, 176) for b in (100, 400, 5000)] == [1, 2, 8]
    assert default_buckets(1000, 176, multi_objective=True) == 5
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = mutate((0, 1, 2, 3, 4, 0), (5,) * 6, rng)
        assert sum(a != b for a, b in zip(child, (0, 1, 2, 3, 4, 0))) == 1

    def first_only(problem, rng):
        problem.evaluate((0,) * 5)
        return "done"

    register_algorithm("first-only", first_only)
    space, ev, cost, _, _ = toy_problem(0)
    res = search("first-only", space, ev, cost, None, budget=5, multi_objective=True)
    assert res.stop_reason == "done" and [e.spec for e in res.history] == ["0-0-0-0-0"]


def test_layernas_on_the_22_layer_fbnet_chain():
    """A space too large to enumerate: cost bounds are estimated, and the search walks all 22 layers."""
    from nas.spaces.fbnet import FBNetSpace

    space = FBNetSpace()
    rng = np.random.default_rng(0)
    gains = rng.random((22, 9))
    unit_cost = np.column_stack([rng.random((22, 8)) + 0.5, np.zeros(22)])  # 'skip' (option 8) is free
    ev = AdditiveEvaluator(space, gains)
    cost = PredictorCost(AdditivePredictor(space, unit_cost))
    res = search("layernas", space, ev, cost, "latency_ms<=15", budget=400, seed=0)
    assert res.params["default_spec"] == "|".join(["skip"] * 22)  # the per-layer cheapest option
    assert res.n_evaluations == 400 and all(e.costs[0] <= 15 for e in res.history)
    layers_changed = {i for e in res.history for i, c in enumerate(space.choices_from_spec(e.spec)) if c != 8}
    assert layers_changed == set(range(22))
    # better than the best of 400 random feasible architectures
    rand = search("random", space, ev, cost, "latency_ms<=15", budget=400, seed=0)
    assert res.best_accuracy > rand.best_accuracy
