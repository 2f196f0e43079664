"""`hwprof remote`: remote devices configured in hwprof.toml (trust their host keys, check they answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hwprof.cli.common import console
from hwprof.errors import ConfigError

app = typer.Typer(help="Remote devices from hwprof.toml: `trust` a host's key, `list` whether each answers.", no_args_is_help=True)

CONFIG_HELP = "Project file with remote devices (default: $HWPROF_CONFIG or ./hwprof.toml)."


def _target(name: str, config: Optional[Path]):
    from hwprof.config import remote_targets

    targets = remote_targets(config)
    if name not in targets:
        have = ", ".join(sorted(targets)) or "none"
        raise ConfigError(f"no remote device {name!r} in the project file (configured: {have})")
    return targets[name]


@app.command("trust")
def trust(
    name: str = typer.Argument(..., help="A device of type ssh in hwprof.toml."),
    yes: bool = typer.Option(False, "--yes", help="Accept the fingerprints shown (otherwise they are only shown)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
) -> None:
    """Show the host's key fingerprints; with --yes add them to hwprof's known_hosts (first connections are refused until then)."""
    from hwprof.remote import trust_host

    target = _target(name, config)
    for line in trust_host(target, accept=yes):
        console.print(line, markup=False)
    if yes:
        console.print(f"accepted: {target.host}:{target.port} added to {target.known_hosts}")
    else:
        console.print(f"compare these with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on {target.host}); "
                      f"accept with `hwprof remote trust {name} --yes`")


@app.command("list")
def list_remotes(config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP)) -> None:
    """Every configured remote device, whether it answers here and why not."""
    from hwprof.config import remote_targets
    from hwprof.remote import remote_status

    targets = remote_targets(config)
    if not targets:
        console.print("no remote devices configured (add [devices.NAME] tables of type \"ssh\" to hwprof.toml)")
        return
    table = Table(title="remote devices")
    for col in ("name", "where", "adapter", "usable", "details"):
        table.add_column(col)
    for name, t in targets.items():
        ok, why = remote_status(t)
        table.add_row(name, f"{t.destination}:{t.port}", t.device, "yes" if ok else "no", why)
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="remote")
