"""Entry point of the `hwprof` command.

Every command module exposes ``register(app)``. Errors raised as
``HwprofError`` (and a few well-known environment errors) become one line on
stderr and exit code 1; ``--debug`` shows the traceback instead.

Ctrl-C ends any command with one line saying what was kept and exit code 130.
SIGTERM and SIGHUP (a `kill`, a closed terminal, a batch system's time limit)
are raised as the same KeyboardInterrupt, so the same cleanup runs (a profile
run is marked ``interrupted`` and keeps its completed work); they exit with
the shell's convention 128 + signal number (143, 129).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.text import Text

from hwprof import __version__
from hwprof.cli import (
    fleet_cmd, init_cmd, modnas_cmd, predict_cmd, profile_cmd, quickstart_cmd, remote_cmd, report_cmd, search_cmd,
    store_cmd,
)
from hwprof.cli.common import CliState, CommandInterrupted, err_console
from hwprof.errors import HwprofError, first_line

app = typer.Typer(
    name="hwprof",
    help="Hardware-aware NAS: profile real latency, train predictors, search for fast and accurate networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwprof {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Project file with option defaults and remote devices (default: $HWPROF_CONFIG or ./hwprof.toml; `hwprof init` writes one)."),
) -> None:
    CliState.debug = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand == "init":  # it writes the file; a broken one must not stop it being rewritten
        return
    from hwprof.cli.project_defaults import build_default_map
    from hwprof.config import defaults_table

    defaults, path = defaults_table(config)
    if path is not None:  # every command's option defaults come from [defaults]; the command line still wins
        ctx.default_map = build_default_map(ctx, defaults, path, config_option=config)


for _module in (
    profile_cmd, store_cmd, predict_cmd, search_cmd, modnas_cmd, remote_cmd, fleet_cmd, report_cmd, quickstart_cmd, init_cmd,
):
    _module.register(app)


INTERRUPT_SIGNALS = ("SIGTERM", "SIGHUP")  # handled like Ctrl-C (names: SIGHUP does not exist on Windows)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``except KeyboardInterrupt`` cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[list[int]]:
    """Raise :class:`Terminated` on SIGTERM/SIGHUP while the block runs; yields the signals received.

    The previous handlers come back afterwards. Python lets only the main
    thread set handlers; elsewhere (a CLI called from a worker thread) the
    signals keep their handlers.
    """
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        raise Terminated(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in INTERRUPT_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, on_signal)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and by `run`)."""
    args = list(argv if argv is not None else sys.argv[1:])
    CliState.debug = "--debug" in args
    with _signals_as_interrupts() as received:
        try:
            code = _run(args)
        except CommandInterrupted as exc:  # the command said what it kept
            return _interrupted(str(exc), received)
        except KeyboardInterrupt:  # before or after the command ran
            code = 130
    if code == 130:  # typer turns a KeyboardInterrupt the command let through into exit code 130
        return _interrupted(f"`hwprof {_command_name(args)}` stopped before it finished; only what it had already written is kept", received)
    return code


def _interrupted(message: str, received: list[int]) -> int:
    """One line; 130 for Ctrl-C, 128 + the signal number for SIGTERM/SIGHUP."""
    signum = received[0] if received else None
    label = "interrupted" if signum is None else f"interrupted by {signal.Signals(signum).name}"
    err_console.print(Text.assemble((f"{label}: ", "yellow"), message), highlight=False, soft_wrap=True)
    return 130 if signum is None else 128 + signum


def _command_name(args: list[str]) -> str:
    return next((a for a in args if not a.startswith("-")), "")


def _run(argv: list[str]) -> int:
    """The command's exit code; errors become one line and 1 (usage errors: click's message and 2)."""
    try:
        result = app(args=argv, standalone_mode=False)
    except HwprofError as exc:
        _report(exc, "error")
        return 1
    except (OSError, sqlite3.Error, ValueError) as exc:  # environment/data problems not wrapped by the library
        _report(exc, "error")
        return 1
    except CommandInterrupted:
        raise  # main() prints its line
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            return exc.exit_code  # type: ignore[attr-defined]
        _report(exc, "internal error")
        return 1
    # Without standalone mode typer returns the code of a typer.Exit (130 for a KeyboardInterrupt).
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _is_usage_error(exc: BaseException) -> bool:
    """A click ClickException (bad option value, unknown option, missing argument).

    Typer up to 0.2x raised click's own class; newer releases vendor click as
    ``typer._click``. Both carry ``show()`` and an integer ``exit_code``, so the
    test is on that shape rather than on either module.
    """
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and callable(getattr(exc, "show", None)) \
        and isinstance(getattr(exc, "exit_code", None), int)


def _report(exc: BaseException, label: str) -> None:
    if CliState.debug:
        err_console.print_exception()
    else:
        err_console.print(Text.assemble((f"{label}: ", "red"), first_line(exc)), highlight=False, soft_wrap=True)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
