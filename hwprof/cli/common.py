"""Shared CLI plumbing: consoles, the --debug flag, one-line errors."""

from __future__ import annotations

from rich.console import Console

from hwprof.errors import ConfigError

console = Console()
err_console = Console(stderr=True)


class CliState:
    """Process-wide CLI options set by the root callback (e.g. --debug)."""

    debug: bool = False


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def parse_device_list(text: str | None, option: str = "--devices") -> tuple[str, ...] | None:
    """'a, b' -> ('a', 'b') for options naming several devices (None when the option is not given)."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError(f"{option} {text!r} names no device; expected a comma-separated list of table columns")
    return names
