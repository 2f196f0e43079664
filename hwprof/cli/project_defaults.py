"""The ``[defaults]`` table of ``hwprof.toml`` as click's ``default_map``.

One table changes the defaults of every command without per-command code:

```toml
[defaults]
db = "runs/lab.db"        # every command whose --db has a default of its own
precision = "int8"

[defaults.train]          # one command (a group's command: [defaults.modnas.train])
db = "runs/lab.db"        # train's --db has no default (it is one of two data sources)
model = "mlp"
```

A top-level key sets an option (``db``, ``--db``; ``max_latency_ms`` or
``max-latency-ms``) in every command that has it *with a default of its own*.
An option whose default is "not given" (``train --db``: the store or
``--csv``; ``measure --device``: from the file) means something when left
out, and a project-wide value could not be taken back on the command line; a
command table sets those for that command on purpose. An option given on the
command line always wins (click's order: command line, environment,
``default_map``, the option's own default).

Values are checked here, once, with the option's own conversion, so a wrong
one is a one-line error naming the file and the key instead of a usage error
of whichever command runs next. Path values are relative to the file's
folder, like every path in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hwprof.cli import command_tree
from hwprof.errors import ConfigError

# Commands and options a project file must not set: `init` writes the file (it never reads it), and
# accepting a host key is consent given on the command line, never a standing default.
NOT_CONFIGURABLE_COMMANDS = frozenset({("init",)})
NOT_CONFIGURABLE_OPTIONS = frozenset({(("remote", "trust"), "yes")})
# The file is chosen by the root's --config, which also reaches the commands that read [devices].
RESERVED_KEYS = frozenset({"config"})
WHY_NOT = {
    "config": "the file itself is chosen by `hwprof --config PATH` (or $HWPROF_CONFIG), not from inside it",
    "yes": "accepting a host key is consent given on the command line, never a standing default",
}


def _key(text: str) -> str:
    return text.strip().lstrip("-").replace("-", "_")


def _option_index(command: Any, path: tuple[str, ...]) -> dict[str, Any]:
    """key -> option: the parameter's name and each long flag, dashes and underscores alike."""
    index: dict[str, Any] = {}
    for option in command_tree.options(command):
        if option.name in RESERVED_KEYS or (path, option.name) in NOT_CONFIGURABLE_OPTIONS:
            continue
        for name in (option.name, *command_tree.long_names(option)):
            index.setdefault(_key(name), option)
    return index


def _commands(root: Any) -> dict[tuple[str, ...], Any]:
    """path -> command for every configurable command below the root (groups included)."""
    return {path: cmd for path, cmd in command_tree.walk(root)
            if path and not any(path[: len(c)] == c for c in NOT_CONFIGURABLE_COMMANDS)}


def _has_own_default(option: Any) -> bool:
    return option.default is not None


def _checked(root_ctx: Any, command: Any, path: tuple[str, ...], option: Any, value: Any, where: str, base: Path) -> Any:
    """The value as click will receive it; a path relative to the file's folder; a bad value is a ConfigError."""
    if option.multiple and not isinstance(value, list):
        value = [value]
    if isinstance(value, dict):
        raise ConfigError(f"{where}: expected a value for --{command_tree.long_names(option)[0]}, got a table")
    ctx = command.context_class(command, info_name=path[-1], parent=root_ctx)
    try:
        converted = option.process_value(ctx, value)
    except Exception as exc:  # click's BadParameter/UsageError (typer vendors its own click): say where
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise ConfigError(f"{where} = {value!r}: {message}") from None
    if isinstance(converted, Path):
        return str(base / Path(value).expanduser())
    if isinstance(converted, (list, tuple)) and converted and all(isinstance(v, Path) for v in converted):
        return [str(base / Path(v).expanduser()) for v in value]
    return value


def build_default_map(root_ctx: Any, defaults: Mapping[str, Any], source: Path,
                      config_option: Path | None = None) -> dict[str, Any]:
    """click's nested ``default_map`` for the root context ``root_ctx`` from a ``[defaults]`` table.

    ``source`` is the file (for messages and relative paths); ``config_option``,
    when the file was named by the root's ``--config``, is passed on to every
    command that has its own ``--config`` (the ones reading ``[devices]``).
    """
    root = root_ctx.command
    commands = _commands(root)
    indexes = {path: _option_index(cmd, path) for path, cmd in commands.items()}
    base = source.parent
    out: dict[str, Any] = {}

    def put(path: tuple[str, ...], name: str, value: Any) -> None:
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value

    for key, value in defaults.items():
        if isinstance(value, dict):
            _command_table(root_ctx, commands, indexes, (key,), value, source, base, put)
            continue
        k = _key(key)
        where = f"{source} [defaults] {key}"
        holders = [(path, index[k]) for path, index in indexes.items() if k in index]
        if not holders and k in WHY_NOT:
            raise ConfigError(f"{where}: not a default: {WHY_NOT[k]}")
        if not holders:
            raise ConfigError(f"{where}: no command has an option --{key.replace('_', '-')} "
                              f"(a command's own options go in [defaults.COMMAND]; see `hwprof COMMAND --help`)")
        applied = [(path, opt) for path, opt in holders if _has_own_default(opt)]
        if not applied:
            names = ", ".join(" ".join(p) for p, _ in holders)
            first = " ".join(holders[0][0]).replace(" ", ".")
            raise ConfigError(f"{where}: --{key.replace('_', '-')} has no default to change in {names} "
                              f"(leaving it out means something there); set it for one command in [defaults.{first}]")
        for path, opt in applied:
            put(path, opt.name, _checked(root_ctx, commands[path], path, opt, value, where, base))

    if config_option is not None:
        for path, cmd in commands.items():
            if any(o.name == "config" for o in command_tree.options(cmd)):
                put(path, "config", str(config_option))
    return out


def _command_table(root_ctx: Any, commands: dict, indexes: dict, path: tuple[str, ...], table: Mapping[str, Any],
                   source: Path, base: Path, put: Any) -> None:
    """``[defaults.train]`` (or ``[defaults.modnas.train]``): options of that one command."""
    label = "defaults." + ".".join(path)
    if path in NOT_CONFIGURABLE_COMMANDS:
        raise ConfigError(f"{source} [{label}]: `hwprof {' '.join(path)}` writes this file and reads no defaults")
    if path not in commands:
        known = ", ".join(sorted(".".join(p) for p, c in commands.items() if not command_tree.is_group(c)))
        raise ConfigError(f"{source} [{label}]: no command `hwprof {' '.join(path)}`; commands: {known}")
    command = commands[path]
    for key, value in table.items():
        if isinstance(value, dict):
            if not command_tree.is_group(command):
                raise ConfigError(f"{source} [{label}.{key}]: `hwprof {' '.join(path)}` has no subcommands")
            _command_table(root_ctx, commands, indexes, path + (key,), value, source, base, put)
            continue
        where = f"{source} [{label}] {key}"
        option = indexes[path].get(_key(key))
        if option is None and _key(key) in WHY_NOT:
            raise ConfigError(f"{where}: not a default: {WHY_NOT[_key(key)]}")
        if option is None:
            raise ConfigError(f"{where}: `hwprof {' '.join(path)}` has no option --{key.replace('_', '-')} "
                              f"(see `hwprof {' '.join(path)} --help`)")
        put(path, option.name, _checked(root_ctx, command, path, option, value, where, base))
