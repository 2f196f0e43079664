"""The project file ``hwprof.toml``: devices measured elsewhere (and, later, defaults and paths).

Found at ``--config PATH``, else ``$HWPROF_CONFIG``, else ``./hwprof.toml``;
absent is fine (nothing configured). Relative paths inside it are relative to
the file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hwprof.errors import ConfigError

CONFIG_ENV = "HWPROF_CONFIG"
CONFIG_NAME = "hwprof.toml"


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file in use, or None when there is none (an explicit path must exist)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"${CONFIG_ENV} names {path}, which does not exist")
        return path
    local = Path(CONFIG_NAME)
    return local if local.is_file() else None


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
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise ConfigError(f"{path}: [devices] must be a table of device tables")
    return data, path


def remote_targets(explicit: str | Path | None = None) -> dict[str, Any]:
    """name -> :class:`hwprof.remote.SshTarget` of every device configured in the project file."""
    from hwprof.remote import targets_of

    data, path = load_config(explicit)
    return targets_of(data.get("devices", {}), path.parent if path else None)
