"""The CLI through its real entry point: exit codes, one-line errors, resume, export."""

import csv
import sqlite3

import pytest

from hwprof.cli.main import main

FAST = ["--min-runs", "5", "--max-runs", "20", "--max-time-s", "0.3", "--target-ci", "0.05", "--drift-every", "0"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


def test_devices_lists_ort_cpu(capsys):
    code, out, _ = run(capsys, "devices")
    assert code == 0 and "ort-cpu" in out and "yes" in out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "hwprof" in out


@pytest.fixture
def profiled_db(tmp_path, capsys):
    db = tmp_path / "h.db"
    code, out, err = run(capsys, "profile", "-n", "2", "--seed", "3", "--db", str(db), *FAST)
    assert code == 0, err
    return db, out


def test_profile_show_export_resume(profiled_db, tmp_path, capsys):
    db, out = profiled_db
    assert "measured" in out
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from measurements").fetchone()[0] == 2
    # same seed again: resumed, nothing new
    code, out, _ = run(capsys, "profile", "-n", "2", "--seed", "3", "--db", str(db), *FAST)
    assert code == 0
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from measurements").fetchone()[0] == 2
    code, out, _ = run(capsys, "show", "--db", str(db))
    assert code == 0 and "ort-cpu" in out
    csv_path = tmp_path / "m.csv"
    code, out, _ = run(capsys, "export", "--db", str(db), "--format", "csv", "-o", str(csv_path))
    assert code == 0
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 2 and all(float(r["median_ms"]) > 0 for r in rows)
    assert all(r["spec"].startswith("|") for r in rows)


def test_profile_indices_and_arch_file(tmp_path, capsys):
    db = tmp_path / "i.db"
    code, _, err = run(capsys, "profile", "--indices", "0-1", "--db", str(db), *FAST)
    assert code == 0, err
    archs = tmp_path / "archs.txt"
    archs.write_text("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|\n")
    code, _, err = run(capsys, "profile", "--archs", str(archs), "--db", str(db), *FAST)
    assert code == 0, err
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from measurements").fetchone()[0] == 3


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "--device", "nope"], "unknown device 'nope'"),
        (["profile", "--space", "nope"], "unknown space 'nope'"),
        (["profile", "--indices", "0-99999"], "out of range"),
        (["profile", "--set", "bogus=1"], "bogus"),
        (["profile", "--target-ci", "-1"], "target_rel_ci"),
        (["export", "--format", "parquet"], "unknown export format"),
    ],
)
def test_bad_options_one_line(tmp_path, capsys, argv, needle):
    code, _, err = run(capsys, *argv, "--db", str(tmp_path / "x.db"))
    assert code == 1
    assert needle in one_line_error(err)


# `--set` values reach the device decoded by the one KEY=VALUE parser; the device coerces or refuses them.
def test_set_cpu_affinity_int_profiles(tmp_path, capsys):
    """The README's own example: `--set cpu_affinity=0` used to crash with "'int' object is not iterable"."""
    code, out, err = run(capsys, "profile", "-n", "1", "--set", "cpu_affinity=0", "--db", str(tmp_path / "a.db"), *FAST)
    assert code == 0, err
    assert "internal error" not in err and "measured" in out


def test_set_allow_spinning_must_be_a_boolean(tmp_path, capsys):
    """`allow_spinning=maybe` used to be accepted as True."""
    code, _, err = run(capsys, "profile", "-n", "1", "--set", "allow_spinning=maybe", "--db", str(tmp_path / "s.db"), *FAST)
    assert code == 1
    line = one_line_error(err)
    assert "allow_spinning" in line and "internal error" not in line


def test_malformed_arch_file(tmp_path, capsys):
    archs = tmp_path / "archs.txt"
    archs.write_text("|nor_conv_3x3~0|+|bogus~0|\n")
    code, _, err = run(capsys, "profile", "--archs", str(archs), "--db", str(tmp_path / "x.db"))
    assert code == 1 and "archs.txt:1" in one_line_error(err)
    assert not (tmp_path / "x.db").exists() or sqlite3.connect(tmp_path / "x.db").execute(
        "select count(*) from measurements").fetchone()[0] == 0


def test_corrupt_and_foreign_databases(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite at all" * 100)
    code, _, err = run(capsys, "show", "--db", str(corrupt))
    assert code == 1 and "corrupt.db" in one_line_error(err)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("create table customers(id integer)")
    code, _, err = run(capsys, "profile", "-n", "1", "--db", str(foreign), *FAST)
    assert code == 1 and "foreign" in one_line_error(err)
    assert sqlite3.connect(foreign).execute("select name from sqlite_master").fetchall() == [("customers",)]


def test_missing_db_and_directory(tmp_path, capsys):
    code, _, err = run(capsys, "show", "--db", str(tmp_path / "nope.db"))
    assert code == 1 and "no such database" in one_line_error(err)
    code, _, err = run(capsys, "profile", "-n", "1", "--db", str(tmp_path), *FAST)
    assert code == 1
    one_line_error(err)


def test_debug_shows_traceback(tmp_path, capsys):
    code, _, err = run(capsys, "--debug", "profile", "--device", "nope", "--db", str(tmp_path / "x.db"))
    assert code == 1 and "Traceback" in err


def test_measure_onnx_file(tmp_path, capsys):
    import torch

    from devices.export import export_onnx

    path = tmp_path / "m.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), (1, 3, 16, 16), path)
    code, out, err = run(capsys, "measure", str(path), "--max-time-s", "0.3", "--target-ci", "0.05")
    assert code == 0, err
    assert "m.onnx on ort-cpu" in out and "median" in out
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "measure", str(bad))
    assert code == 1 and "not a valid ONNX model" in one_line_error(err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile", "-n", "x"], "Invalid value for '--num'"),
        (["profile", "--bogus"], "No such option: --bogus"),
        (["search", "--budget", "many"], "Invalid value for '--budget'"),
    ],
)
def test_usage_errors_print_usage_and_exit_2_without_a_traceback(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
    assert "Traceback" not in err and "internal error" not in err
