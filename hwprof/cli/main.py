"""Entry point of the `hwprof` command.

Every command module exposes ``register(app)``. Errors raised as
``HwprofError`` (and a few well-known environment errors) become one line on
stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

import typer
from rich.text import Text

from hwprof import __version__
from hwprof.cli import modnas_cmd, predict_cmd, profile_cmd, search_cmd, store_cmd
from hwprof.cli.common import CliState, err_console
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
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    CliState.debug = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _module in (profile_cmd, store_cmd, predict_cmd, search_cmd, modnas_cmd):
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and by `run`)."""
    CliState.debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except HwprofError as exc:
        _report(exc, "error")
        return 1
    except (OSError, sqlite3.Error, ValueError) as exc:  # environment/data problems not wrapped by the library
        _report(exc, "error")
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted: completed measurements are committed")
        return 130
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
    return 0


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
