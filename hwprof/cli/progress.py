"""The one progress helper of the CLI.

On a terminal: a rich bar on stderr that vanishes when done. Piped or
redirected (CI logs, ``| tee``): plain lines on stderr, at most one every few
seconds per task plus the last one, so a long run shows it is alive and no
bar control codes end up in a log.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hwprof.cli.common import err_console

PLAIN_EVERY_S = 5.0

Report = Callable[..., None]  # report(done, total=None, info="")


class _PlainTask:
    def __init__(self, console: Console, description: str, total: int | None, every_s: float) -> None:
        self.console, self.description, self.total, self.every_s = console, description, total, every_s
        self.done, self.info = 0, ""
        self._last = -float("inf")
        self._printed: tuple[int, str] | None = None

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        self.done, self.info = done, info
        if total is not None:
            self.total = total
        now = time.monotonic()
        if now - self._last >= self.every_s or (self.total is not None and done >= self.total):
            self._last = now
            self.emit()

    def emit(self) -> None:
        if self._printed == (self.done, self.info):
            return
        self._printed = (self.done, self.info)
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        self.console.print(f"{self.description}: {count}{f' {self.info}' if self.info else ''}", highlight=False, soft_wrap=True)


class ProgressDisplay:
    """Several named tasks (e.g. the phases of a training) on one display."""

    def __init__(self, console: Console | None = None, plain: bool | None = None, every_s: float = PLAIN_EVERY_S) -> None:
        self.console = console or err_console
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.every_s = every_s
        self._bar: Progress | None = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> "ProgressDisplay":
        if not self.plain:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=True,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            for task in self._tasks.values():
                task.emit()  # the final state, once

    def update(self, name: str, done: int, total: int | None = None, info: str = "") -> None:
        if name not in self._tasks:
            if self._bar is not None:
                self._tasks[name] = self._bar.add_task(name, total=total, info="")
            else:
                self._tasks[name] = _PlainTask(self.console, name, total, self.every_s)
        task = self._tasks[name]
        if self._bar is not None:
            self._bar.update(task, completed=done, total=total, info=info)
        else:
            task.update(done, total, info)

    def reporter(self, name: str) -> Report:
        return lambda done, total=None, info="": self.update(name, done, total, info)


@contextlib.contextmanager
def progress(description: str, total: int | None = None, console: Console | None = None) -> Iterator[Report]:
    """``with progress("profiling", 40) as report: report(done, total, info)``."""
    with ProgressDisplay(console) as display:
        display.update(description, 0, total)
        yield display.reporter(description)


def run_with_progress(description: str, fn: Callable[[Report], Any], console: Console | None = None) -> Any:
    """Call ``fn(report)`` where ``report(done, total)`` drives one task."""
    with progress(description, console=console) as report:
        return fn(report)
