"""`hwprof search` through the real entry point: output, saved files, one-line errors."""

import csv
import json
import re

import numpy as np
import pytest

from hwprof.cli.main import main
from nas.tabular import load_nb201


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def table():
    return load_nb201()


def test_search_prints_best_and_pareto_and_saves_files(tmp_path, capsys, table):
    code, out, err = run(
        capsys, "search", "--space", "nb201", "--algo", "layernas", "--accuracy", "tabular:cifar100",
        "--cost", "lookup:pixel3", "--max-latency-ms", "5", "--budget", "60", "--seed", "0", "-o", str(tmp_path),
        "--param", "buckets=3",
    )
    assert code == 0, err
    data = json.loads((tmp_path / "layernas_seed0.json").read_text())
    best = data["best"]
    idx = table.index_of(best["spec"])
    assert best["accuracy"] == float(table.accuracy["cifar100"][idx])
    assert best["costs"]["latency_ms"] == float(table.latency_ms["pixel3"][idx]) <= 5
    assert data["params"]["buckets"] == 3 and data["n_evaluations"] == 60 and data["constraints"] == ["latency_ms<=5"]
    assert "best" in out and best["spec"][:20] in out.replace("\n", "") and "Pareto set" in out
    rows = list(csv.DictReader(open(tmp_path / "layernas_seed0_history.csv")))
    assert len(rows) == 60 and rows[0]["spec"] == data["history"][0]["spec"]


def test_multi_objective_with_two_devices_names_each_latency(tmp_path, capsys, table):
    code, out, err = run(
        capsys, "search", "--algo", "random", "--cost", "lookup:pixel3", "--cost", "lookup:1080ti_1",
        "--constraint", "latency_ms_1080ti_1<=9", "--multi-objective", "--budget", "40", "-o", str(tmp_path),
    )
    assert code == 0, err
    data = json.loads((tmp_path / "random_seed0.json").read_text())
    assert [c["name"] for c in data["costs"]] == ["latency_ms_pixel3", "latency_ms_1080ti_1"]
    assert all(e["costs"]["latency_ms_1080ti_1"] <= 9 for e in data["history"])
    assert data["pareto"] and all(e["feasible"] for e in data["pareto"])


def test_lookup_csv_cost(tmp_path, capsys, table):
    path = tmp_path / "mine.csv"
    lat = np.asarray(table.latency_ms["gold_6240"]) * 2
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "lat_board_ms"])
        w.writerows(zip(table.archs, lat.tolist()))
    bound = float(np.percentile(lat, 30))
    code, _, err = run(
        capsys, "search", "--cost", f"lookup-csv:{path}:board", "--max-latency-ms", str(bound),
        "--budget", "30", "-o", str(tmp_path / "out"),
    )
    assert code == 0, err
    data = json.loads((tmp_path / "out" / "layernas_seed0.json").read_text())
    best = data["best"]
    assert best["costs"]["latency_ms"] == pytest.approx(2 * table.latency_ms["gold_6240"][table.index_of(best["spec"])])


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--max-latency-ms", "0.001"], r"infeasible: the minimum latency_ms is 0\.0032769 ms \(exhaustive over all 15625"),
        (["--max-latency-ms", "5", "--budget", "3"], "budget 3 is smaller than one layer's expansion"),
        (["--max-latency-ms", "5", "--algo", "hill"], "unknown search algorithm 'hill'"),
        (["--max-latency-ms", "5", "--space", "nope"], "unknown space 'nope'"),
        (["--max-latency-ms", "5", "--accuracy", "tabular:svhn"], "unknown NB201 dataset 'svhn'"),
        (["--max-latency-ms", "5", "--accuracy", "oracle"], "unknown accuracy objective 'oracle'"),
        (["--max-latency-ms", "5", "--accuracy", "proxy:snip"], "unknown proxy 'snip'"),
        (["--constraint", "energy_mj<=2"], "'energy_mj', which is not a cost objective"),
        (["--constraint", "latency_ms<5"], "expected NAME<=VALUE"),
        (["--max-latency-ms", "5", "--param", "buckets"], "--param expects KEY=VALUE"),
        (["--max-latency-ms", "5", "--param", "colour=red"], r"layernas has no parameter\(s\) \['colour'\]"),
        ([], "give a bound"),
        (["--max-latency-ms", "5", "--devices", "pixel3"], "--devices is not one of its settings"),
    ],
)
def test_bad_input_is_one_line(args, pattern, capsys, tmp_path):
    code, _, err = run(capsys, "search", "--cost", "lookup:pixel3", "-o", str(tmp_path), *args)
    assert code == 1
    assert re.search(pattern, one_line_error(err)), err


