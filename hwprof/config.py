"""The project file ``hwprof.toml``: devices measured elsewhere, and the defaults of the commands.

Found at ``--config PATH``, else ``$HWPROF_CONFIG``, else ``./hwprof.toml``;
absent is fine (nothing configured). Relative paths inside it are relative to
the file's folder. Two tables: ``[devices.NAME]`` (remote devices,
``hwprof.remote``) and ``[defaults]`` (option defaults, applied by the CLI:
``hwprof.cli.project_defaults``); anything else is a typo and an error.
``hwprof init`` writes a commented template.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hwprof.errors import ConfigError
from hwprof.outputs import output_file, write_atomic

CONFIG_ENV = "HWPROF_CONFIG"
CONFIG_NAME = "hwprof.toml"
TABLES = ("devices", "defaults")


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file in use, or None when there is none (an explicit path must exist)."""
    if explicit is not None:
        return _existing_file(Path(explicit).expanduser(), "config file {} {}")
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _existing_file(Path(env).expanduser(), f"${CONFIG_ENV} names {{}}, which {{}}")
    return None if not Path(CONFIG_NAME).is_file() else Path(CONFIG_NAME)


def _existing_file(path: Path, message: str) -> Path:
    """``path`` when it is a file; else ConfigError from ``message`` (formatted with the path and what is wrong)."""
    if path.is_dir():
        raise ConfigError(message.format(path, "is a folder") + f"; expected a TOML file such as {path / CONFIG_NAME}")
    if not path.is_file():
        raise ConfigError(message.format(path, "does not exist"))
    return path


def load_config(explicit: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """The parsed config (``{}`` when there is none) and its path."""
    path = config_path(explicit)
    if path is None:
        return {}, None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigError("reading hwprof.toml needs Python 3.11 or newer (tomllib)") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # a binary file, e.g. a store given as --config
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 text (byte {exc.start}); expected a TOML file") from None
    return check_tables(data, path), path


def check_tables(data: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """The parsed file, once its top level holds only the known tables (a stray key is a typo, never ignored)."""
    for key, value in data.items():
        if key not in TABLES:
            hint = f" (a default belongs in [defaults]: `{key} = ...` under it)" if not isinstance(value, dict) else ""
            raise ConfigError(f"{path}: unknown {'table [' + key + ']' if isinstance(value, dict) else 'key ' + repr(key)}"
                              f"; expected [devices.NAME] tables and a [defaults] table{hint}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a table ([{key}]), got {type(value).__name__}")
    return data


def defaults_table(explicit: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """The ``[defaults]`` table (``{}`` when absent or no file) and the file's path."""
    data, path = load_config(explicit)
    return data.get("defaults", {}), path


def remote_targets(explicit: str | Path | None = None) -> dict[str, Any]:
    """name -> :class:`hwprof.remote.SshTarget` of every device configured in the project file."""
    from hwprof.remote import targets_of

    data, path = load_config(explicit)
    return targets_of(data.get("devices", {}), path.parent if path else None)


TEMPLATE = '''\
# hwprof.toml: the project file of hwprof (written by `hwprof init`).
#
# Found at `hwprof --config PATH`, else $HWPROF_CONFIG, else ./hwprof.toml.
# Relative paths in it are relative to this file's folder. Every setting below
# is commented out: remove the leading "# " of a line to use it. A key hwprof
# does not know, or a value the option refuses, is a one-line error.

# Defaults: the default of an option in every command that has it with a
# default of its own. An option given on the command line always wins.
# Keys are option names: --db is `db`, --max-latency-ms is `max_latency_ms`
# (or "max-latency-ms"). The values shown are hwprof's own defaults.
[defaults]
# db = "hwprof.db"            # the measurement store (profile, show, export, search)
# device = "ort-cpu"          # profile's device: an adapter (`hwprof devices`) or a [devices.NAME] below
# space = "nb201"             # profile and search
# precision = "fp32"          # fp32 | int8 (exported models; `hwprof devices` lists who supports which)
# seed = 0                    # every command that samples or trains
# interleave = 50             # profile: networks measured side by side in a group
# target_ci = 0.01            # profile and measure: relative 95% CI of the p10 that ends a network's visits

# One command's options, including those whose default is "not given" (train's
# --db: with a store or --csv; the cache: beside the store). A group's command
# is [defaults.GROUP.COMMAND], e.g. [defaults.modnas.train].
# [defaults.profile]
# cache_dir = ".hwprof-cache"  # exported models (default: .hwprof-cache beside the db)
# set = ["intra_op_threads=1"] # device settings, as --set KEY=VALUE
# [defaults.train]
# db = "hwprof.db"
# model = "gbdt"              # gbdt | mlp | linear | ops
# [defaults.search]
# algo = "layernas"
# accuracy = "tabular:cifar10"
# max_latency_ms = 5.0

# Remote devices: a machine you do not sit at, measured over SSH (docs: remote.md).
# `hwprof remote trust NAME` accepts its host key, `hwprof remote list` checks it
# answers, then `hwprof profile --device NAME` measures there.
# [devices.lab-pi]
# type = "ssh"
# host = "10.0.0.5"
# port = 22                            # default 22
# user = "pi"                          # default: your ssh default
# key = "~/.ssh/id_ed25519"            # keys only: passwords are refused
# python = "/home/pi/venv/bin/python"  # an interpreter with hwprof and the runtime (default python3)
# device = "ort-cpu"                   # the adapter that runs there
# settings = { intra_op_threads = 4 }  # its settings (checked there; --set adds to them)
# timeout_s = 3600                     # per request (default: none)
'''


def write_template(path: str | Path = CONFIG_NAME, force: bool = False) -> Path:
    """Write the commented ``hwprof.toml`` template atomically; an existing file is kept unless ``force``."""
    given = Path(path).expanduser()
    target = output_file(given, overwrite=force, option="hwprof init", flag="--force")  # a link is written through
    write_atomic(target, TEMPLATE)
    return given
