"""`hwprof init`: write a commented project file (`hwprof.toml`) to start from."""

from __future__ import annotations

from pathlib import Path

import typer

from hwprof.cli.common import console


def init(
    path: Path = typer.Argument(Path("hwprof.toml"), help="The file to write."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Write a commented hwprof.toml: the option defaults of every command and remote devices, all commented out.

    Refuses to replace an existing file unless --force; the file is written
    atomically (a cut write never leaves half a file).
    """
    from hwprof.config import write_template

    written = write_template(path, force=force)
    found = written.resolve() == (Path.cwd() / "hwprof.toml").resolve()
    use = "" if found else f"; commands read it with `hwprof --config {written} COMMAND` or HWPROF_CONFIG={written}"
    console.print(f"wrote {written}: every setting is commented out, uncomment what you need{use}",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
