"""`hwprof train` warns when a model is trained on fewer networks than it needs (issue 16, part 4)."""

from __future__ import annotations

import pytest

from predictors.advice import FEW_NETWORKS, few_networks_warning
from tests.predictors.test_csv_rows import write_csv
from tests.predictors.test_predict_cli import run


@pytest.fixture(scope="module")
def rows(nb201_rows):
    archs, lat = nb201_rows
    return [(a, float(v)) for a, v in zip(archs[:130], lat["pixel3"][:130])]


def test_advice_names_the_model_the_size_and_the_alternative():
    line = few_networks_warning("gbdt", 16, "nb201")
    assert line is not None and "gbdt trained on 16 networks" in line and f"below {FEW_NETWORKS['gbdt']}" in line
    assert "hwprof adapt" in line
    assert few_networks_warning("gbdt", FEW_NETWORKS["gbdt"], "nb201") is None
    assert few_networks_warning("mlp", FEW_NETWORKS["gbdt"], "nb201") is not None  # the MLP needs more than the GBDT
    assert "hwprof adapt" not in (few_networks_warning("linear", 5, "myspace") or "")
    assert few_networks_warning("ops", 3, "nb201") is None  # no measurement for it: no advice


def test_train_on_few_networks_warns_and_on_enough_does_not(rows, tmp_path, capsys):
    path = write_csv(tmp_path / "lat.csv", rows)
    code, _, err = run(capsys, "train", "--csv", path, "--target", "dev", "--model", "linear", "--n-train", "16", "-o", tmp_path / "few")
    assert code == 0 and "linear trained on 16 networks" in err and (tmp_path / "few" / "predictor.json").is_file()
    code, _, err = run(capsys, "train", "--csv", path, "--target", "dev", "--model", "linear", "--n-train", "110", "-o", tmp_path / "many")
    assert code == 0 and "trained on" not in err
