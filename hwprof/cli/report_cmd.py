"""`hwprof report`: one self-contained HTML file with plots of stores, predictors, searches and MODNAS runs.

Thin: the paths go to ``reporting.build_report``, which recognises each input
by its contents and writes the page atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hwprof.cli.common import console
from hwprof.cli.progress import ProgressDisplay


def report(
    inputs: list[Path] = typer.Argument(
        ..., help="Stores (.db), predictor directories, search output directories, MODNAS directories or front JSONs."
    ),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title (default: 'hwprof report')."),
) -> None:
    """Write one offline HTML report (plotly embedded) of measurements, predictors and search results."""
    from reporting import build_report

    with ProgressDisplay() as display:
        path = build_report(inputs, out, title=title, overwrite=overwrite, on_progress=display.update)
    size_mb = path.stat().st_size / 1e6
    console.print(f"wrote {path} ({size_mb:.1f} MB, opens offline in any browser)", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
