"""Shared CLI plumbing: consoles, the --debug flag, one-line errors."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class CliState:
    """Process-wide CLI options set by the root callback (e.g. --debug)."""

    debug: bool = False


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
