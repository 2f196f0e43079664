"""A folder holding a MODNAS model and other searches' results is reported as both; corrupt numbers are refused."""

from __future__ import annotations

import json

import pytest

import reporting.inputs as inputs
from reporting import build_report, detect_kinds
from reporting.inputs import ModnasFront, ModnasInput
from tests.cli_helpers import one_line_error, run


@pytest.fixture
def search_dir(tmp_path, capsys):
    out = tmp_path / "results"
    code, _, err = run(capsys, "search", "--algo", "random", "--cost", "macs", "--multi-objective", "--budget", "5", "-o", out)
    assert code == 0, err
    return out


def test_a_modnas_model_beside_search_results_reports_both(search_dir, tmp_path, monkeypatch):
    (search_dir / inputs.MODNAS_MARK).write_text("{}")
    assert detect_kinds(search_dir) == ("modnas", "search")
    front = ModnasFront("pixel3", (1.0, 2.0), "ms", (None, None), ("|a|", "|b|"), (0.0, 1.0))
    monkeypatch.setattr(inputs, "load_modnas_dir", lambda path: ModnasInput(path, "test", "surrogate", (front,)))
    page = build_report([search_dir], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>MODNAS fronts (results)</h2>" in page and "<h2>Search: random seed 0 (results)</h2>" in page


def test_non_finite_numbers_in_a_search_json_are_refused(search_dir, capsys):
    path = search_dir / "random_seed0.json"
    doc = json.loads(path.read_text())
    doc["best"]["accuracy"] = float("nan")
    path.write_text(json.dumps(doc))  # Python writes the NaN literal its reader accepts
    line = one_line_error(capsys, "report", search_dir, "-o", search_dir.parent / "r.html")
    assert "random_seed0.json' is corrupt: best.accuracy is nan; expected a finite number" in line


@pytest.mark.parametrize("field, value", [("predicted_latency_ms", float("inf")), ("preference", [float("-inf"), 1.0])])
def test_non_finite_numbers_in_a_front_json_are_refused(field, value, tmp_path, capsys):
    entry = {"preference": [0.5, 0.5], "arch": "|a|", "choices": [0], "predicted_accuracy": 0.9,
             "predicted_latency_ms": 2.0, "surrogate_error_pct": 9.0}
    entry[field] = value
    path = tmp_path / "front.json"
    path.write_text(json.dumps({"device": "pixel3", "front": [entry]}))
    line = one_line_error(capsys, "report", path, "-o", tmp_path / "r.html")
    assert f"front.json' is corrupt: front[0].{field}" in line and "expected a finite number" in line


TINY_MODNAS = ["-p", "steps=3", "-p", "accuracy_epochs=2", "-p", "latency_epochs=1", "-p", "max_table_archs=300",
               "-p", "n_refs=2", "-p", "tasks_per_step=2", "-p", "samples_per_task=4"]


@pytest.mark.slow
def test_modnas_and_budgeted_searches_share_a_folder_in_either_order(search_dir, tmp_path, capsys):
    """MODNAS into a folder of search results, then another search into it: all kept, all reported."""
    code, _, err = run(capsys, "search", "--algo", "modnas", "--devices", "pixel3", *TINY_MODNAS, "-o", search_dir)
    assert code == 0, err
    code, _, err = run(capsys, "search", "--algo", "nsga2", "--cost", "macs", "--multi-objective", "--budget", "5",
                       "-o", search_dir)
    assert code == 0, err
    assert {"modnas.json", "random_seed0.json", "nsga2_seed0.json"} <= {p.name for p in search_dir.iterdir()}
    page = build_report([search_dir], tmp_path / "r.html").read_text(encoding="utf-8")
    for title in ("MODNAS fronts (results)", "Search: random seed 0 (results)", "Search: nsga2 seed 0 (results)"):
        assert f"<h2>{title}</h2>" in page


def test_an_interrupted_search_is_reported_as_partial(search_dir, tmp_path):
    path = search_dir / "random_seed0.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "stop_reason": "interrupted", "partial": True}))
    page = build_report([search_dir], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "partial: the search was interrupted after 5 of 5 evaluations" in page
