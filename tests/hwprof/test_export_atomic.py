"""`hwprof export -o FILE` replaces FILE only with a complete export: any failure leaves it byte-identical."""

from __future__ import annotations

import sqlite3

import pytest

from hwprof.errors import StoreError
from hwprof.store import Store
from tests.hwprof.test_cli import one_line_error
from tests.hwprof.test_cli import run as cli_run
from tests.hwprof.test_store_export import EXPECTED, build_export_database

BEFORE = b"an earlier export, kept\r\n\xc3\xbc\n"


def run(capsys, *argv):
    return cli_run(capsys, *(str(a) for a in argv))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "export.db"
    build_export_database(path)
    return path


def damaged_copy(src, path):
    """A copy of store ``src`` at ``path`` that opens but whose measurements table is unreadable (its root page overwritten)."""
    path.write_bytes(src.read_bytes())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # fold any WAL into the file
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'measurements'").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start + 8 : start + page_size] = b"\xab" * (page_size - 8)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def corrupt_db(db, tmp_path):
    return damaged_copy(db, tmp_path / "corrupt.db")


@pytest.fixture
def existing(tmp_path):
    path = tmp_path / "existing.csv"
    path.write_bytes(BEFORE)
    return path


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_an_unreadable_store_leaves_the_existing_file_untouched(corrupt_db, existing, capsys):
    code, _, err = run(capsys, "export", "--db", corrupt_db, "-o", existing, "--overwrite")
    assert code == 1 and f"{corrupt_db} is damaged (sqlite: " in one_line_error(err)
    assert existing.read_bytes() == BEFORE and leftovers(existing.parent) == []


def test_an_unknown_device_is_an_error_naming_the_known_ones(db, existing, capsys):
    code, _, err = run(capsys, "export", "--db", db, "--device", "nope", "-o", existing, "--overwrite")
    assert code == 1
    assert one_line_error(err) == f"error: no device 'nope' in {db}; it knows ort-cpu, pi4"
    assert existing.read_bytes() == BEFORE and leftovers(existing.parent) == []
    code, out, err = run(capsys, "export", "--db", db, "--device", "nope")  # to stdout: no header first
    assert code == 1 and out == "" and "no device 'nope'" in one_line_error(err)


def test_the_library_export_to_a_path_is_atomic_too(db, corrupt_db, existing):
    with Store(db, create=False) as store, pytest.raises(StoreError, match="no device 'nope'"):
        store.export_csv(existing, device="nope")
    with Store(corrupt_db, create=False) as store, pytest.raises(StoreError, match="cannot read the measurements"):
        store.export_csv(existing)
    assert existing.read_bytes() == BEFORE and leftovers(existing.parent) == []


def test_a_successful_export_replaces_the_file_with_the_recorded_bytes(db, existing, capsys):
    code, out, err = run(capsys, "export", "--db", db, "-o", existing, "--overwrite")
    assert code == 0, err
    assert existing.read_bytes() == EXPECTED.read_bytes() and "wrote 6 measurements" in out
    assert leftovers(existing.parent) == []
