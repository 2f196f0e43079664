"""[defaults] of hwprof.toml through the real entry point: it applies, the command line wins, mistakes are one line."""

from __future__ import annotations

import pytest

from hwprof.cli.project_defaults import build_default_map
from hwprof.errors import ConfigError
from tests.hwprof.test_init import one_line, root_ctx, run


def default_map(tmp_path, text: str) -> dict:
    import tomllib

    return build_default_map(root_ctx(), tomllib.loads(text)["defaults"], tmp_path / "hwprof.toml")


def test_a_default_applies_and_the_command_line_wins(tmp_path, capsys, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "hwprof.toml").write_text('[defaults]\ndb = "runs/lab.db"\n')
    monkeypatch.chdir(project)
    code, _, err = run(capsys, "show")  # ./hwprof.toml: show reads the configured store
    assert code == 1 and f"no such database: {'runs/lab.db'}" in one_line(err)
    code, _, err = run(capsys, "show", "--db", "other.db")
    assert code == 1 and "no such database: other.db" in one_line(err)
    # found elsewhere: relative paths are relative to the file's folder, not the working directory
    monkeypatch.chdir(tmp_path)
    for argv in (["--config", str(project / "hwprof.toml"), "show"], ["show"]):
        monkeypatch.setenv("HWPROF_CONFIG", str(project / "hwprof.toml"))
        code, _, err = run(capsys, *argv)
        assert code == 1 and f"no such database: {project / 'runs' / 'lab.db'}" in one_line(err)


def test_defaults_really_reach_a_command(tmp_path, capsys, monkeypatch):
    """`hwprof export` with its store and output from the file writes the CSV there."""
    from hwprof.store import Store

    Store(tmp_path / "m.db").close()
    (tmp_path / "hwprof.toml").write_text('[defaults]\ndb = "m.db"\n[defaults.export]\noutput = "out/m.csv"\n')
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "export")
    assert code == 0, err
    assert "wrote 0 measurements" in out
    assert (tmp_path / "out" / "m.csv").read_text().startswith("id,run_id,device,")


def test_global_keys_only_change_real_defaults(tmp_path):
    """`db` reaches profile/show/export/search (default hwprof.db), never train/evaluate/adapt (--db or --csv)."""
    dm = default_map(tmp_path, '[defaults]\ndb = "lab.db"\nseed = 3\n')
    with_db = {name for name, values in dm.items() if "db" in values}
    assert with_db == {"profile", "show", "export", "search"}
    assert dm["train"] == {"seed": 3} and dm["modnas"]["train"] == {"seed": 3}
    assert dm["show"]["db"] == str(tmp_path / "lab.db")
    dm = default_map(tmp_path, '[defaults.train]\ndb = "lab.db"\n[defaults.search]\n"max-latency-ms" = 2.5\n')
    assert dm == {"train": {"db": str(tmp_path / "lab.db")}, "search": {"max_latency_ms": 2.5}}
    dm = default_map(tmp_path, '[defaults.modnas.train]\nsteps = 7\n[defaults.profile]\nset = "intra_op_threads=2"\n')
    assert dm == {"modnas": {"train": {"steps": 7}}, "profile": {"set_": ["intra_op_threads=2"]}}


@pytest.mark.parametrize("text, expected", [
    ('[defaults]\ndbb = "x"', "no command has an option --dbb"),
    ('[defaults]\ninterleave = "many"', "interleave = 'many'"),
    ('[defaults]\ncache_dir = "c"', "set it for one command in [defaults.profile]"),
    ('[defaults.trian]\ndb = "x"', "no command `hwprof trian`"),
    ('[defaults.train]\ndbx = "x"', "`hwprof train` has no option --dbx"),
    ('[defaults.show.now]\ndb = "x"', "has no subcommands"),
    ('[defaults.remote.trust]\nyes = true', "consent given on the command line"),
    ('[defaults.init]\nforce = true', "writes this file"),
    ('[defaults]\nconfig = "x.toml"', "hwprof --config"),
])
def test_mistakes_in_defaults_are_config_errors(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        default_map(tmp_path, text)
    assert expected in str(info.value) and "hwprof.toml" in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ('[defaults]\ndbb = "x"\n', "[defaults] dbb: no command has an option --dbb"),
    ('[defaults\n', "not valid TOML"),
    ('db = "x"\n', "a default belongs in [defaults]"),
    ('[default]\ndb = "x"\n', "unknown table [default]"),
    ('defaults = 3\n', "defaults must be a table"),
])
def test_a_bad_project_file_is_one_line_for_every_command(tmp_path, capsys, monkeypatch, text, expected):
    (tmp_path / "hwprof.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "show")
    assert code == 1 and expected in one_line(err)


def test_an_explicit_config_reaches_the_commands_that_read_devices(tmp_path, capsys):
    config = tmp_path / "lab.toml"
    config.write_text('[devices.lab]\ntype = "ssh"\nhost = "127.0.0.1"\ndevice = "ort-cpu"\n')
    dm = default_map(tmp_path, "[defaults]\n")
    assert dm == {}
    dm = build_default_map(root_ctx(), {}, config, config_option=config)
    assert dm["profile"]["config"] == dm["devices"]["config"] == dm["remote"]["list"]["config"] == str(config)
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.toml"), "show")
    assert code == 1 and "does not exist" in one_line(err)
