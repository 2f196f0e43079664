"""A search that fails leaves no folder behind; only LayerNAS needs a budget of one layer's expansion."""

import json

import pytest

from tests.cli_helpers import one_line_error, run


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0", "--cost", "macs", "--multi-objective"], "budget must be a positive integer"),
        (["--cost", "lookup:pixel3", "--max-latency-ms", "0.0001"], "is infeasible"),
        (["--cost", "lookup:pixel3", "--constraint", "foo<=3"], "'foo', which is not a cost objective"),
        (["--cost", "predictor:no-such-predictor", "--max-latency-ms", "3"], "no predictor at"),
        (["--algo", "modnas", "--devices", "nosuch"], "no latency column for device(s) ['nosuch']"),
        (["--budget", "2", "--cost", "macs", "--multi-objective"], "layernas: budget 2 is smaller than one layer's expansion"),
    ],
)
def test_a_failed_search_leaves_no_folder(args, message, tmp_path, capsys):
    line = one_line_error(capsys, "search", *args, "-o", tmp_path / "f")
    assert message in line
    assert not (tmp_path / "f").exists()


def test_a_failed_search_keeps_a_folder_it_did_not_create(tmp_path, capsys):
    one_line_error(capsys, "search", "--budget", "0", "--cost", "macs", "--multi-objective", "-o", tmp_path)
    assert tmp_path.is_dir()


@pytest.mark.parametrize("algo", ["random", "evolution", "nsga2"])
@pytest.mark.parametrize("budget", [1, 4])
def test_baselines_run_with_a_budget_below_one_layer_expansion(algo, budget, tmp_path, capsys):
    code, _, err = run(capsys, "search", "--algo", algo, "--cost", "macs", "--multi-objective", "--budget", budget, "-o", tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path / f"{algo}_seed0.json").read_text())["n_evaluations"] == budget
