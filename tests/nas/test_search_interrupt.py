"""Ctrl-C or SIGTERM during `hwprof search` keeps the completed evaluations; the same command resumes from them."""

import json
import os
import signal

import pytest

import nas.search.workflow as workflow
from nas.evaluators.parse import parse_evaluator
from nas.search import SearchInterrupted, SearchRequest, run_search
from tests.cli_helpers import run


class CountingEvaluator:
    """The tabular evaluator, counting its calls; ``stop_after`` calls, the next one is interrupted by ``interrupt``."""

    def __init__(self, inner, stop_after=None, interrupt=None):
        self.inner, self.name, self.unit = inner, inner.name, inner.unit
        self.stop_after, self.interrupt, self.calls = stop_after, interrupt, 0

    def evaluate(self, arch):
        if self.stop_after is not None and self.calls >= self.stop_after:
            self.interrupt()
        self.calls += 1
        return self.inner.evaluate(arch)


def ctrl_c():
    raise KeyboardInterrupt


@pytest.fixture
def evaluators(monkeypatch):
    """Every evaluator the searches of a test create, in order; ``plan`` lists (stop_after, interrupt) per search."""
    made, plan = [], []

    def parse(text, space, **kwargs):
        stop_after, interrupt = plan.pop(0) if plan else (None, None)
        made.append(CountingEvaluator(parse_evaluator(text, space, **kwargs), stop_after, interrupt))
        return made[-1]

    monkeypatch.setattr(workflow, "parse_evaluator", parse)
    return made, plan


def history(directory, stem):
    data = json.loads((directory / f"{stem}.json").read_text())
    return data, [(e["spec"], e["accuracy"], e["costs"], e["feasible"]) for e in data["history"]]


@pytest.mark.parametrize("algo", ["random", "evolution", "nsga2", "layernas"])
def test_an_interrupted_search_resumes_to_the_uninterrupted_result(algo, tmp_path, evaluators):
    made, plan = evaluators
    request = SearchRequest(algorithm=algo, costs=("lookup:pixel3",), constraints=("latency_ms<=6",), budget=30,
                            seed=3, out=tmp_path / "whole")
    run_search(request)
    whole, whole_history = history(tmp_path / "whole", f"{algo}_seed3")

    cut = SearchRequest(**{**request.__dict__, "out": tmp_path / "cut"})
    plan.append((12, ctrl_c))
    with pytest.raises(SearchInterrupted) as info:
        run_search(cut)
    assert "12 kept" in info.value.summary and "run the same command to resume" in info.value.summary
    partial, partial_history = history(tmp_path / "cut", f"{algo}_seed3")
    assert partial["stop_reason"] == "interrupted" and partial["partial"] is True and partial["n_evaluations"] == 12
    assert partial_history == whole_history[:12]

    outcome = run_search(cut)
    resumed, resumed_history = history(tmp_path / "cut", f"{algo}_seed3")
    assert made[-1].calls == whole["n_evaluations"] - 12  # the 12 kept evaluations were not asked again
    assert resumed_history == whole_history
    assert (resumed["best"], resumed["pareto"], resumed["stop_reason"]) == (whole["best"], whole["pareto"], whole["stop_reason"])
    assert resumed["partial"] is False and resumed["n_reused"] == 12
    assert outcome.summary[0].startswith("resumed: 12 evaluations reused")


def test_ctrl_c_and_sigterm_keep_the_evaluations_and_exit_130_and_143(tmp_path, capsys, evaluators):
    made, plan = evaluators
    argv = ["search", "--algo", "random", "--cost", "macs", "--multi-objective", "--budget", "12", "-o", tmp_path]
    plan.append((4, ctrl_c))
    code, _, err = run(capsys, *argv)
    assert code == 130, err
    assert "interrupted: search stopped after 4 of 12 evaluations; 4 kept in" in err and "Traceback" not in err
    assert json.loads((tmp_path / "random_seed0.json").read_text())["n_evaluations"] == 4

    plan.append((3, lambda: os.kill(os.getpid(), signal.SIGTERM)))  # raised by hwprof's handler as an interrupt
    code, _, err = run(capsys, *argv)
    assert code == 143, err
    assert "interrupted by SIGTERM: search stopped after 7 of 12 evaluations; 7 kept" in err
    assert made[-1].calls == 3

    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert made[-1].calls == 5 and "resumed: 7 evaluations reused from the interrupted run, 5 new" in out
    data = json.loads((tmp_path / "random_seed0.json").read_text())
    assert data["n_evaluations"] == 12 and data["stop_reason"] == "budget" and not data["partial"]


def test_an_interrupt_before_the_first_evaluation_leaves_no_folder(tmp_path, capsys, evaluators):
    plan = evaluators[1]
    plan.append((0, ctrl_c))
    code, _, err = run(capsys, "search", "--algo", "random", "--cost", "macs", "--multi-objective", "--budget", "5",
                       "-o", tmp_path / "new")
    assert code == 130 and "nothing kept" in err
    assert not (tmp_path / "new").exists()


def test_overwrite_starts_an_interrupted_search_again(tmp_path, evaluators):
    made, plan = evaluators
    request = SearchRequest(algorithm="random", costs=("macs",), multi_objective=True, budget=8, out=tmp_path)
    plan.append((5, ctrl_c))
    with pytest.raises(SearchInterrupted):
        run_search(request)
    run_search(SearchRequest(**{**request.__dict__, "overwrite": True}))
    assert made[-1].calls == 8


@pytest.mark.parametrize("tamper, needle", [
    ("edit", "line 4 does not match evaluation 3"),  # an accuracy changed by hand in the CSV
    ("cut_line", "does not match evaluation"),  # the CSV cut in the middle of its last line
    ("more_csv", "5 evaluations, random_seed0.json records 3"),  # the JSON lost entries the CSV still has
])
def test_a_record_changed_after_the_interrupt_is_refused_not_trusted(tmp_path, evaluators, tamper, needle):
    from hwprof.errors import DataError

    plan = evaluators[1]
    request = SearchRequest(algorithm="random", costs=("macs",), multi_objective=True, budget=8, out=tmp_path)
    plan.append((5, ctrl_c))
    with pytest.raises(SearchInterrupted):
        run_search(request)
    csv_path, json_path = tmp_path / "random_seed0_history.csv", tmp_path / "random_seed0.json"
    if tamper == "edit":
        lines = csv_path.read_text().splitlines(keepends=True)
        cells = lines[3].split(",")
        cells[2] = "99.99"
        lines[3] = ",".join(cells)
        csv_path.write_text("".join(lines))
    elif tamper == "cut_line":
        csv_path.write_bytes(csv_path.read_bytes()[:-12])
    else:
        data = json.loads(json_path.read_text())
        data["history"], data["n_evaluations"] = data["history"][:3], 3
        json_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=needle) as info:
        run_search(request)
    assert "pass --overwrite to start the search again" in str(info.value)
