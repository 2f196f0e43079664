"""`--config` given a folder or a binary file, and `devices` titling the remote table with the file in use."""

from __future__ import annotations

import pytest

from hwprof.config import config_path, load_config
from hwprof.errors import ConfigError
from tests.hwprof.test_cli import one_line_error, run


def test_a_folder_as_config_is_called_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "--config", ".", "show")
    assert code == 1 and one_line_error(err) == "error: config file . is a folder; expected a TOML file such as hwprof.toml"
    monkeypatch.setenv("HWPROF_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match=r"\$HWPROF_CONFIG names .*, which is a folder; expected a TOML file"):
        config_path()


def test_a_binary_config_file_is_named(tmp_path, capsys):
    binary = tmp_path / "s.db"
    binary.write_bytes(b"SQLite format 3\x00\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match=r"s\.db is not valid TOML: not UTF-8 text"):
        load_config(binary)
    code, _, err = run(capsys, "--config", str(binary), "show")
    assert code == 1 and f"{binary} is not valid TOML" in one_line_error(err)


def test_devices_titles_the_remote_table_with_the_file_given(tmp_path, capsys, monkeypatch):
    import hwprof.remote

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hwprof.remote, "remote_status", lambda target: (False, "not asked in this test"))
    (tmp_path / "dev2.toml").write_text('[devices.lab]\ntype = "ssh"\nhost = "10.0.0.5"\ndevice = "ort-cpu"\n')
    code, out, err = run(capsys, "--config", "dev2.toml", "devices")
    assert code == 0, err
    assert "remote devices (dev2.toml)" in out and "hwprof.toml" not in out
