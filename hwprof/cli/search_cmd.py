"""`hwprof search`: find the most accurate network under a cost bound, or the whole trade-off.

Thin: the options become a ``nas.search.SearchRequest``; ``nas.search.run_search``
parses its specs, runs the registered algorithm and writes the results; this
prints them, with progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from hwprof.cli.common import CommandInterrupted, console, parse_device_list, warn
from hwprof.cli.options import parse_key_values
from hwprof.cli.progress import ProgressDisplay
from nas.cost import COST_FORMS, Constraint
from nas.evaluators import EVALUATOR_FORMS
from nas.search.workflow import DEFAULT_BUDGET

COST_HELP = f"{COST_FORMS}. Repeat for several objectives."
# The default is None (a request-kind algorithm refuses a budget), so it is stated in the help; escaped,
# or rich would read "[default: 300]" as a markup tag and drop it.
BUDGET_HELP = "Unique accuracy evaluations " + escape(f"[default: {DEFAULT_BUDGET}]") + "."


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _print_result(result) -> None:
    unit = result.evaluator_unit
    if result.best is None:
        console.print(f"[yellow]no feasible architecture among {result.n_evaluations} evaluated[/yellow]")
    else:
        b = result.best
        costs = ", ".join(f"{n} {_fmt(v)}" for n, v in zip(result.cost_names, b.costs))
        console.print(f"[bold]best[/bold] {b.spec}")
        console.print(f"  {result.evaluator} {_fmt(b.accuracy)} {unit}; {costs}; evaluation #{b.index + 1}")
    console.print(
        f"{result.algorithm}: {result.n_evaluations} evaluations of {result.budget}, stopped: {result.stop_reason} "
        f"({result.wall_s:.1f} s)"
    )
    table = Table(title=f"Pareto set ({len(result.pareto)} architectures)")
    table.add_column("#", justify="right")
    table.add_column(f"{result.evaluator} ({unit})", justify="right")
    for n, u in zip(result.cost_names, result.cost_units):
        table.add_column(f"{n} ({u})" if u else n, justify="right")
    table.add_column("architecture", overflow="fold")
    for e in result.pareto:
        table.add_row(str(e.index + 1), _fmt(e.accuracy), *(_fmt(c) for c in e.costs), e.spec)
    console.print(table)


def search(
    space: str = typer.Option("nb201", "--space", "-s", help="Search space."),
    algo: str = typer.Option("layernas", "--algo", "-a", help="layernas | random | evolution | nsga2 | modnas (any registered algorithm)."),
    accuracy: str = typer.Option("tabular:cifar10", "--accuracy", help=EVALUATOR_FORMS),
    cost: list[str] = typer.Option([], "--cost", "-c", help=COST_HELP),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="Shorthand for --constraint 'latency_ms<=X'."),
    constraint: list[str] = typer.Option([], "--constraint", help="NAME<=VALUE on a cost objective (repeatable)."),
    budget: Optional[int] = typer.Option(None, "--budget", "-b", help=BUDGET_HELP),
    seed: int = typer.Option(0, "--seed"),
    multi_objective: bool = typer.Option(False, "--multi-objective", help="Aim at the whole accuracy/cost trade-off."),
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Directory for the history CSV and result JSON."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace another search's results of the same algorithm and seed in --out."
    ),
    db: Path = typer.Option(Path("hwprof.db"), "--db", help="Store used by --cost measure:DEVICE."),
    table: Optional[Path] = typer.Option(None, "--table", help="NAS-Bench-201 CSV (default: the bundled copy)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Algorithm parameter KEY=VALUE, e.g. buckets=8, hidden=16,16 (repeatable)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="--algo modnas: comma-separated training devices (table columns)."),
) -> None:
    """Search a space for accurate networks that meet a cost bound (or for the Pareto set).

    Ctrl-C (or SIGTERM/SIGHUP) keeps the completed evaluations in --out (stop reason
    ``interrupted``, marked partial); the same command resumes from them.
    """
    from nas.search import SearchInterrupted, SearchRequest, run_search

    constraints: list[Constraint | str] = list(constraint)
    if max_latency_ms is not None:
        constraints.append(Constraint("latency_ms", max_latency_ms))
    request = SearchRequest(
        algorithm=algo, space=space, accuracy=accuracy, costs=tuple(cost), constraints=tuple(constraints),
        budget=budget, seed=seed, multi_objective=multi_objective, out=out, table=table, db=db,
        devices=parse_device_list(devices), params=parse_key_values(param, "--param"), command="hwprof search",
        overwrite=overwrite,
    )
    try:
        with ProgressDisplay() as display:
            outcome = run_search(request, on_progress=display.update)
    except SearchInterrupted as exc:
        raise CommandInterrupted(exc.summary) from None
    if outcome.result is not None:
        _print_result(outcome.result)
    for line in outcome.summary:
        console.print(line, markup=False)
    for line in outcome.warnings:
        warn(line)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
