"""`hwprof train -o` checks its output before training, not after."""

from __future__ import annotations

import os

import pytest

from hwprof.errors import PersistenceError
from predictors.persistence import check_save_target, read_info
from tests.predictors.conftest import write_table
from tests.predictors.test_predict_cli import one_line_error, run


@pytest.fixture(scope="module")
def table(tmp_path_factory, nb201_rows):
    archs, lat = nb201_rows
    path = tmp_path_factory.mktemp("table") / "bench.csv"
    write_table(path, archs[:80], {"dev": lat["pixel3"][:80]})
    return path


def train(capsys, table, out, *extra):
    return run(capsys, "train", "--csv", table, "--target", "dev", "--model", "linear", "-o", out, *extra)


@pytest.mark.parametrize("target, needle", [
    ("afile", "cannot save a predictor to '{tmp}/afile': it is a file"),
    ("afile/sub", "cannot save a predictor to '{tmp}/afile/sub': '{tmp}/afile' is a file, not a directory"),
])  # fmt: skip
def test_an_unusable_output_fails_before_training(table, tmp_path, capsys, target, needle):
    (tmp_path / "afile").write_text("keep")
    code, out, err = train(capsys, table, tmp_path / target)
    assert code == 1 and needle.format(tmp=tmp_path) in one_line_error(err)
    assert out == ""  # no metrics table: nothing was trained
    assert (tmp_path / "afile").read_text() == "keep"


def test_a_new_directory_and_an_existing_predictor_with_overwrite_are_fine(table, tmp_path, capsys):
    out = tmp_path / "new" / "deep" / "p"
    assert train(capsys, table, out)[0] == 0
    first = (out / "predictor.json").read_bytes()
    code, _, err = train(capsys, table, out)  # a trained predictor is work kept: not replaced without --overwrite
    assert code == 1 and "holds a predictor already; pass --overwrite to replace it" in err
    assert (out / "predictor.json").read_bytes() == first
    (out / "predictor.json").write_text((out / "predictor.json").read_text().replace('"n_samples"', '"n_samples" '))
    assert train(capsys, table, out, "--overwrite")[0] == 0
    assert read_info(out).name == "linear" and '"n_samples" :' not in (out / "predictor.json").read_text()  # written anew


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(PersistenceError, match="is not writable"):
        check_save_target(ro / "p")
