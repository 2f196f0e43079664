"""`hwprof search`: find the most accurate network under a cost bound, or the whole trade-off.

Thin: parse the option strings into a space, an evaluator, cost models and
constraints, call ``nas.search.search`` with a progress callback, print and save.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwprof.cli.common import console
from hwprof.errors import ConfigError, UnknownNameError

ACCURACY_HELP = "tabular:cifar10|tabular:cifar100|tabular:ImageNet16-120|train:digits|proxy:synflow|proxy:naswot"
COST_HELP = (
    "lookup:DEVICE (column of the bundled NB201 table) | lookup-csv:FILE:COLUMN | store:DB:DEVICE | "
    "predictor:DIR | measure:DEVICE (profile with --db) | params | macs. Repeat for several objectives."
)
# Small network for train:digits: one cell per stage, 8 channels, the digits' 10 classes at 16x16.
TRAIN_SPACE_PARAMS = {"num_classes": 10, "channels": 8, "cells_per_stage": 1, "input_size": 16}


def _load_space(name: str, **params: Any):
    from hwprof.registry import get_space

    return get_space(name, **params)


def _nb201_table(space, path: Optional[Path], what: str):
    if space.name != "nb201":
        raise ConfigError(f"{what} reads the NAS-Bench-201 table, which only scores the nb201 space, not {space.name!r}")
    from nas.tabular import load_nb201

    return load_nb201(path)


def make_evaluator(text: str, space, table_path: Optional[Path] = None, seed: int = 0):
    """Parse --accuracy."""
    from nas.evaluators import NaswotEvaluator, SynflowEvaluator, TabularEvaluator, TrainEvaluator

    kind, _, arg = text.partition(":")
    if kind == "tabular":
        return TabularEvaluator(_nb201_table(space, table_path, "--accuracy tabular"), arg or "cifar10")
    if kind == "train":
        if arg not in ("", "digits"):
            raise UnknownNameError(f"unknown training data {arg!r} in --accuracy {text!r}; known: digits")
        params = TRAIN_SPACE_PARAMS if space.name == "nb201" else {"num_classes": 10}
        try:
            small = _load_space(space.name, **params)
        except TypeError as exc:
            raise ConfigError(f"cannot build a 10-class {space.name} network for digits ({exc})") from None
        return TrainEvaluator(small, "digits", seed=seed)
    if kind == "proxy":
        if arg == "synflow":
            return SynflowEvaluator(space, seed=seed)
        if arg == "naswot":
            return NaswotEvaluator(space, seed=seed)
        raise UnknownNameError(f"unknown proxy {arg!r} in --accuracy {text!r}; known: synflow, naswot")
    raise UnknownNameError(f"unknown accuracy objective {text!r}; expected one of {ACCURACY_HELP}")


def make_cost(text: str, space, db: Path, table_path: Optional[Path] = None, closers: list | None = None):
    """Parse one --cost; returns (cost model, tag used to name it when there are several latencies)."""
    from nas.cost import LookupCost, MacsCost, MeasuredCost, ParamsCost, PredictorCost

    kind, _, arg = text.partition(":")
    if kind == "lookup":
        if not arg:
            raise ConfigError("--cost lookup needs a device column, e.g. lookup:pixel3")
        return LookupCost.from_nb201(_nb201_table(space, table_path, "--cost lookup"), arg), arg
    if kind == "lookup-csv":
        path, sep, column = arg.rpartition(":")
        if not sep or not path or not column:
            raise ConfigError(f"--cost {text!r}: expected lookup-csv:FILE:COLUMN")
        return LookupCost.from_csv(path, column, space=space), column
    if kind == "store":
        path, sep, device = arg.rpartition(":")
        if not sep or not path or not device:
            raise ConfigError(f"--cost {text!r}: expected store:DB:DEVICE")
        from hwprof.store import Store

        store = Store(path, create=False)
        if closers is not None:
            closers.append(store)
        return LookupCost.from_store(store, device, space=space), device
    if kind == "predictor":
        if not arg:
            raise ConfigError("--cost predictor needs a directory, e.g. predictor:models/pixel3")
        return PredictorCost.load(arg, space=space), Path(arg).name
    if kind == "measure":
        if not arg:
            raise ConfigError("--cost measure needs a device adapter, e.g. measure:ort-cpu")
        from hwprof.profiling import open_profiler

        profiler = open_profiler(arg, db, space.name, command="hwprof search")
        if closers is not None:
            closers.append(profiler)
        return MeasuredCost(profiler), arg
    if kind == "params" and not arg:
        return ParamsCost(space), "params"
    if kind == "macs" and not arg:
        return MacsCost(space), "macs"
    raise UnknownNameError(f"unknown cost objective {text!r}; expected {COST_HELP}")


def _name_latencies(costs: list[tuple[Any, str]]) -> list[Any]:
    """Several latency costs get distinct names latency_ms_<tag>, so constraints can tell them apart."""
    lat = [c for c, _ in costs if c.name == "latency_ms"]
    if len(lat) > 1:
        for c, tag in costs:
            if c.name == "latency_ms":
                c.name = "latency_ms_" + re.sub(r"[^A-Za-z0-9_]", "_", tag)
    return [c for c, _ in costs]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """--param NAME=VALUE; VALUE as JSON when it parses (8, true, [0,1]), else as a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out


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


