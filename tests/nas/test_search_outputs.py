"""A search never replaces another search's results without being asked; `hwprof search --help` shows its defaults."""

import json
import re

import pytest

from hwprof.errors import ConfigError
from nas.search import SearchRequest, run_search
from tests.predictors.test_predict_cli import one_line_error, run

SEARCH = ["search", "--cost", "lookup:pixel3", "--max-latency-ms", "5", "--budget", "20"]


def test_another_search_is_refused_and_leaves_the_results_untouched(tmp_path, capsys):
    code, _, err = run(capsys, *SEARCH, "-o", tmp_path)
    assert code == 0, err
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run(capsys, "search", "--cost", "lookup:1080ti_1", "--max-latency-ms", "5", "--budget", "20", "-o", tmp_path)
    assert code == 1
    line = one_line_error(err)
    assert "already holds layernas_seed0 results of another search" in line and "--overwrite" in line
    assert "costs ['lookup:pixel3'] there, ['lookup:1080ti_1'] now" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_overwrite_replaces_another_search(tmp_path, capsys):
    assert run(capsys, *SEARCH, "-o", tmp_path)[0] == 0
    code, _, err = run(capsys, *SEARCH[:-1], "30", "--overwrite", "-o", tmp_path)
    assert code == 0, err
    data = json.loads((tmp_path / "layernas_seed0.json").read_text())
    assert data["n_evaluations"] == 30 and data["settings"]["budget"] == 30


def test_the_same_search_again_rewrites_the_same_results(tmp_path, capsys):
    assert run(capsys, *SEARCH, "-o", tmp_path)[0] == 0
    first = json.loads((tmp_path / "layernas_seed0.json").read_text())
    code, _, err = run(capsys, *SEARCH, "-o", tmp_path)
    assert code == 0, err
    again = json.loads((tmp_path / "layernas_seed0.json").read_text())
    for key in ("history", "best", "pareto", "settings"):
        assert again[key] == first[key], key
    assert first["settings"] == {
        "algorithm": "layernas", "space": "nb201", "accuracy": "tabular:cifar10", "costs": ["lookup:pixel3"],
        "constraints": ["latency_ms<=5"], "budget": 20, "seed": 0, "multi_objective": False, "params": {}, "table": None,
    }  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_another_algorithm_or_seed_writes_beside_the_first(tmp_path, capsys):
    assert run(capsys, *SEARCH, "-o", tmp_path)[0] == 0
    assert run(capsys, *SEARCH, "--seed", "1", "-o", tmp_path)[0] == 0
    assert run(capsys, *SEARCH, "--algo", "random", "-o", tmp_path)[0] == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["layernas_seed0.json", "layernas_seed1.json", "random_seed0.json"]


@pytest.mark.parametrize(
    "leftover, why",
    [
        ({"layernas_seed0_history.csv": "index,spec\n"}, "layernas_seed0.json is missing"),
        ({"layernas_seed0.json": "{not json"}, "layernas_seed0.json is unreadable"),
        ({"layernas_seed0.json": json.dumps({"algorithm": "layernas"})}, "records no search settings"),
    ],
)
def test_results_of_unknown_origin_are_refused(tmp_path, capsys, leftover, why):
    for name, text in leftover.items():
        (tmp_path / name).write_text(text)
    code, _, err = run(capsys, *SEARCH, "-o", tmp_path)
    assert code == 1 and why in one_line_error(err)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == leftover


def test_the_library_request_refuses_too_and_takes_overwrite(tmp_path):
    request = SearchRequest(costs=("lookup:pixel3",), constraints=("latency_ms<=5",), budget=20, out=tmp_path)
    run_search(request)
    other = SearchRequest(costs=("lookup:pixel3",), constraints=("latency_ms<=4",), budget=20, out=tmp_path)
    with pytest.raises(ConfigError, match=r"constraints \['latency_ms<=5'\] there, \['latency_ms<=4'\] now"):
        run_search(other)
    outcome = run_search(SearchRequest(**{**other.__dict__, "overwrite": True}))
    assert json.loads(outcome.files[1].read_text())["constraints"] == ["latency_ms<=4"]


def test_modnas_refuses_overwrite(tmp_path, capsys):
    code, _, err = run(capsys, "search", "--algo", "modnas", "--overwrite", "-o", tmp_path)
    assert code == 1 and "--algo modnas never replaces a training run" in one_line_error(err)


def test_help_shows_the_default_budget(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, "search", "--help")
    assert code == 0
    row = next(line for line in out.splitlines() if "--budget" in line)
    assert re.search(r"Unique accuracy evaluations \[default: 300\]\.", row), row
    assert "--overwrite" in out
