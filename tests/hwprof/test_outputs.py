"""Output files (-o): refused when they exist (unless --overwrite), links followed, pipes and devices refused,
written whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from hwprof.errors import ConfigError
from hwprof.outputs import output_file, write_atomic


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "r.csv"
    assert output_file(out, overwrite=False) == out.resolve()
    out.write_text("precious\n")
    with pytest.raises(ConfigError, match=r"exists; give --overwrite to replace it"):
        output_file(out, overwrite=False)
    assert out.read_text() == "precious\n"
    assert output_file(out, overwrite=True, flag="--force") == out.resolve()


def test_a_link_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "t.csv").write_text("old\n")
    (tmp_path / "l.csv").symlink_to("t.csv")
    target = output_file(tmp_path / "l.csv", overwrite=True)
    write_atomic(target, "new\n")
    assert (tmp_path / "l.csv").is_symlink() and (tmp_path / "t.csv").read_text() == "new\n"


@pytest.mark.parametrize("make, needle", [
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_pipes_and_folders_are_refused(tmp_path, make, needle):
    path = tmp_path / "x.csv"
    make(path)
    with pytest.raises(ConfigError, match=needle):
        output_file(path, overwrite=True)


def test_devices_dots_and_missing_folders_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a regular file"):
        output_file("/dev/null", overwrite=True)
    with pytest.raises(ConfigError, match="standard output"):
        output_file("-", overwrite=True)
    for name in (".", "..", ""):
        with pytest.raises(ConfigError, match="names a folder|is a folder"):
            output_file(name, overwrite=True)
    with pytest.raises(ConfigError, match="does not exist"):
        output_file(tmp_path / "nope" / "x.csv", overwrite=False)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("old\n")

    def half(fh):
        fh.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(out, half)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_the_file_gets_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "r.csv", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644
