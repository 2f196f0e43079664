"""Shared CLI plumbing: consoles, the --debug flag, one-line errors."""

from __future__ import annotations

from rich.console import Console

from hwprof.errors import ConfigError

console = Console()
err_console = Console(stderr=True)


class CliState:
    """Process-wide CLI options set by the root callback (e.g. --debug)."""

    debug: bool = False


class CommandInterrupted(Exception):
    """A command stopped by Ctrl-C (or SIGTERM/SIGHUP), with the one line saying what it kept.

    Not a KeyboardInterrupt on purpose: typer turns those into a bare exit code
    and the line would be lost; ``hwprof.cli.main`` prints it and exits 130
    (128 + the signal number for SIGTERM/SIGHUP).
    """


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)  # one line, also in a pipe


def parse_device_list(text: str | None, option: str = "--devices") -> tuple[str, ...] | None:
    """'a, b' -> ('a', 'b') for options naming several devices (None when the option is not given)."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError(f"{option} {text!r} names no device; expected a comma-separated list of table columns")
    return names