DEFAULT_BUDGET = 300


def search(
    space: str = typer.Option("nb201", "--space", "-s", help="Search space."),
    algo: str = typer.Option("layernas", "--algo", "-a", help="layernas | random | evolution | nsga2 | modnas."),
    accuracy: str = typer.Option("tabular:cifar10", "--accuracy", help=ACCURACY_HELP),
    cost: list[str] = typer.Option([], "--cost", "-c", help=COST_HELP),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="Shorthand for --constraint 'latency_ms<=X'."),
    constraint: list[str] = typer.Option([], "--constraint", help="NAME<=VALUE on a cost objective (repeatable)."),
    budget: Optional[int] = typer.Option(None, "--budget", "-b", help="Unique accuracy evaluations [default: 300]."),
    seed: int = typer.Option(0, "--seed"),
    multi_objective: bool = typer.Option(False, "--multi-objective", help="Aim at the whole accuracy/cost trade-off."),
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Directory for the history CSV and result JSON."),
    db: Path = typer.Option(Path("hwprof.db"), "--db", help="Store used by --cost measure:DEVICE."),
    table: Optional[Path] = typer.Option(None, "--table", help="NAS-Bench-201 CSV (default: the bundled copy)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Algorithm parameter NAME=VALUE, e.g. buckets=8 (repeatable)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="--algo modnas: comma-separated training devices (table columns)."),
) -> None:
    """Search a space for accurate networks that meet a cost bound (or for the Pareto set)."""
    from nas.cost import Constraint
    from nas.search import algorithm_names, algorithm_params
    from nas.search import search as run_search
    from nas.search.base import prepare_output_dir

    if algo == "modnas":  # one hypernetwork for many devices: trained here, queried with `hwprof modnas`
        from hwprof.cli.modnas_cmd import search_modnas

        if budget is not None or multi_objective:
            raise ConfigError(
                "--algo modnas always learns the whole accuracy/latency front and trains for a number of steps; "
                "drop --budget/--multi-objective (set the length with --param steps=N)"
            )
        search_modnas(space, devices, accuracy, out, table, seed, parse_params(param), cost, constraint, max_latency_ms)
        return
    budget = DEFAULT_BUDGET if budget is None else budget
    if algo not in algorithm_names():
        raise UnknownNameError(f"unknown search algorithm {algo!r}; known: {', '.join(algorithm_names())}")
    params = parse_params(param)
    unknown = sorted(set(params) - set(algorithm_params(algo)))
    if unknown:
        raise ConfigError(f"{algo} has no parameter(s) {unknown}; accepted: {sorted(algorithm_params(algo))}")
    if not cost:
        raise ConfigError(f"give at least one --cost; expected {COST_HELP}")
    constraints = [Constraint.parse(c) for c in constraint]
    if max_latency_ms is not None:
        constraints.append(Constraint("latency_ms", max_latency_ms))
    if not constraints and not multi_objective:
        raise ConfigError("give a bound (--max-latency-ms or --constraint) or ask for --multi-objective")
    space_obj = _load_space(space)
    prepare_output_dir(out)
    closers: list[Any] = []
    try:
        evaluator = make_evaluator(accuracy, space_obj, table, seed)
        costs = _name_latencies([make_cost(c, space_obj, db, table, closers) for c in cost])
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
        )
        task = progress.add_task(algo, total=budget, best="")
        names = [c.name for c in costs]

        def on_evaluation(p) -> None:
            if not progress.live.is_started:
                progress.start()  # only once the set-up is validated, so errors print alone
            best = "" if p.best is None else f"best {_fmt(p.best.accuracy)} {evaluator.unit} @ " + ", ".join(
                f"{n} {_fmt(v)}" for n, v in zip(names, p.best.costs)
            )
            progress.update(task, completed=p.n_evaluations, best=best)

        try:
            result = run_search(
                algo, space_obj, evaluator, costs, constraints, budget=budget, seed=seed,
                multi_objective=multi_objective, on_evaluation=on_evaluation, **params,
            )
        finally:
            if progress.live.is_started:  # stopping a bar never started prints an empty line
                progress.stop()
    finally:
        for c in closers:
            c.close()
    _print_result(result)
    csv_path, json_path = result.write(out)
    console.print(f"saved {csv_path} and {json_path}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
