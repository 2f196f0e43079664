"""`hwprof show` and `hwprof export`: read what the store holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hwprof.cli.common import console
from hwprof.errors import ConfigError
from hwprof.outputs import output_file
from hwprof.store import Store

RUNS_SHOWN = 10  # the newest; `hwprof export` has every measurement


def show(db: Path = typer.Option(Path("hwprof.db"), "--db", help="SQLite store.")) -> None:
    """Summarise what is stored: devices, runs, measurements."""
    with Store(db, readonly=True) as store:
        store.check_integrity()
        summary = store.summary()
        runs = store.runs()
        older = store.file_schema_version
    schema = (f"schema v{older}, read as v{summary.schema_version}; the next command that writes to it migrates it"
              if older is not None else f"schema v{summary.schema_version}")
    console.print(f"[bold]{db}[/bold] ({schema})")
    tables = ("devices", "runs", "architectures", "artifacts", "measurements", "drift_checks")
    counts = Table(title="contents")
    for key in tables:
        counts.add_column(key, justify="right")
    counts.add_row(*(str(summary.counts.get(k, 0)) for k in tables))
    console.print(counts)
    per = Table(title="per device")
    for col in ("device", "architectures", "measurements", "median latency ms", "unstable"):
        per.add_column(col, justify="right" if col != "device" else "left")
    for d in summary.per_device:
        med = d.median_of_medians_ms
        per.add_row(d.device, str(d.n_architectures), str(d.n_measurements),
                    f"{med:.3f}" if med is not None else "-", str(d.n_unstable))
    console.print(per)
    if runs:
        rt = Table(title="runs")
        for col in ("run", "device", "started", "status", "command"):
            rt.add_column(col)
        for r in runs[-RUNS_SHOWN:]:
            rt.add_row(str(r.id), r.device, r.started_at, r.status, r.command)
        console.print(rt)
        if len(runs) > RUNS_SHOWN:
            console.print(f"(last {RUNS_SHOWN} of {len(runs)} runs)")


def export(
    db: Path = typer.Option(Path("hwprof.db"), "--db"),
    fmt: str = typer.Option("csv", "--format", "-f", help="Output format (csv)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file (default or -: stdout)."),
    device: Optional[str] = typer.Option(None, "--device", help="Only this device."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Export every measurement row (append-only history) as CSV."""
    if fmt != "csv":
        raise ConfigError(f"unknown export format {fmt!r}; supported: csv")
    # the path is checked before the store is read: a refused path costs nothing
    target = None if output is None or str(output) == "-" else output_file(output, overwrite=overwrite)
    with Store(db, readonly=True) as store:
        store.check_integrity()
        if target is None:
            store.export_csv(sys.stdout, device=device)
            return
        n = store.export_csv(target, device=device)  # atomic: a failing export leaves an existing file as it was
    console.print(f"wrote {n} measurements to {output}")


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("export")(export)
