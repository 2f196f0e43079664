"""`hwprof quickstart`: the whole loop on this machine's CPU in one command, ending in an HTML report.

It only chains what the other commands do, each through its library call:
profile a sample of NAS-Bench-201 networks (:class:`hwprof.profiling.Profiler`),
train GBDT and MLP predictors and adapt the bundled 21-device table to the
measurements (:mod:`predictors.training`, :mod:`predictors.transfer`), compare
them on the same held-out networks, search with LayerNAS under a latency bound
taken from the measured range (:func:`nas.search.workflow.run_search`), measure
the chosen networks for real, and write ``report.html``
(:func:`reporting.build_report`). After each step it prints the command that
does that step alone.

Everything lands in one folder (``--out``, default ``quickstart``), marked as a
quickstart's by ``quickstart.json``; running the command again resumes the
profiling (stored networks are not measured again) and replaces the rest. A
folder that holds anything else is refused unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from hwprof import registry
from hwprof.cli.common import CommandInterrupted, console, warn
from hwprof.cli.progress import ProgressDisplay
from hwprof.errors import ConfigError, DataError
from hwprof.protocol import ProtocolSettings

MANIFEST = "quickstart.json"
# The networks profiled by default: benchmarks/few_networks.py (this VM's own ort-cpu profiles, 100 held out, 5 seeds)
# puts few-shot adaptation of the bundled table (Spearman 0.98-0.99 from 10 to 300 networks) ahead of every model trained
# from scratch, GBDT from 120 within 0.03 of it; 150 networks take about 2 minutes on 2 quiet cores (84 networks/min).
DEFAULT_NETWORKS = 150
PROTOCOL = ProtocolSettings(rounds=5)  # `hwprof profile`'s defaults: 5 to 10 interleaved visits (the tests swap in a faster one)
BOUND_PERCENTILE = 25  # the latency bound of the search: this percentile of the measured latencies
VAL_FRACTION = 0.2
RESUME = "run `hwprof quickstart` again"  # how an interrupted quickstart measures the rest (it resumes)


@dataclass(frozen=True)
class Candidate:
    """A predictor trained in this quickstart and its accuracy on the held-out networks."""

    name: str
    directory: Path
    metrics: Any  # predictors.metrics.LatencyMetrics
    how: str  # the command that makes it alone


def _step(title: str) -> None:
    console.rule(f"[bold]{escape(title)}")


def _next(*commands: str) -> None:
    for cmd in commands:
        console.print(f"  [dim]alone:[/dim] {escape(cmd)}", soft_wrap=True)


def _claim_folder(out: Path, overwrite: bool, settings: dict[str, Any]) -> None:
    """Use ``out`` for this quickstart: new, empty, a previous quickstart's, or ``--overwrite``."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the quickstart's store, predictors and report")
    marker = out / MANIFEST
    if out.is_dir() and any(out.iterdir()) and not marker.is_file() and not overwrite:
        raise ConfigError(
            f"{str(out)!r} holds files that are not a quickstart's; give another --out or pass --overwrite to write into it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"command": "hwprof quickstart", **settings}, indent=1, default=str))
        os.replace(tmp, marker)
    except OSError as exc:
        raise ConfigError(f"cannot write into {str(out)!r}: {exc.strerror or exc}") from None


def quickstart(
    n: int = typer.Option(DEFAULT_NETWORKS, "--num", "-n", help="NAS-Bench-201 networks to profile (a random sample)."),
    device: str = typer.Option("ort-cpu", "--device", "-d", help="Local device adapter to profile (see `hwprof devices`)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample, the held-out split, the models and the search."),
    out: Path = typer.Option(Path("quickstart"), "--out", "-o", help="Folder for the store, predictors, search results and report."),
    accuracy: str = typer.Option("tabular:cifar10", "--accuracy", help="Accuracy of the search (see `hwprof search --help`)."),
    budget: int = typer.Option(300, "--budget", help="Unique accuracy evaluations of the search."),
    verify: int = typer.Option(5, "--verify", help="Chosen networks measured for real after the search."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into --out even if it holds files that are not a quickstart's."),
) -> None:
    """Profile, train, search and report on this machine in one command (a few minutes on 2 cores)."""
    if n < 20:
        raise ConfigError(f"-n {n} is too few to train and hold out networks; give at least 20 (default {DEFAULT_NETWORKS})")
    if verify < 1:
        raise ConfigError(f"--verify must be >= 1, got {verify}")
    space = registry.get_space("nb201")
    dev = registry.get_device(device)
    dev.check()  # an unusable adapter fails here, in one line, before the folder is touched
    started = time.time()
    _claim_folder(out, overwrite, {"n": n, "device": device, "seed": seed, "accuracy": accuracy, "budget": budget})
    db = out / "hwprof.db"
    me = shlex.join(["hwprof", *sys.argv[1:]]) or "hwprof quickstart"

    _step(f"1/5 profile {n} NAS-Bench-201 networks on {device}")
    _profile(dev, space, db, n, seed, me)
    _next(f"hwprof profile -d {device} -n {n} --seed {seed} --db {db}", f"hwprof show --db {db}")

    _step("2/5 latency predictors, compared on the same held-out networks")
    candidates, data, val_idx = _train(db, device, out, seed)
    chosen = max(candidates, key=lambda c: (np.nan_to_num(c.metrics.spearman, nan=-1.0), c.metrics.within_10pct))
    console.print(f"search cost: [bold]{chosen.name}[/bold] (highest held-out Spearman of the three)")

    _step("3/5 LayerNAS under a latency bound from the measured range")
    bound = float(np.percentile(data.latency_ms, BOUND_PERCENTILE))
    bound = float(f"{bound:.3g}")
    outcome = _search(chosen, accuracy, bound, budget, seed, out / "search")

    _step(f"4/5 measure the chosen networks on {device}")
    rows = _verify(dev, space, db, outcome, chosen, bound, verify, me)

    _step("5/5 report")
    report = _report(out, db, candidates, outcome, rows, bound, chosen)
    console.print(f"[bold green]done[/bold green] in {time.time() - started:.0f} s: open {report}")
    _next(f"hwprof report {db} {' '.join(str(c.directory) for c in candidates)} {out / 'search'} -o {report} --overwrite")


# --- steps -------------------------------------------------------------------------------------------


def _profile(dev: Any, space: Any, db: Path, n: int, seed: int, command: str) -> None:
    from hwprof.cli.profile_cmd import _kept_line, _print_summary, _run_with_progress
    from hwprof.profiling import ProfileInterrupted, Profiler
    from hwprof.store import Store

    archs = space.sample(n, np.random.default_rng(seed))
    store = Store(db)
    try:
        store.check_integrity()  # a damaged store (a resumed quickstart) is one line before anything is measured
        profiler = Profiler(dev, space, store, protocol=PROTOCOL, command=command)
        try:
            summary = _run_with_progress(profiler, archs, again=False)
        except ProfileInterrupted as exc:
            raise CommandInterrupted(_kept_line(exc.summary, dev.name, db, RESUME)) from exc
    finally:
        store.close()
    _print_summary(summary, dev.name)


def _train(db: Path, device: str, out: Path, seed: int) -> tuple[list[Candidate], Any, np.ndarray]:
    from hwprof.cli.predict_cmd import metrics_table
    from nas.tabular import DATA_DIR
    from predictors.advice import few_networks_warning
    from predictors.data import from_store, split_indices
    from predictors.metrics import evaluate_predictions
    from predictors.training import TrainingResult, default_cache_dir, train_predictor
    from predictors.transfer.live import adapt_live
    from predictors.transfer.workflow import SourceSpec, open_sources

    data = from_store(db, device, "nb201")
    train_idx, val_idx = split_indices(len(data), VAL_FRACTION, seed)
    if len(val_idx) < 2:
        raise DataError(f"{len(data)} networks of {device} in {db}: too few to hold any out")
    candidates: list[Candidate] = []
    rows = []
    with ProgressDisplay() as display:
        for model in ("gbdt", "mlp"):
            result = train_predictor(data, model, val_fraction=VAL_FRACTION, seed=seed, progress=display.reporter)
            advice = few_networks_warning(model, len(result.train_idx), data.space)
            if advice is not None:
                warn(advice)
            target = out / "predictors" / model
            result.save(target)
            how = f"hwprof train --db {db} -d {device} --model {model} --seed {seed} -o {target}"
            candidates.append(Candidate(model, target, result.held_out, how))
            rows.append((f"{model} (from {len(train_idx)})", result.held_out))
        # Few-shot: the bundled 21-device table adapted to the same training networks, measured on the same held-out ones.
        table = DATA_DIR / "nb201.csv.gz"
        sources = open_sources(SourceSpec(csv=table, cache_dir=default_cache_dir(db)), new_device=device, space="nb201")
        sources = sources.live_equivalent().pretrained(seed=seed, progress=display.reporter)
        fit, held = data.subset(train_idx), data.subset(val_idx)
        # fitted on, and predicting for, each network's live equivalent: hwprof's export drops dead operations
        adapted = adapt_live(sources.model, list(fit.archs), fit.latency_ms)
    predicted = adapted.predict_archs(list(held.archs))
    metrics = evaluate_predictions(held.latency_ms, predicted)
    target = out / "predictors" / "adapt"
    extra = {"space": "nb201", "transfer": {"method": sources.model.method, "sources": sources.description,
                                           "source_devices": list(sources.model.devices), "samples": list(fit.archs),
                                           "select": "quickstart split", "live_equivalent": True}}
    # saved like a trained predictor, with its held-out predictions, so the report plots it beside the others
    TrainingResult(adapted, data, train_idx, val_idx, evaluate_predictions(fit.latency_ms, adapted.predict_archs(list(fit.archs))),
                   metrics, extra, predicted).save(target)
    how = f"hwprof adapt --db {db} -d {device} -k {len(train_idx)} --sources-csv {table} -o {target}"
    candidates.append(Candidate("adapt", target, metrics, how))
    rows.append((f"adapt {sources.model.method} (21 devices + {len(train_idx)})", metrics))
    console.print(metrics_table(f"held-out: {len(val_idx)} of the {len(data)} networks of {device}", rows))
    for c in candidates:
        _next(c.how)
    return candidates, data, val_idx


def _search(chosen: Candidate, accuracy: str, bound: float, budget: int, seed: int, out: Path) -> Any:
    from nas.search.request import SearchRequest
    from nas.search.workflow import run_search

    cost = f"predictor:{chosen.directory}"
    request = SearchRequest(algorithm="layernas", space="nb201", accuracy=accuracy, costs=(cost,),
                            constraints=(f"latency_ms<={bound}",), budget=budget, seed=seed, out=out, overwrite=True,
                            command="hwprof quickstart")
    console.print(f"bound: predicted latency <= {bound} ms (the {BOUND_PERCENTILE}th percentile of the measured networks)")
    with ProgressDisplay() as display:
        outcome = run_search(request, lambda task, done, total, info: display.update(task, done, total, info))
    result = outcome.result
    if result.best is None:
        console.print(f"no network met the bound in {result.n_evaluations} evaluations ({result.stop_reason})")
    else:
        console.print(f"best: {result.best.spec}  accuracy {result.best.accuracy:.2f}  predicted {result.best.costs[0]:.3f} ms")
    _next(f"hwprof search --space nb201 --algo layernas --accuracy {accuracy} --cost {cost} --max-latency-ms {bound} "
          f"--budget {budget} --seed {seed} -o {out}")
    return outcome


def _chosen_specs(result: Any, verify: int) -> list[Any]:
    """The best feasible network, then the most accurate other feasible ones (Pareto set first)."""
    feasible = [e for e in result.pareto if e.feasible] + [e for e in result.history if e.feasible]
    seen, picked = set(), []
    for e in ([result.best] if result.best is not None else []) + sorted(feasible, key=lambda e: -e.accuracy):
        if e.spec not in seen:
            seen.add(e.spec)
            picked.append(e)
        if len(picked) == verify:
            break
    return picked


def _verify(dev: Any, space: Any, db: Path, outcome: Any, chosen: Candidate, bound: float, verify: int, command: str) -> list[dict[str, Any]]:
    from hwprof.cli.profile_cmd import _kept_line
    from hwprof.profiling import ProfileInterrupted, Profiler
    from hwprof.store import Store
    from hwprof.types import Architecture

    entries = _chosen_specs(outcome.result, verify)
    if not entries:
        console.print("nothing to measure: the search found no network under the bound")
        return []
    archs = [Architecture("nb201", e.spec) for e in entries]
    archs_file = db.parent / "chosen.txt"
    archs_file.write_text("".join(a.spec + "\n" for a in archs))
    store = Store(db)
    try:
        store.check_integrity()  # a damaged store (a resumed quickstart) is one line before anything is measured
        profiler = Profiler(dev, space, store, protocol=PROTOCOL, command=command)
        try:
            profiler.profile(archs)
        except ProfileInterrupted as exc:
            raise CommandInterrupted(_kept_line(exc.summary, dev.name, db, RESUME)) from exc
        measured = store.latencies(dev.name, "nb201")
    finally:
        store.close()
    rows = []
    table = Table(title=f"chosen networks: predicted ({chosen.name}) vs measured on {dev.name}, bound {bound} ms")
    table.add_column("network", overflow="fold")
    for col in ("accuracy", "predicted ms", "measured ms", "error", "meets bound"):
        table.add_column(col, justify="right")
    for e in entries:
        real = measured.get(e.spec)
        pred = float(e.costs[0])
        row = {"spec": e.spec, "accuracy": float(e.accuracy), "predicted_ms": pred, "measured_ms": real,
               "rel_error": None if real is None else pred / real - 1.0, "meets_bound": None if real is None else real <= bound}
        rows.append(row)
        table.add_row(e.spec, f"{e.accuracy:.2f}", f"{pred:.3f}", "-" if real is None else f"{real:.3f}",
                      "-" if real is None else f"{row['rel_error']:+.1%}", "-" if real is None else ("yes" if row["meets_bound"] else "no"))
    console.print(table)
    _next(f"hwprof profile -d {dev.name} --archs {archs_file} --db {db} --again")
    return rows


def _report(out: Path, db: Path, candidates: list[Candidate], outcome: Any, rows: list[dict[str, Any]], bound: float,
            chosen: Candidate) -> Path:
    from reporting import ReportTable, build_report

    target = out / "report.html"
    predictors = ReportTable(
        ("predictor", "trained from", "Spearman", "within ±10%", "MAPE", "used by the search"),
        [(c.name, c.how, c.metrics.spearman, c.metrics.within_10pct, c.metrics.mape, "yes" if c is chosen else "")
         for c in candidates],
        note="all three measured on the same held-out networks of this machine",
    )
    verified = ReportTable(
        ("network", "accuracy", "predicted ms", "measured ms", "error", "meets the bound"),
        [(r["spec"], r["accuracy"], r["predicted_ms"], r["measured_ms"], r["rel_error"],
          None if r["meets_bound"] is None else ("yes" if r["meets_bound"] else "no")) for r in rows],
        note=f"LayerNAS with the {chosen.name} predictor as its latency cost under predicted latency <= {bound} ms; "
             "each chosen network then measured on this machine",
    )
    inputs = [db, *(c.directory for c in candidates), outcome.out]
    extra = {"predictors compared on the held-out networks": predictors, "chosen networks, measured": verified}
    return build_report(inputs, target, title="hwprof quickstart", overwrite=True, extra=extra)


def register(app: typer.Typer) -> None:
    app.command()(quickstart)


