"""`hwprof init` writes a template that loads, and [defaults] really sets the commands' option defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwprof.cli import command_tree
from hwprof.cli.main import app, main
from hwprof.cli.project_defaults import build_default_map
from hwprof.config import TEMPLATE, load_config, remote_targets, write_template
from hwprof.errors import ConfigError

EXAMPLE_LINE = re.compile(r"^# ((\[[^]]+\]|[A-Za-z_][A-Za-z0-9_-]* = ).*)$", re.M)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def root_ctx():
    root = command_tree.root_command(app)
    return root.context_class(root, info_name="hwprof")


def uncommented(text: str) -> str:
    """The template with every example setting switched on (prose comments stay comments)."""
    return EXAMPLE_LINE.sub(r"\1", text)


def test_init_writes_the_template_and_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "init")
    assert code == 0 and "wrote hwprof.toml" in out
    assert (tmp_path / "hwprof.toml").read_text() == TEMPLATE
    (tmp_path / "hwprof.toml").write_text("# mine\n")
    code, _, err = run(capsys, "init")
    assert code == 1 and "exists" in one_line(err) and "--force" in err
    assert (tmp_path / "hwprof.toml").read_text() == "# mine\n"
    code, _, _ = run(capsys, "init", "--force")
    assert code == 0 and (tmp_path / "hwprof.toml").read_text() == TEMPLATE
    assert [p.name for p in tmp_path.iterdir()] == ["hwprof.toml"]  # no temporary file left behind


def test_init_rewrites_a_broken_file_with_force(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hwprof.toml").write_text("[defaults\n")
    code, _, err = run(capsys, "show")
    assert code == 1 and "not valid TOML" in one_line(err)
    code, _, err = run(capsys, "init", "--force")  # init never reads the file it replaces
    assert code == 0, err
    assert load_config(tmp_path / "hwprof.toml")[0] == {"defaults": {}}


def test_init_elsewhere_says_how_to_use_it(tmp_path, capsys):
    code, out, _ = run(capsys, "init", str(tmp_path / "lab.toml"))
    assert code == 0 and "--config" in out and (tmp_path / "lab.toml").is_file()
    code, _, err = run(capsys, "init", str(tmp_path / "missing" / "lab.toml"))
    assert code == 1 and "does not exist" in one_line(err)


def test_write_template_keeps_an_existing_file(tmp_path):
    path = tmp_path / "hwprof.toml"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="exists"):
        write_template(path)
    assert path.read_text() == "x = 1\n"


def test_every_example_of_the_template_is_valid(tmp_path):
    """Switched on, the examples load, name real options and a well-formed remote device."""
    assert EXAMPLE_LINE.search(TEMPLATE), "the template has no examples"
    path = tmp_path / "hwprof.toml"
    path.write_text(uncommented(TEMPLATE))
    data, found = load_config(path)
    assert found == path and set(data) == {"defaults", "devices"}
    default_map = build_default_map(root_ctx(), data["defaults"], path)
    assert default_map["train"]["model"] == "gbdt" and default_map["search"]["max_latency_ms"] == 5.0
    assert default_map["profile"]["set_"] == ["intra_op_threads=1"]
    targets = remote_targets(path)
    assert set(targets) == {"lab-pi"} and targets["lab-pi"].device == "ort-cpu" and targets["lab-pi"].port == 22


def test_the_templates_global_examples_are_the_real_defaults(tmp_path):
    """The template says "the values shown are hwprof's own defaults": switching them on changes nothing."""
    import tomllib

    defaults = {k: v for k, v in tomllib.loads(uncommented(TEMPLATE))["defaults"].items() if not isinstance(v, dict)}
    assert {"db", "device", "space", "precision", "seed"} <= set(defaults)
    default_map = build_default_map(root_ctx(), defaults, tmp_path / "hwprof.toml")
    commands = dict(command_tree.walk(command_tree.root_command(app)))
    checked = 0
    for path, values in _leaves(default_map):
        options = {o.name: o for o in command_tree.options(commands[path])}
        for name, value in values.items():
            own = options[name].default
            assert str(value) == str(tmp_path / own) if isinstance(own, Path) else value == own, (path, name)
            checked += 1
    assert checked >= 10


def _leaves(default_map, path=()):
    values = {k: v for k, v in default_map.items() if not isinstance(v, dict)}
    if values:
        yield path, values
    for k, v in default_map.items():
        if isinstance(v, dict):
            yield from _leaves(v, path + (k,))