@pytest.mark.parametrize(
    "cost, pattern",
    [
        ("lookup:pixel9", "no latency column for device 'pixel9'"),
        ("telepathy", "unknown cost objective 'telepathy'"),
        ("lookup-csv:only-a-file", "expected lookup-csv:FILE:COLUMN"),
        ("store:missing.db", "expected store:DB:DEVICE"),
    ],
)
def test_bad_cost_is_one_line(cost, pattern, capsys, tmp_path):
    code, _, err = run(capsys, "search", "--cost", cost, "--max-latency-ms", "5", "-o", str(tmp_path))
    assert code == 1 and pattern in one_line_error(err)


def test_missing_cost_is_reported(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--max-latency-ms", "5", "-o", str(tmp_path))
    assert code == 1 and "give at least one cost (--cost)" in one_line_error(err)


@pytest.mark.parametrize("algo", ["layernas", "random", "evolution", "nsga2"])
def test_partial_csv_table_keeps_the_search_inside_the_table(tmp_path, capsys, table, algo):
    """A lookup table of 50 networks: every algorithm only visits (and reports) measured networks."""
    path = tmp_path / "few.csv"
    path.write_text("arch,lat_board_ms\n" + "".join(f"{a},{i + 1}\n" for i, a in enumerate(table.archs[:50])))
    code, _, err = run(capsys, "search", "--algo", algo, "--cost", f"lookup-csv:{path}:board", "--max-latency-ms", "40",
                       "--budget", "30", "-o", str(tmp_path / "out"))
    assert code == 0, err
    data = json.loads((tmp_path / "out" / f"{algo}_seed0.json").read_text())
    specs = [e["spec"] for e in data["history"]]
    assert specs and set(specs) <= set(table.archs[:40])  # in the table and under the bound (latency = row + 1)
    assert len(set(specs)) == len(specs) <= 30


@pytest.mark.slow
def test_measure_cost_profiles_candidates_into_the_store(tmp_path, capsys):
    """Real profiling on ort-cpu: every evaluated candidate is measured once and stored."""
    db = tmp_path / "h.db"
    code, _, err = run(
        capsys, "search", "--algo", "random", "--cost", "measure:ort-cpu", "--db", str(db), "--multi-objective",
        "--budget", "5", "-o", str(tmp_path / "out"),
    )
    assert code == 0, err
    data = json.loads((tmp_path / "out" / "random_seed0.json").read_text())
    from hwprof.store import Store

    with Store(db, create=False) as store:
        stored = store.latencies("ort-cpu", space="nb201")
    for e in data["history"]:
        assert stored[e["spec"]] == pytest.approx(e["costs"]["latency_ms"])


@pytest.mark.slow
def test_train_accuracy_end_to_end(tmp_path, capsys):
    code, out, err = run(
        capsys, "search", "--algo", "random", "--accuracy", "train:digits", "--cost", "params",
        "--multi-objective", "--budget", "5", "-o", str(tmp_path),
    )
    assert code == 0, err
    data = json.loads((tmp_path / "random_seed0.json").read_text())
    assert data["evaluator"] == "train:digits" and max(e["accuracy"] for e in data["history"]) > 50


def test_predictor_cost_from_a_saved_predictor(tmp_path, capsys, table):
    """A real linear predictor trained on 1 in 50 pixel3 latencies, saved, then used as the search cost."""
    persistence = pytest.importorskip("predictors.persistence")
    from predictors.features.encoding import featurize
    from predictors.linear import LinearPredictor

    idx = np.arange(0, len(table.archs), 50)
    X, schema = featurize([table.archs[i] for i in idx], "nb201")
    persistence.save(LinearPredictor().fit(X, table.latency_ms["pixel3"][idx], schema=schema), tmp_path / "pred")
    code, _, err = run(capsys, "search", "--cost", f"predictor:{tmp_path / 'pred'}", "--max-latency-ms", "6",
                       "--budget", "40", "-o", str(tmp_path / "out"))
    assert code == 0, err
    data = json.loads((tmp_path / "out" / "layernas_seed0.json").read_text())
    predictor = persistence.load_predictor(tmp_path / "pred")
    specs = [e["spec"] for e in data["history"]]
    predicted = predictor.predict_archs(specs)
    assert [e["costs"]["latency_ms"] for e in data["history"]] == pytest.approx(predicted.tolist())
    assert max(predicted) <= 6


# --- one workflow, one registry, one KEY=VALUE parser -------------------------------------------------
@pytest.fixture
def echo_algorithm():
    """A third-party algorithm registered by name: records the type of its parameter, evaluates one network."""
    from hwprof import registry

    def echo(problem, rng, *, flag=False):
        problem.notes["flag_type"] = type(flag).__name__
        problem.evaluate((0,) * len(problem.sizes))
        return "echoed"

    registry.register("search", "echo", echo)
    yield echo
    registry.unregister("search", "echo")


def test_param_values_are_decoded_like_every_other_key_value_option(echo_algorithm, tmp_path, capsys):
    """`--param flag=yes` is True, as for `hwprof predict train` (it used to be the string 'yes' here)."""
    code, out, err = run(capsys, "search", "--algo", "echo", "--cost", "params", "--multi-objective", "--budget", "6",
                         "--param", "flag=yes", "-o", str(tmp_path))
    assert code == 0, err
    data = json.loads((tmp_path / "echo_seed0.json").read_text())
    assert data["params"]["flag"] is True and data["params"]["flag_type"] == "bool"
    assert data["stop_reason"] == "echoed" and "echo: 1 evaluations of 6" in out


def test_a_notebook_reproduces_the_command_with_run_search(tmp_path, capsys):
    from nas.search import SearchRequest, run_search

    code, out, err = run(capsys, "search", "--algo", "evolution", "--cost", "lookup:pixel3", "--cost", "lookup:1080ti_1",
                         "--constraint", "latency_ms_pixel3<=6", "--budget", "40", "--seed", "2",
                         "--param", "population_size=8", "-o", str(tmp_path / "cli"))
    assert code == 0, err
    seen = []
    outcome = run_search(
        SearchRequest(algorithm="evolution", costs=("lookup:pixel3", "lookup:1080ti_1"),
                      constraints=("latency_ms_pixel3<=6",),
                      budget=40, seed=2, params={"population_size": 8}, out=tmp_path / "lib"),
        on_progress=lambda *args: seen.append(args),
    )
    cli = json.loads((tmp_path / "cli" / "evolution_seed2.json").read_text())
    lib = json.loads(outcome.files[1].read_text())
    assert cli["constraints"] == lib["constraints"] == ["latency_ms_pixel3<=6"]
    for key in ("history", "pareto", "best", "params", "costs"):
        assert cli[key] == lib[key], key
    assert outcome.result is not None and outcome.result.n_evaluations == 40 == len(seen)
    assert seen[-1][:3] == ("evolution", 40, 40) and seen[-1][3].startswith("best ")
    assert outcome.summary == (f"saved {outcome.files[0]} and {outcome.files[1]}",)


def test_search_request_takes_what_a_notebook_writes():
    from pathlib import Path

    from nas.search import SearchRequest

    r = SearchRequest(costs="lookup:pixel3", constraints=["latency_ms<=5"], devices=["pixel3"], out="x", table="t.csv")
    assert r.costs == ("lookup:pixel3",) and r.constraints == ("latency_ms<=5",) and r.devices == ("pixel3",)
    assert r.out == Path("x") and r.table == Path("t.csv") and r.db == Path("hwprof.db")
