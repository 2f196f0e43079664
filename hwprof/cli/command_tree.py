"""The click command tree behind the typer app, walked in one place.

Two readers need every command and option: the project file's ``[defaults]``
(``hwprof.cli.project_defaults``, which turns it into click's ``default_map``)
and the generated CLI reference of the documentation. Both walk the tree
here, so neither can miss a command the other sees.
"""

from __future__ import annotations

from typing import Any, Iterator

import typer
from typer.main import get_command


def root_command(app: typer.Typer | Any) -> Any:
    """The click group of a typer app (a click command is returned as it is)."""
    return get_command(app) if isinstance(app, typer.Typer) else app


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) for the command and every subcommand, depth first, in registration order."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, path + (name,))


def is_group(command: Any) -> bool:
    return bool(getattr(command, "commands", None))


def options(command: Any) -> list[Any]:
    """The command's options (not its positional arguments), in declaration order."""
    return [p for p in command.params if getattr(p, "param_type_name", "") == "option"]


def arguments(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "param_type_name", "") == "argument"]


def long_names(option: Any) -> tuple[str, ...]:
    """``--max-latency-ms`` -> ``max-latency-ms`` (every long flag, secondary ``--no-...`` ones excluded)."""
    return tuple(o[2:] for o in option.opts if o.startswith("--"))
