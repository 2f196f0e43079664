"""LayerNAS ends, with a reason, once no new feasible network can be reached (issue 15).

Before the fix a search whose budget exceeded the feasible set kept re-running
passes with a growing top-k (quadratic work): 313 feasible networks took about
14 s, 1,565 over two minutes, and the stop reason did not say the set was used up.
"""

import itertools
import json
import time

import numpy as np
import pytest

from hwprof.cli.main import main
from nas.cost import Constraint, LookupCost
from nas.evaluators import TabularEvaluator
from nas.search import search
from nas.spaces import NB201Space
from nas.tabular import load_nb201
from tests.nas.test_search import toy_problem

EXHAUSTED = "exhausted"


@pytest.fixture(scope="module")
def table():
    return load_nb201()


def _bound_for(table, device, n_feasible):
    """The latency bound under which exactly the ``n_feasible`` fastest networks fit (ties included)."""
    lat = np.sort(np.asarray(table.latency_ms[device]))
    bound = float(lat[n_feasible - 1])
    return bound, int((lat <= bound).sum())


def test_exhausted_feasible_set_stops_fast_with_a_reason(table):
    bound, n_feasible = _bound_for(table, "pixel3", 313)
    start = time.perf_counter()
    res = search(
        "layernas", NB201Space(), TabularEvaluator(table, "cifar10"), [LookupCost.from_nb201(table, "pixel3")],
        Constraint("latency_ms", bound), budget=2000, seed=0,
    )
    elapsed = time.perf_counter() - start
    assert res.stop_reason.startswith(EXHAUSTED), res.stop_reason
    assert elapsed < 5.0, f"{elapsed:.1f} s to use up {n_feasible} feasible networks"
    specs = [e.spec for e in res.history]
    assert len(set(specs)) == len(specs) and all(e.feasible for e in res.history)
    # every feasible network the single-layer moves connect is evaluated: all but at most a few isolated ones
    assert n_feasible - 5 <= res.n_evaluations <= n_feasible
    acc, lat = np.asarray(table.accuracy["cifar10"]), np.asarray(table.latency_ms["pixel3"])
    assert res.best_accuracy == float(acc[lat <= bound].max())


@pytest.mark.parametrize("seed", range(3))
def test_small_feasible_set_is_enumerated_exactly(seed):
    """Toy space: the stop reason comes once every feasible architecture is evaluated, never after the budget."""
    space, ev, cost, gains, costs = toy_problem(seed)
    all_choices = list(itertools.product(range(3), repeat=5))
    total_cost = np.array([sum(costs[i][c] for i, c in enumerate(ch)) for ch in all_choices])
    bound = int(np.sort(total_cost)[20])
    feasible = {space.spec_from_choices(ch) for ch, c in zip(all_choices, total_cost) if c <= bound}
    res = search("layernas", space, ev, cost, Constraint("latency_ms", bound), budget=243, seed=seed)
    assert res.stop_reason.startswith(EXHAUSTED), res.stop_reason
    # the cheapest option of every layer costs 0, so every feasible network is connected to the all-zero one
    assert {e.spec for e in res.history} == feasible


def test_cli_reports_the_exhausted_feasible_set(tmp_path, capsys, table):
    bound, n_feasible = _bound_for(table, "samsung_s7", 150)  # whole milliseconds: ties at the bound
    start = time.perf_counter()
    code = main(
        ["search", "--space", "nb201", "--algo", "layernas", "--cost", "lookup:samsung_s7", "--max-latency-ms",
         str(bound), "--budget", "2000", "-o", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert time.perf_counter() - start < 10
    data = json.loads((tmp_path / "layernas_seed0.json").read_text())
    assert data["stop_reason"].startswith(EXHAUSTED) and data["n_evaluations"] <= n_feasible
    assert EXHAUSTED in " ".join(out.split())


def test_search_benchmark_pieces_record_gaps_and_the_stop(table):
    """benchmarks/search.py on one tiny setting: gaps per percentile and the exhaustion rows its tables read."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "search.py"
    spec = importlib.util.spec_from_file_location("bench_search", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run_benchmark(
        datasets=["cifar10"], devices=["samsung_s7"], budgets=[40], percentiles=[10, 50], seeds=range(1),
        algorithms=["layernas", "random"], multi_objective=False,
    )
    result["exhaustion"] = bench.exhaustion(device="samsung_s7", sizes=(150,), seeds=range(1))
    result["summary"] = bench.summarize(result)
    assert {(r["percentile"], r["algorithm"]) for r in result["constrained"]} == {
        (p, a) for p in (10, 50) for a in ("layernas", "random")
    }
    assert all(r["gap_mean"] >= 0 and r["n_evaluations_mean"] == 40 for r in result["constrained"])
    (ex,) = result["exhaustion"]
    assert ex["n_feasible"] == 237 and ex["stop_reason"].startswith(EXHAUSTED) and ex["n_evaluations"] <= 237
    assert result["summary"]["exhaustion"]["all_stopped_before_budget"]
    p10 = result["summary"]["layernas@40"]["p10"]
    mine = [r["gap_mean"] for r in result["constrained"] if r["algorithm"] == "layernas" and r["percentile"] == 10]
    assert p10["gap_mean_cifar10"] == pytest.approx(mine[0])
    assert len(bench._tables(result, ["layernas", "random"], [40])) == 4
