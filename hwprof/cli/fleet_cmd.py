"""`hwprof worker`: make this machine a device node of a Ray fleet (see hwprof.fleet)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from hwprof.cli.common import CommandInterrupted, console
from hwprof.cli.options import parse_key_values
from hwprof.errors import ConfigError, HwprofError


def worker(
    devices: str = typer.Option(..., "--devices", help="Devices this machine drives: NAME (the adapter of that name) or NAME=ADAPTER, comma-separated; each becomes the Ray resource dev:NAME."),
    address: Optional[str] = typer.Option(None, "--address", help="The Ray cluster to join (HOST:PORT of its head)."),
    head: bool = typer.Option(False, "--head", help="Start a new cluster with this machine as its head instead of joining one."),
    set_: list[str] = typer.Option([], "--set", help="Device setting of this node, KEY=VALUE for every device or NAME.KEY=VALUE for one (repeatable), e.g. cpu_affinity=0. Placement, not identity: recorded in each row's host metadata."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Where this node keeps the models it exports (default: ~/.cache/hwprof/fleet)."),
    num_cpus: int = typer.Option(0, "--num-cpus", help="CPUs this node offers to ordinary Ray tasks (0: none, so nothing else runs beside a measurement)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the equivalent `ray start` line and exit."),
) -> None:
    """Run a Ray node that measures the given devices for `hwprof profile --ray` (until Ctrl-C).

    The node advertises one resource per device ({"dev:NAME": 1}), so the
    fleet never runs two measurements on one device at once; it exports and
    measures with this machine's hwprof, and its settings (--set) apply here.
    """
    from hwprof.fleet import node_environment, parse_node_devices, ray_start_command

    if (address is None) == (not head):
        raise ConfigError("give --address HOST:PORT to join a cluster, or --head to start one (not both)")
    if num_cpus < 0:
        raise ConfigError(f"--num-cpus must be >= 0, got {num_cpus}")
    node = parse_node_devices(devices, list(parse_key_values(set_, "--set").items()))
    env = node_environment(node, cache_dir)
    args = ray_start_command(node, None if head else address, num_cpus)
    line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(["ray", *args])
    if dry_run:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    from hwprof.fleet import import_ray

    import_ray()  # the one-line install hint when Ray is missing
    console.print(f"device node for {', '.join(d.name for d in node)}: {line}", markup=False, highlight=False, soft_wrap=True)
    proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", *args], env={**os.environ, **env})
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # ray start --block got the same Ctrl-C and stops its processes
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise CommandInterrupted("device node stopped; groups it was measuring are sent to other nodes by the driver") from None
    if code != 0:
        raise HwprofError(f"`ray start` exited with {code} (see its messages above)")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
