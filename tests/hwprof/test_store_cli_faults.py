"""What `show`, `export`, `profile`, `init` and `measure` do with bad stores, output paths and files: one line, nothing lost."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hwprof.errors import StoreError
from hwprof.store import SCHEMA_VERSION, Store
from tests.hwprof.test_cli import one_line_error
from tests.hwprof.test_export_atomic import damaged_copy, run
from tests.hwprof.test_store import _v1_database, device_info
from tests.hwprof.test_store_export import EXPECTED, build_export_database

TINY = ["-n", "1", "--rounds", "2", "--min-runs", "5", "--max-runs", "20", "--max-time-s", "0.3", "--drift-every", "0",
        "--no-calibrate"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "export.db"
    build_export_database(path)
    return path


@pytest.fixture
def damaged_db(db, tmp_path):
    return damaged_copy(db, tmp_path / "damaged.db")


# --- export -o: the path is checked first --------------------------------------------


def test_export_refuses_an_existing_file_unless_overwrite(db, tmp_path, capsys):
    out = tmp_path / "m.csv"
    out.write_text("mine\n")
    code, _, err = run(capsys, "export", "--db", db, "-o", out)
    assert code == 1 and "exists; give --overwrite" in one_line_error(err)
    assert out.read_text() == "mine\n"
    code, _, err = run(capsys, "export", "--db", db, "-o", out, "--overwrite")
    assert code == 0, err
    assert out.read_bytes() == EXPECTED.read_bytes()


def test_export_writes_through_a_link_and_refuses_pipes_folders_and_missing_folders(db, tmp_path, capsys):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, _, err = run(capsys, "export", "--db", db, "-o", link, "--overwrite")
    assert code == 0, err
    assert link.is_symlink() and target.read_bytes() == EXPECTED.read_bytes()

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "export", "--db", db, "-o", fifo, "--overwrite")
    assert code == 1 and "not a regular file" in one_line_error(err)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)

    code, _, err = run(capsys, "export", "--db", db, "-o", os.devnull, "--overwrite")
    assert code == 1 and "not a regular file" in one_line_error(err)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)

    code, _, err = run(capsys, "export", "--db", db, "-o", ".")
    assert code == 1 and one_line_error(err) == "error: -o '.' names a folder; expected a file path"

    code, _, err = run(capsys, "export", "--db", db, "-o", tmp_path / "new" / "m.csv")
    assert code == 1 and "does not exist" in one_line_error(err)
    assert not (tmp_path / "new").exists()  # no longer created behind the user's back


def test_export_checks_the_output_path_before_the_store(tmp_path, capsys):
    out = tmp_path / "m.csv"
    out.write_text("mine\n")
    code, _, err = run(capsys, "export", "--db", tmp_path / "absent.db", "-o", out)
    assert code == 1 and "exists; give --overwrite" in one_line_error(err)


def test_init_force_writes_through_a_link(tmp_path, capsys):
    target = tmp_path / "real.toml"
    target.write_text("# mine\n")
    link = tmp_path / "hwprof.toml"
    link.symlink_to(target)
    code, _, err = run(capsys, "init", link)
    assert code == 1 and "exists; give --force" in one_line_error(err)
    code, _, err = run(capsys, "init", link, "--force")
    assert code == 0, err
    assert link.is_symlink() and "hwprof init" in target.read_text()


# --- read-only stores ----------------------------------------------------------------


def test_a_readonly_store_cannot_write(db):
    with Store(db, readonly=True) as store:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite's mode=ro, not only hwprof's check
            store._conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        with pytest.raises(StoreError, match="open read-only"):
            store.upsert_device(device_info())
        assert store.summary().counts["measurements"] == 6


def test_a_readonly_open_of_an_older_store_leaves_the_file_as_it_was(tmp_path, capsys):
    path = tmp_path / "old.db"
    _v1_database(path)
    before = path.read_bytes()
    code, out, err = run(capsys, "show", "--db", path)
    assert code == 0, err
    assert "ort-cpu" in out
    # what the file holds, not the copy it was read through
    assert f"schema v1, read as v{SCHEMA_VERSION}; the next command that writes to it migrates it" in " ".join(out.split())
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_show_and_export_read_a_store_in_a_readonly_folder(db, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "s.db"
    path.write_bytes(db.read_bytes())
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        code, out, err = run(capsys, "show", "--db", path)
        assert code == 0 and "ort-cpu" in out, err
        code, out, err = run(capsys, "export", "--db", path)
        assert code == 0 and out.count("\n") == 7, err
    finally:
        folder.chmod(0o755)


# --- damaged and empty stores ---------------------------------------------------------


def test_a_damaged_store_is_one_line_naming_it_and_nothing_is_written(damaged_db, tmp_path, capsys):
    out = tmp_path / "m.csv"
    for argv in (["show"], ["export"], ["export", "-o", out], ["profile", *TINY]):
        code, stdout, err = run(capsys, *argv, "--db", damaged_db)
        line = one_line_error(err)
        assert code == 1 and line.startswith(f"error: {damaged_db} is damaged (sqlite: "), (argv, line)
        assert "profiling" not in stdout and "id,run_id" not in stdout
    assert not out.exists()


def test_an_empty_file_is_refused_by_every_command_and_left_untouched(tmp_path, capsys):
    path = tmp_path / "empty.db"
    path.touch()
    for argv in (["show"], ["export"], ["profile", *TINY]):
        code, _, err = run(capsys, *argv, "--db", path)
        assert code == 1
        assert one_line_error(err) == f"error: {path} is an empty file, not an hwprof store; remove it or give another --db"
        assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


# --- show -------------------------------------------------------------------------------


def test_show_says_when_it_lists_only_the_last_runs(tmp_path, capsys):
    path = tmp_path / "runs.db"
    with Store(path) as store:
        device_id = store.upsert_device(device_info())
        for i in range(12):
            store.start_run(device_id, {}, {}, {}, f"run {i}")
    code, out, err = run(capsys, "show", "--db", path)
    assert code == 0, err
    assert "(last 10 of 12 runs)" in out


def test_show_says_nothing_when_every_run_is_listed(db, capsys):
    code, out, err = run(capsys, "show", "--db", db)
    assert code == 0 and "(last" not in out, err


# --- profile --calibrate ----------------------------------------------------------------


def test_an_explicit_calibrate_with_one_round_is_refused(tmp_path, capsys):
    path = tmp_path / "never.db"
    code, _, err = run(capsys, "profile", "--calibrate", "--rounds", "1", "--db", path)
    assert code == 1 and "--calibrate needs --rounds 2 or more" in one_line_error(err)
    assert not path.exists()
    empty = tmp_path / "empty.db"
    empty.touch()  # past the calibration check, the next refusal is the store's: the default passes with one round
    code, _, err = run(capsys, "profile", "--rounds", "1", "--db", empty)
    assert code == 1 and "is an empty file" in one_line_error(err)


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the command as an unprivileged user")
@pytest.mark.parametrize("via_link", [False, True])
def test_show_reads_a_readonly_folder_as_an_unprivileged_user(db, via_link):
    """The same as above where the tests run as root: the command itself runs as nobody (uid 65534).
    ``via_link``: --db is a link in a writable folder to the store in the read-only one (the store's own
    folder is the one that counts: SQLite keeps its WAL beside the file)."""
    if subprocess.run([*AS_NOBODY, "-c", "import sqlite3"], capture_output=True, timeout=60, check=False).returncode != 0:
        pytest.skip("nobody cannot run this interpreter here")
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:  # under /tmp: pytest's own folder is private to root
        folder = Path(tmp) / "ro"
        folder.mkdir()
        path = folder / "s.db"
        path.write_bytes(db.read_bytes())
        path.chmod(0o444)
        folder.chmod(0o555)
        Path(tmp).chmod(0o755)
        if via_link:
            links = Path(tmp) / "links"
            links.mkdir(mode=0o777)
            links.chmod(0o777)
            (links / "s.db").symlink_to(path)
            path = links / "s.db"
        try:
            done = subprocess.run(
                [*AS_NOBODY, "-m", "hwprof.cli.main", "show", "--db", str(path)],
                check=False, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)}, cwd=tmp, timeout=120,
            )
        finally:
            folder.chmod(0o755)
    assert done.returncode == 0 and "ort-cpu" in done.stdout, done.stderr


def test_sqlites_multi_line_damage_report_is_one_line_with_the_hint(db, tmp_path, capsys):
    """quick_check answers "*** in database main ***\\nPage N: ..." for a garbled table page: the CLI printed
    its first line only, cutting the message (and the recovery hint) off."""
    path = tmp_path / "garbled.db"
    path.write_bytes(db.read_bytes())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[page_size : 2 * page_size] = bytes(range(256)) * (page_size // 256)  # page 2
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "show", "--db", path)
    line = one_line_error(err)
    assert code == 1 and "Page 2" in line and line.endswith(f"`sqlite3 {path} .recover`"), line
