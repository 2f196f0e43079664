"""`hwprof train`, `hwprof evaluate`, `hwprof predict`, `hwprof adapt`: latency predictors from the command line.

Thin: parse options, call :mod:`predictors.training` (train, evaluate,
predict) or :mod:`predictors.transfer.workflow` (adapt), print with ``rich``.
Held-out metrics travel with a saved predictor.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import typer
from rich.table import Table

from hwprof import registry
from hwprof.cli.common import console, parse_device_list, warn
from hwprof.cli.options import parse_key_values
from hwprof.cli.progress import ProgressDisplay
from hwprof.errors import ConfigError, HwprofError
from hwprof.outputs import output_file, write_atomic
from hwprof.spaces import read_arch_lines, read_numbered_arch_lines

# --- shared helpers -----------------------------------------------------------------------------


def _fmt(value: float, pattern: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, pattern)


def metrics_table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    """One row per (label, LatencyMetrics)."""
    table = Table(title=title)
    for col in ("data", "n", "RMSE ms", "MAPE", "±5%", "±10%", "Spearman", "Kendall τ"):
        table.add_column(col, justify="left" if col == "data" else "right")
    for label, m in rows:
        table.add_row(
            label, str(m.n), _fmt(m.rmse_ms, ".4f"), _fmt(m.mape, ".2%"), _fmt(m.within_5pct, ".1%"),
            _fmt(m.within_10pct, ".1%"), _fmt(m.spearman, ".4f"), _fmt(m.kendall_tau, ".4f"),
        )  # fmt: skip
    return table


# --- train ---------------------------------------------------------------------------------------


def train(
    db: Optional[Path] = typer.Option(None, "--db", help="Measurement store to learn from."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Benchmark CSV (arch + lat_<device>_ms or latency_ms columns), e.g. nb201.csv.gz."),
    target: Optional[str] = typer.Option(None, "--target", help="Latency column of --csv, e.g. lat_titanx_1_ms (default: its only one)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device in the store (default: its only device); "
                                         "with --csv, the name of a latency_ms column's device (default: the file's name)."),
    space: Optional[str] = typer.Option(None, "--space", "-s", help="Search space (default: the one the architectures parse as)."),
    model: str = typer.Option("gbdt", "--model", "-m", help="Predictor: gbdt, mlp, linear, ops."),
    features: Optional[str] = typer.Option(None, "--features", help="onehot, onehot+counts (default) or flops."),
    param: list[str] = typer.Option([], "--param", help="Predictor parameter KEY=VALUE (repeatable), e.g. max_depth=4."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of architectures held out for validation (default 0.2)."),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="Train on exactly N random architectures; validate on the rest "
                                          "(not with --val-fraction)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and of the model."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the predictor into."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the predictor -o already holds."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache (default: .hwprof-cache beside the db)."),
    node_runs: Optional[int] = typer.Option(None, "--node-runs", help="ops: profiled runs per network (default 20)."),
    calibrated: bool = typer.Option(False, "--calibrated", help="Store data: use reference-calibrated latencies (rows profiled with --calibrate)."),
) -> None:
    """Train a latency predictor on measured data, print held-out metrics, save it."""
    from predictors.data import check_data_source, load_latency_data
    from predictors.persistence import check_save_target
    from predictors.advice import few_networks_warning
    from predictors.training import check_network_options, make_predictor, train_predictor

    check_data_source(db, csv_path, target, "hwprof train")
    if n_train is not None and val_fraction is not None:
        raise ConfigError("--n-train N validates on all the other architectures; give --n-train or --val-fraction, not both")
    predictor = make_predictor(model, parse_key_values(param, "--param"), seed)
    check_network_options(predictor, cache_dir=cache_dir, node_runs=node_runs)
    check_save_target(out, replace=overwrite)  # before reading data and training, not after
    data = load_latency_data(db, csv_path, device=device, target=target, space=space, calibrated=calibrated)
    with ProgressDisplay() as display:
        result = train_predictor(
            data, predictor, features=features, val_fraction=0.2 if val_fraction is None else val_fraction, n_train=n_train,
            seed=seed, cache_dir=cache_dir, options={} if node_runs is None else {"node_runs": node_runs}, progress=display.reporter,
        )  # fmt: skip
    rows = [("train", result.train_metrics)]
    advice = few_networks_warning(model, len(result.train_idx), data.space)
    if advice is not None:
        warn(advice)
    if result.held_out is not None:
        rows.append(("validation", result.held_out))
    else:
        warn("no validation split (--val-fraction 0): the saved predictor carries no held-out metrics")
    console.print(metrics_table(f"{model} on {data.device} ({data.space}, {data.source})", rows))
    path = result.save(out)
    console.print(f"saved {model} predictor for {data.device} -> {path.parent}")


# --- evaluate / predict ----------------------------------------------------------------------------


def evaluate(
    predictor_dir: Path = typer.Argument(..., help="A saved predictor directory."),
    db: Optional[Path] = typer.Option(None, "--db", help="Measurement store with the latencies to compare with."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Benchmark CSV."),
    target: Optional[str] = typer.Option(None, "--target", help="Latency column of --csv (default: its only one)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device in the store (default: the predictor's); with --csv, "
                                         "it must match the column (a latency_ms column: its device, default the predictor's)."),
    other_device: bool = typer.Option(False, "--other-device", help="Allow data of another device than the predictor's."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache."),
    calibrated: bool = typer.Option(False, "--calibrated", help="Store data: use reference-calibrated latencies (rows profiled with --calibrate)."),
) -> None:
    """Accuracy of a saved predictor on measured data: RMSE, MAPE, ±5%, ±10%, Spearman, Kendall."""
    from predictors.data import check_data_source
    from predictors.training import evaluate_saved

    check_data_source(db, csv_path, target, "hwprof evaluate")
    result = evaluate_saved(
        predictor_dir, db=db, csv_path=csv_path, target=target, device=device, other_device=other_device,
        cache_dir=cache_dir, calibrated=calibrated,
    )  # fmt: skip
    title = f"{result.info.name} predictor {predictor_dir} on {result.data.device} ({result.data.source})"
    console.print(metrics_table(title, [("all", result.metrics)]))


def predict(
    predictor_dir: Path = typer.Argument(..., help="A saved predictor directory."),
    arch: Optional[str] = typer.Option(None, "--arch", "-a", help="One architecture string."),
    archs_file: Optional[Path] = typer.Option(None, "--archs", help="File with one architecture string per line."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV output for --archs (default or -: stdout)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing -o file."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache (default: the one it was trained with)."),
) -> None:
    """Predicted latency (ms) of one architecture, or CSV `arch,predicted_ms` for a file of them."""
    from predictors.persistence import load_predictor
    from predictors.training import predict_latencies, saved_context

    if (arch is None) == (archs_file is None):
        raise ConfigError("give exactly one of --arch STRING or --archs FILE")
    if out is not None and str(out) == "-":
        out = None  # stdout, as `hwprof export -o -`
    if out is not None and archs_file is None:
        raise ConfigError("-o writes the CSV of --archs; with --arch the prediction is printed")
    if overwrite and out is None:
        raise ConfigError("--overwrite applies to -o FILE; without -o nothing is written")
    target = output_file(out, overwrite=overwrite) if out is not None else None
    predictor = load_predictor(predictor_dir)
    context = saved_context(predictor, cache_dir)
    if arch is not None:
        value = float(predict_latencies(predictor, [arch.strip()], where="--arch", context=context)[0])
        console.print(f"{value:.4f} ms", highlight=False)
        return
    assert archs_file is not None
    lines, archs = zip(*read_numbered_arch_lines(archs_file))
    pred = predict_latencies(predictor, archs, where=str(archs_file), context=context, lines=lines)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["arch", "predicted_ms"])
    writer.writerows((a, f"{p:.6g}") for a, p in zip(archs, pred))
    if target is None:
        typer.echo(text.getvalue(), nl=False)
        return
    write_atomic(target, text.getvalue())
    console.print(f"{len(archs)} predictions -> {out}")


# --- adapt ---------------------------------------------------------------------------------------


def _display_index(spec: str, rows: dict[str, int], space_name: str) -> str:
    """Where to find an architecture: its source-table row, else its benchmark index when the space has one."""
    if spec in rows:
        return str(rows[spec])
    space = registry.get_space(space_name)
    if hasattr(space, "index"):
        try:
            return str(space.index(space.parse(spec)))
        except (HwprofError, LookupError):
            return "-"
    return "-"


def _print_suggestion(sources: Any, k: int, seed: int, select: str, pool: Optional[list[str]], pool_file: Optional[Path],
                      out: Optional[Path], target: Optional[Path]) -> None:
    from predictors.transfer.workflow import suggest

    chosen = suggest(sources, k, seed=seed, select=select, pool=pool, pool_name=str(pool_file))
    table = Table(title=f"measure these {len(chosen.archs)} architectures on the new device "
                        f"({chosen.how}, {chosen.n_source_devices} source devices)")  # fmt: skip
    table.add_column("#", justify="right")
    table.add_column("index", justify="right")
    table.add_column("architecture", overflow="fold")
    for n, spec in enumerate(chosen.archs, start=1):
        table.add_row(str(n), _display_index(spec, dict(chosen.rows), sources.space), spec)
    console.print(table)
    if out is not None and target is not None:
        write_atomic(target, "".join(spec + "\n" for spec in chosen.archs))
        console.print(f"{len(chosen.archs)} architectures -> {out} (measure them with `hwprof profile --archs {out}`)")


def adapt(
    db: Optional[Path] = typer.Option(None, "--db", help="Store with measurements of the new device (K are used, the rest test)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="The new device (its name in --db; a label with --samples)."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="CSV rows arch,latency_ms measured on the new device."),
    k: Optional[int] = typer.Option(None, "-k", help="Measured architectures to adapt from (default: 10 of a --db, all of --samples; "
                                    "fewer than given: chosen by --select, the rest held out), or to suggest (default 10)."),
    sources_csv: Optional[Path] = typer.Option(None, "--sources-csv", help="Source devices as a benchmark CSV (e.g. nb201.csv.gz)."),
    source_devices: Optional[str] = typer.Option(None, "--source-devices", help="Comma-separated source devices (default: all but the new one)."),
    sources_db: Optional[Path] = typer.Option(None, "--sources-db", help="Source devices from a store."),
    sources_model: Optional[Path] = typer.Option(None, "--sources-model", help="A pretrained transfer model (see --save-sources)."),
    save_sources: Optional[Path] = typer.Option(None, "--save-sources", help="Save the pretrained transfer model to DIR for --sources-model."),
    method: Optional[str] = typer.Option(None, "--method", help="Few-shot method: auto (default: nnls or standardized ridge, chosen on the samples), nnls, ridge, embedding, finetune."),
    param: list[str] = typer.Option([], "--param", help="Method setting KEY=VALUE for pretraining (repeatable), e.g. steps=2000."),
    space: Optional[str] = typer.Option(None, "--space", "-s", help="Search space (default: inferred)."),
    features: Optional[str] = typer.Option(None, "--features", help="Features of the transfer model (default onehot+counts)."),
    suggest: bool = typer.Option(False, "--suggest", help="Only print which K architectures to measure on the new device."),
    select: str = typer.Option("farthest", "--select", help="How to choose the K architectures: farthest, kmeans++, quantile, random."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="--suggest: choose among these architectures of the source table."),
    seed: int = typer.Option(0, "--seed"),
    live: Optional[bool] = typer.Option(None, "--live/--as-given", help="Describe architectures to the sources by what hwprof's "
                                        "export computes (dead operations dropped); default: --live for --db, --as-given for --samples."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Pretrained-model cache (default: .hwprof-cache beside "
                                             "--db/--samples, else in the working directory)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Save the adapted predictor to DIR (--suggest: the list to FILE)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what -o (and --save-sources) already hold."),
) -> None:
    """Few-shot latency predictor for a new device from K measurements and many source devices."""
    from predictors.persistence import TRANSFER_FILE, check_save_target
    from predictors.training import default_cache_dir
    from predictors.transfer.selection import SELECTION_METHODS
    from predictors.transfer.workflow import (
        DEFAULT_K,
        AdaptOptions,
        SourceSpec,
        adapt_device,
        open_sources,
        restricted_to_pool,
    )

    if suggest and (db is not None or samples is not None):
        raise ConfigError("--suggest chooses what to measure; it takes no --db or --samples")
    if select not in SELECTION_METHODS:
        raise ConfigError(f"unknown --select {select!r}; known: {', '.join(SELECTION_METHODS)}")
    if pool is not None and not suggest:
        raise ConfigError("--pool restricts what --suggest chooses from; to adapt from measured architectures give them with --db or --samples")
    if overwrite and out is None and save_sources is None:
        raise ConfigError("--overwrite applies to -o (and --save-sources); without them nothing is written")
    # every output checked before sources are read or models pretrained
    target = output_file(out, overwrite=overwrite) if suggest and out is not None else None
    if out is not None and not suggest:
        check_save_target(out, replace=overwrite)
    if save_sources is not None:
        check_save_target(save_sources, what="pretrained transfer model", marker=TRANSFER_FILE, replace=overwrite)
    options = None if suggest else AdaptOptions(device=device, db=db, samples=samples, k=k, space=space, select=select, seed=seed,
                                                live=live)  # fmt: skip
    spec = SourceSpec(csv=sources_csv, db=sources_db, model=sources_model, devices=parse_device_list(source_devices, "--source-devices"),
                      method=method, params=parse_key_values(param, "--param"), features=features,
                      cache_dir=cache_dir if cache_dir is not None else default_cache_dir(db if db is not None else samples))  # fmt: skip
    if suggest:
        k = k if k is not None else DEFAULT_K
        spec = spec.for_suggesting(k)
    sources = open_sources(spec, new_device=device, space=space)
    if options is not None and options.live_archs:
        sources = sources.live_equivalent()
    pool_archs = read_arch_lines(pool) if pool is not None and options is None else None
    if pool_archs is not None:  # an embedding model pretrained below takes its references from the pool
        sources = restricted_to_pool(sources, pool_archs, str(pool))
    for note in sources.notes:
        warn(note)
    if save_sources is not None or options is None:  # else adapt_device pretrains once the new device's data is checked
        with ProgressDisplay() as display:
            sources = sources.pretrained(seed=seed, progress=display.reporter)
    if save_sources is not None:
        path = sources.model.save(save_sources)
        console.print(f"pretrained {sources.model.method} model ({len(sources.model.devices)} source devices) -> {path.parent}")
    if options is None:
        _print_suggestion(sources, k, seed, select, pool_archs, pool, out, target)
        return
    with ProgressDisplay() as display:
        result = adapt_device(options, sources, progress=display.reporter)
    for note in result.notes:
        warn(note)
    rows = [("samples", result.sample_metrics)] if result.sample_metrics is not None else []
    if result.held_out is not None:
        rows.append(("held out", result.held_out))
    console.print(metrics_table(
        f"{result.method} from {len(result.fit_data)} samples of {result.data.device}, "
        f"{sources.n_devices} source devices ({sources.description})", rows,
    ))  # fmt: skip
    choice = result.extra["transfer"].get("choice")
    if choice:
        console.print(f"auto chose {choice['chosen']} (leave-one-out relative MSE: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in choice["loo_relative_mse"].items()) + ")", highlight=False)
    top = [f"{d} {w:+.3f}" for d, w in sorted(result.source_weights.items(), key=lambda kv: -abs(kv[1]))[:5] if w != 0]
    if top:
        console.print("main sources: " + ", ".join(top), highlight=False)
    if out is not None:
        path = result.save(out)
        console.print(f"saved adapted {result.predictor.name} predictor for {result.data.device} -> {path.parent}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("adapt")(adapt)
