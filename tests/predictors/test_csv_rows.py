"""Architecture CSVs: a repeated architecture is refused naming both lines; a bad one is named by its own line."""

from __future__ import annotations

import pytest

from hwprof.errors import DataError
from nas.cost.lookup import LookupCost
from nas.spaces import NB201Space
from predictors.data import read_latency_samples, read_latency_table
from predictors.features.encoding import infer_space
from tests.predictors.test_predict_cli import one_line_error, run

BOGUS = "|bogus~0|+|x|"


@pytest.fixture(scope="module")
def rows(nb201_rows):
    archs, lat = nb201_rows
    return [(a, float(v)) for a, v in zip(archs[:60], lat["pixel3"][:60])]


def write_csv(path, rows, header="arch,lat_dev_ms"):
    path.write_text(header + "\n" + "".join(f"{a},{v}\n" for a, v in rows))
    return path


def test_a_repeated_architecture_in_a_latency_table_names_both_lines(rows, tmp_path, capsys):
    dup = list(rows)
    dup[40] = dup[3]
    path = write_csv(tmp_path / "dup.csv", dup)
    with pytest.raises(DataError, match=rf"dup.csv: duplicate architecture '{_re(rows[3][0])}' on lines 5 and 42"):
        read_latency_table(path)
    code, out, err = run(capsys, "train", "--csv", path, "--target", "dev", "--model", "linear", "-o", tmp_path / "p")
    assert code == 1 and "on lines 5 and 42" in one_line_error(err) and not (tmp_path / "p").exists()


def test_a_repeated_sample_names_both_lines(rows, tmp_path):
    path = write_csv(tmp_path / "s.csv", [rows[0], rows[1], rows[0]], header="arch,latency_ms")
    with pytest.raises(DataError, match=r"appears more than once \(lines 2 and 4\)"):
        read_latency_samples(path)


@pytest.mark.parametrize("index", [4, 40])  # inside the rows a space is inferred from, and after them
def test_train_names_the_line_of_the_bad_architecture(rows, tmp_path, capsys, index):
    bad = list(rows)
    bad[index] = (BOGUS, bad[index][1])
    path = write_csv(tmp_path / "bad.csv", bad)
    code, _, err = run(capsys, "train", "--csv", path, "--target", "dev", "--model", "linear", "-o", tmp_path / "p")
    line = one_line_error(err)
    assert code == 1 and f"line {index + 2} '{BOGUS}'" in line, line
    assert rows[0][0] not in line  # not the first row, which is fine


def test_evaluate_and_adapt_name_the_line_too(rows, tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", rows)
    assert run(capsys, "train", "--csv", good, "--target", "dev", "--model", "linear", "-o", tmp_path / "p")[0] == 0
    bad = list(rows)
    bad[30] = (BOGUS, bad[30][1])
    code, _, err = run(capsys, "evaluate", tmp_path / "p", "--csv", write_csv(tmp_path / "bad.csv", bad), "--target", "dev")
    assert code == 1 and f"line 32 '{BOGUS}'" in one_line_error(err)
    samples = write_csv(tmp_path / "samples.csv", [rows[0], rows[1], (BOGUS, 2.0)], header="arch,latency_ms")
    code, _, err = run(capsys, "adapt", "--samples", samples, "--sources-csv", good)
    assert code == 1 and f"line 4 '{BOGUS}'" in one_line_error(err)


def test_infer_space_names_the_architecture_it_stops_at(rows):
    archs = [a for a, _ in rows[:10]]
    with pytest.raises(DataError, match=rf"architecture 3 '{_re(BOGUS)}' is not a nb201 architecture like the ones before it"):
        infer_space(archs[:3] + [BOGUS] + archs[3:])
    with pytest.raises(DataError, match="no registered search space .* parses architectures like"):
        infer_space([BOGUS, *archs])  # nothing reads the first one: that one is named


def test_a_lookup_csv_names_the_bad_line_and_refuses_two_spellings(rows, tmp_path):
    bad = list(rows)
    bad[7] = (BOGUS, 1.0)
    with pytest.raises(DataError, match=rf"line 9 architecture '{_re(BOGUS)}' is not a nb201 architecture"):
        LookupCost.from_csv(write_csv(tmp_path / "bad.csv", bad), "dev", space=NB201Space())
    spec = rows[0][0]
    with pytest.raises(DataError, match=rf"' {_re(spec)}' is the architecture '{_re(spec)}' again"):
        LookupCost({spec: 1.0, f" {spec}": 2.0}, space=NB201Space())


def _re(text: str) -> str:
    import re

    return re.escape(text)
