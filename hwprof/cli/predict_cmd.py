"""`hwprof train`, `hwprof evaluate`, `hwprof predict`, `hwprof adapt`: latency predictors from the command line.

Thin: load latency data (:mod:`hwprof.cli.predict_data`), featurize, call the
predictor library, print metrics with ``rich`` and save with
:mod:`predictors.persistence`. Held-out metrics travel with a saved predictor.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwprof.cli.common import console, err_console, warn
from hwprof.cli.predict_data import (
    LatencyData,
    check_latencies,
    from_csv,
    from_store,
    open_store,
    read_samples,
    read_table,
    split_indices,
    target_device,
)
from hwprof.spaces import read_arch_lines
from hwprof.errors import ConfigError, DataError, HwprofError, PersistenceError

OPS_MODEL = "ops"


# --- shared helpers -----------------------------------------------------------------------------


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """['max_depth=4', 'hidden_sizes=64,64'] -> {'max_depth': 4, 'hidden_sizes': (64, 64)}."""
    from hwprof.cli.profile_cmd import parse_settings

    out: dict[str, Any] = {}
    for pair in pairs:
        key, value = next(iter(parse_settings([pair], "--param").items()))
        if isinstance(value, str) and "," in value:
            value = tuple(parse_settings([f"v={part.strip()}"])["v"] for part in value.split(",") if part.strip())
        out[key] = value
    return out


def progress_bar(description: str) -> Progress:
    """A progress bar on stderr (stdout stays clean for CSV output); vanishes when done on a terminal."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def run_with_progress(description: str, fn: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Call ``fn(progress)`` where ``progress(done, total)`` drives a bar."""
    with progress_bar(description) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return fn(report)


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


def schema_space(kind: str) -> str | None:
    """The space of an architecture feature kind such as ``onehot+counts:nb201`` (None for graph/raw kinds)."""
    prefix, sep, arg = kind.partition(":")
    from predictors.features.encoding import FEATURE_SETS

    return arg if sep and prefix in FEATURE_SETS else None


def _featurizer(space: str, features: Optional[str]):
    from predictors.features.encoding import DEFAULT_FEATURE_SET, FEATURE_SETS, ArchFeaturizer

    feature_set = features or DEFAULT_FEATURE_SET
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown --features {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return ArchFeaturizer(space, feature_set)


def _transform(featurizer: Any, archs: Sequence[str], where: str) -> np.ndarray:
    try:
        return featurizer.transform(list(archs))
    except DataError as exc:
        raise DataError(f"{where} does not hold {featurizer.space.name} architectures: {exc}") from None


def _one_source(db: Optional[Path], csv_path: Optional[Path], target: Optional[str], what: str) -> None:
    if (db is None) == (csv_path is None):
        raise ConfigError(f"{what} needs exactly one data source: --db STORE or --csv FILE --target COLUMN")
    if csv_path is not None and target is None:
        raise ConfigError("--csv needs --target, the latency column, e.g. --target lat_titanx_1_ms")
    if db is not None and target is not None:
        raise ConfigError("--target applies to --csv; with --db choose the device with --device")


def _default_device(db: Path) -> str:
    """The store's only measured device (ConfigError when there are several or none)."""
    store = open_store(db)
    try:
        names = [d["name"] for d in store.devices() if d["n_measurements"]]
    finally:
        store.close()
    if len(names) != 1:
        have = ", ".join(names) if names else "none"
        raise ConfigError(f"choose the device with --device; {db} holds measurements of {len(names)} devices ({have})")
    return names[0]


def load_data(db: Optional[Path], csv_path: Optional[Path], device: Optional[str], target: Optional[str],
              space: Optional[str], calibrated: bool = False) -> LatencyData:
    if db is not None:
        return from_store(db, device or _default_device(db), space, calibrated)
    if calibrated:
        raise ConfigError("--calibrated applies to a store (--db): a CSV holds one latency per architecture")
    assert csv_path is not None and target is not None
    data = from_csv(csv_path, target, space)
    if device is not None and device != data.device:
        raise ConfigError(f"--device {device!r} contradicts --target {target!r} (device {data.device!r}); give one of them")
    return data


# --- train ---------------------------------------------------------------------------------------


def make_predictor(model: str, params: dict[str, Any], seed: int):
    from predictors.registry import get_predictor_class

    cls = get_predictor_class(model)
    known = cls._param_names()
    seed_param = next((p for p in ("seed", "random_state") if p in known), None)
    if seed_param is not None and seed_param not in params:
        params = {**params, seed_param: seed}
    predictor = cls()
    predictor.set_params(**params)
    return predictor


def train(
    db: Optional[Path] = typer.Option(None, "--db", help="Measurement store to learn from."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Benchmark CSV (arch + lat_<device>_ms columns), e.g. nb201.csv.gz."),
    target: Optional[str] = typer.Option(None, "--target", help="Latency column of --csv, e.g. lat_titanx_1_ms."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device in the store (default: its only device)."),
    space: Optional[str] = typer.Option(None, "--space", "-s", help="Search space (default: the one the architectures parse as)."),
    model: str = typer.Option("gbdt", "--model", "-m", help="Predictor: gbdt, mlp, linear, ops."),
    features: Optional[str] = typer.Option(None, "--features", help="onehot, onehot+counts (default) or flops."),
    param: list[str] = typer.Option([], "--param", help="Predictor parameter KEY=VALUE (repeatable), e.g. max_depth=4."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of architectures held out for validation."),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="Train on exactly N random architectures; validate on the rest."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and of the model."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the predictor into."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache (default: .hwprof-cache beside the db)."),
    node_runs: int = typer.Option(20, "--node-runs", help="ops: profiled runs per network."),
    calibrated: bool = typer.Option(False, "--calibrated", help="Store data: use reference-calibrated latencies (rows profiled with --calibrate)."),
) -> None:
    """Train a latency predictor on measured data, print held-out metrics, save it."""
    from predictors.metrics import evaluate_predictions
    from predictors.persistence import save

    _one_source(db, csv_path, target, "hwprof train")
    params = parse_params(param)
    predictor = make_predictor(model, params, seed)
    data = load_data(db, csv_path, device, target, space, calibrated)
    train_idx, val_idx = split_indices(len(data), val_fraction, seed, n_train)
    if len(val_idx) == 1:
        raise DataError(f"a validation set of 1 architecture gives no metrics; raise --val-fraction or use 0 (have {len(data)})")
    if predictor.name == OPS_MODEL:
        from predictors.context import ArchContext

        if features is not None:
            raise ConfigError("the ops predictor has fixed node features; drop --features")
        if db is None:
            raise ConfigError("the ops predictor learns from per-node profiles of exported networks; train it with --db, not --csv")
        train_archs, val_archs = [data.archs[i] for i in train_idx], [data.archs[i] for i in val_idx]
        settings = _stored_settings(db, data.device, data.space, train_archs)
        context = ArchContext(space=data.space, device=data.device, device_settings=settings,
                              cache_dir=str(cache_dir or _default_cache(db)), options={"node_runs": node_runs})
        y_train, y_val = data.latency_ms[train_idx], data.latency_ms[val_idx]
        run_with_progress(
            f"profiling and training ops on {len(train_archs)} networks",
            lambda report: predictor.fit_archs(train_archs, y_train, context=context, progress=report),
        )
        train_pred = predictor.predict_archs(train_archs, context=context)
        val_pred = predictor.predict_archs(val_archs, context=context) if len(val_archs) else None
        extra = {"space": data.space, "device_settings": settings, "node_runs": node_runs}
    else:
        if len(train_idx) < predictor.min_samples:
            raise DataError(
                f"the {model} predictor needs at least {predictor.min_samples} training architectures, "
                f"got {len(train_idx)} of {len(data)} from {data.source}"
            )
        featurizer = _featurizer(data.space, features)
        X = _transform(featurizer, data.archs, data.source)
        y_train, y_val = data.latency_ms[train_idx], data.latency_ms[val_idx]
        run_with_progress(
            f"training {model} on {len(train_idx)} architectures",
            lambda report: predictor.fit(X[train_idx], y_train, schema=featurizer.schema, progress=report),
        )
        train_pred = predictor.predict(X[train_idx])
        val_pred = predictor.predict(X[val_idx]) if len(val_idx) else None
        extra = {"space": data.space, "features": featurizer.feature_set}
    rows = [("train", evaluate_predictions(y_train, train_pred))]
    held_out = evaluate_predictions(y_val, val_pred) if val_pred is not None and len(val_idx) >= 2 else None
    if held_out is not None:
        rows.append(("validation", held_out))
    else:
        warn("no validation split (--val-fraction 0): the saved predictor carries no held-out metrics")
    console.print(metrics_table(f"{model} on {data.device} ({data.space}, {data.source})", rows))
    extra.update({
        "data": data.source,
        "split": {"seed": seed, "val_fraction": val_fraction, "n_train": int(len(train_idx)), "n_val": int(len(val_idx))},
    })  # fmt: skip
    path = save(predictor, out, device=data.device, metrics=held_out, extra=extra)
    console.print(f"saved {model} predictor for {data.device} -> {path.parent}")


# --- evaluate --------------------------------------------------------------------------------------


def _predictor_space(info: Any) -> str | None:
    return schema_space(info.schema.kind) or info.extra.get("space")


def evaluate(
    predictor_dir: Path = typer.Argument(..., help="A saved predictor directory."),
    db: Optional[Path] = typer.Option(None, "--db", help="Measurement store with the latencies to compare with."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Benchmark CSV."),
    target: Optional[str] = typer.Option(None, "--target", help="Latency column of --csv."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device in the store (default: the predictor's)."),
    other_device: bool = typer.Option(False, "--other-device", help="Allow data of another device than the predictor's."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache."),
    calibrated: bool = typer.Option(False, "--calibrated", help="Store data: use reference-calibrated latencies (rows profiled with --calibrate)."),
) -> None:
    """Accuracy of a saved predictor on measured data: RMSE, MAPE, ±5%, ±10%, Spearman, Kendall."""
    from predictors.metrics import evaluate_predictions
    from predictors.persistence import load_predictor, read_info

    _one_source(db, csv_path, target, "hwprof evaluate")
    info = read_info(predictor_dir)
    space = _predictor_space(info)
    if db is not None:
        device = device or info.device or _default_device(db)
    else:
        device = target_device(target or "")
    if not other_device and info.device is not None and device != info.device:
        raise PersistenceError(
            f"predictor {str(predictor_dir)!r} was trained for device {info.device!r}, the data is of {device!r} "
            "(pass --other-device to evaluate across devices)"
        )
    predictor = load_predictor(predictor_dir)
    data = load_data(db, csv_path, device if db is not None else None, target, space, calibrated)
    if space is not None and data.space != space:
        raise PersistenceError(f"predictor {str(predictor_dir)!r} was trained on space {space!r}, the data is of {data.space!r}")
    pred = predict_specs(predictor, data.archs, data.source, cache_dir)
    metrics = evaluate_predictions(data.latency_ms, pred)
    console.print(metrics_table(f"{info.name} predictor {predictor_dir} on {data.device} ({data.source})", [("all", metrics)]))


def _default_cache(db: Optional[Path]) -> Path:
    return (db.parent if db is not None else Path.cwd()) / ".hwprof-cache"


def _stored_settings(db: Path, device: str, space: str, archs: Sequence[str]) -> dict[str, Any]:
    """Settings of the stored measurements (the newest one among ``archs``); several settings are refused."""
    from hwprof.types import Architecture

    store = open_store(db)
    try:
        wanted = {Architecture(space, a).arch_id for a in archs}
        rows = [r for r in store.measurements(device=device, space=space, latest_only=True) if r["arch_id"] in wanted]
    finally:
        store.close()
    hashes = {r["settings_hash"] for r in rows}
    if len(hashes) > 1:
        raise ConfigError(
            f"{db} holds {device!r} measurements under {len(hashes)} different settings; "
            "the ops predictor needs one setting (profile again with one)"
        )
    return dict(rows[-1]["settings"]) if rows else {}


def predict_specs(predictor: Any, archs: Sequence[str], where: str, cache_dir: Optional[Path]) -> np.ndarray:
    """Predicted ms of architecture specs (the ops predictor exports them to ONNX first, into ``cache_dir``)."""
    from predictors.context import ArchContext

    space = schema_space(predictor.schema_.kind) or getattr(predictor, "space_", None)
    context = ArchContext(space=space, cache_dir=str(cache_dir)) if cache_dir is not None and space else None
    try:
        return predictor.predict_archs(list(archs), context=context)
    except DataError as exc:
        space = schema_space(predictor.schema_.kind) or "its"
        raise DataError(f"{where} does not hold architectures of the predictor's space {space!r}: {exc}") from None


# --- predict -------------------------------------------------------------------------------------


def predict(
    predictor_dir: Path = typer.Argument(..., help="A saved predictor directory."),
    arch: Optional[str] = typer.Option(None, "--arch", "-a", help="One architecture string."),
    archs_file: Optional[Path] = typer.Option(None, "--archs", help="File with one architecture string per line."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV output for --archs (default: stdout)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ops: exported-model cache (default: the one it was trained with)."),
) -> None:
    """Predicted latency (ms) of one architecture, or CSV `arch,predicted_ms` for a file of them."""
    from predictors.persistence import load_predictor

    if (arch is None) == (archs_file is None):
        raise ConfigError("give exactly one of --arch STRING or --archs FILE")
    if out is not None and archs_file is None:
        raise ConfigError("-o writes the CSV of --archs; with --arch the prediction is printed")
    predictor = load_predictor(predictor_dir)
    if arch is not None:
        value = float(predict_specs(predictor, [arch.strip()], "--arch", cache_dir)[0])
        console.print(f"{value:.4f} ms", highlight=False)
        return
    assert archs_file is not None
    archs = read_arch_lines(archs_file)
    pred = predict_specs(predictor, archs, str(archs_file), cache_dir)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["arch", "predicted_ms"])
    writer.writerows((a, f"{p:.6g}") for a, p in zip(archs, pred))
    if out is None:
        typer.echo(text.getvalue(), nl=False)
        return
    try:
        out.write_text(text.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    console.print(f"{len(archs)} predictions -> {out}")


# --- adapt ---------------------------------------------------------------------------------------


def _split_names(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--source-devices lists no device names: {text!r}")
    return names


class Sources:
    """The source devices of a few-shot adaptation: their latency table (when measured) and the pretrained model."""

    def __init__(self, table: Any, model: Any, space: str, description: str) -> None:
        self.table = table  # predictors.transfer.SourceLatencies, or None for a saved model
        self.model = model  # predictors.transfer.TransferModel
        self.space = space
        self.description = description

    def rows_of(self, archs: Sequence[str]) -> dict[str, int]:
        """Row of each of ``archs`` in the source table (those it holds)."""
        if self.table is None:
            return {}
        index = {a: i for i, a in enumerate(self.table.archs)}
        return {a: index[a] for a in archs if a in index}


def load_source_table(sources_csv: Optional[Path], sources_db: Optional[Path], source_devices: Optional[list[str]],
                      exclude: Optional[str], space: Optional[str]) -> tuple[Any, str, str]:
    """(SourceLatencies, space, description) from a CSV or a store, without the new device itself."""
    from hwprof.cli.predict_data import resolve_space
    from predictors.transfer import SourceLatencies

    if sources_csv is not None:
        archs, latency = read_table(sources_csv)
        space = resolve_space(archs, space)
        drop = [exclude] if exclude is not None and exclude in latency else []
        return SourceLatencies.from_columns(archs, latency, devices=source_devices, exclude=drop), space, f"csv:{sources_csv}"
    assert sources_db is not None
    store = open_store(sources_db)
    try:
        if space is None:
            spaces = sorted({r["space"] for r in store.measurements(latest_only=True)})
            if len(spaces) != 1:
                raise ConfigError(f"{sources_db} holds spaces {', '.join(spaces) or 'none'}; choose one with --space")
            space = spaces[0]
        drop = [exclude] if exclude is not None else []
        table = SourceLatencies.from_store(store, space=space, devices=source_devices, exclude=drop)
    finally:
        store.close()
    return table, space, f"db:{sources_db}"


def load_sources(
    sources_csv: Optional[Path],
    sources_db: Optional[Path],
    sources_model: Optional[Path],
    source_devices: Optional[list[str]],
    new_device: Optional[str],
    space: Optional[str],
    features: Optional[str],
    method: Optional[str],
    params: dict[str, Any],
    seed: int,
) -> Sources:
    """Load or pretrain the transfer model of ``method`` (default: a saved model's own method, else nnls)."""
    from predictors.transfer import DEFAULT_METHOD, get_transfer_method, load_transfer_model, pretrain

    given = [p for p in (sources_csv, sources_db, sources_model) if p is not None]
    if len(given) != 1:
        raise ConfigError("give the source devices with exactly one of --sources-csv FILE, --sources-db DB, --sources-model DIR")
    if new_device is not None and source_devices is not None and new_device in source_devices:
        raise ConfigError(f"the new device {new_device!r} cannot be one of its own --source-devices")
    if sources_model is not None:
        for flag, value in (("--source-devices", source_devices), ("--features", features), ("--param", params or None)):
            if value is not None:
                raise ConfigError(f"{flag} applies when pretraining on a source table; {sources_model} is already pretrained")
        model = load_transfer_model(sources_model)
        if method is not None and method != model.method:
            raise ConfigError(f"{sources_model} is a pretrained {model.method!r} model; it cannot adapt with --method {method!r}")
        model_space = schema_space(model.schema.kind) or ""
        if space is not None and model_space and space != model_space:
            raise PersistenceError(f"transfer model {str(sources_model)!r} is for space {model_space!r}, not {space!r}")
        if new_device is not None and new_device in model.devices:
            warn(f"{new_device!r} is one of the model's source devices; the result says nothing about few-shot accuracy")
        return Sources(None, model, model_space, f"model:{sources_model}")
    method = method or DEFAULT_METHOD
    get_transfer_method(method)  # unknown names fail before any data is read
    table, space, where = load_source_table(sources_csv, sources_db, source_devices, new_device, space)
    feature_set = _featurizer(space, features).feature_set
    model = run_with_progress(
        f"pretraining {method} on {len(table.devices)} source devices",
        lambda report: pretrain(method, table, feature_set=feature_set, space=space, seed=seed, progress=report, **params),
    )
    return Sources(table, model, space, where)


def _display_index(spec: str, rows: dict[str, int], space_name: str) -> str:
    """Where to find an architecture: its source-table row, else its benchmark index when the space has one."""
    from hwprof import registry

    if spec in rows:
        return str(rows[spec])
    space = registry.get_space(space_name)
    if hasattr(space, "index"):
        try:
            return str(space.index(space.parse(spec)))
        except (HwprofError, LookupError):
            return "-"
    return "-"


def _pool_rows(sources: Sources, pool_file: Optional[Path]) -> Optional[list[int]]:
    if pool_file is None:
        return None
    archs = read_arch_lines(pool_file)
    rows = sources.rows_of(archs)
    missing = [a for a in archs if a not in rows]
    if missing:
        raise DataError(f"{len(missing)} architecture(s) of {pool_file} are not in the source table (e.g. {missing[0]!r})")
    return sorted(set(rows.values()))


def suggest_archs_for(sources: Sources, k: int, seed: int, select: str, pool_rows: Optional[Sequence[int]]) -> list[str]:
    """The K architectures to measure: the model's references when it has them, else chosen over the source table."""
    from predictors.transfer import suggest_archs

    if sources.model is not None and sources.model.reference_archs:
        return suggest_archs(sources.model, k)
    if sources.table is None:
        return suggest_archs(sources.model, k)  # explains that a table is needed
    return suggest_archs(sources.table, k, seed=seed, pool=pool_rows, method=select)


def suggest_cmd(sources: Sources, k: int, seed: int, select: str, pool_file: Optional[Path], out: Optional[Path]) -> None:
    chosen = suggest_archs_for(sources, _k(k), seed, select, _pool_rows(sources, pool_file))
    rows = sources.rows_of(chosen)
    how = "the model's reference architectures" if sources.model is not None and sources.model.reference_archs else select
    n_dev = len(sources.model.devices) if sources.model is not None else len(sources.table.devices)
    table = Table(title=f"measure these {len(chosen)} architectures on the new device ({how}, {n_dev} source devices)")
    table.add_column("#", justify="right")
    table.add_column("index", justify="right")
    table.add_column("architecture", overflow="fold")
    for n, spec in enumerate(chosen, start=1):
        table.add_row(str(n), _display_index(spec, rows, sources.space), spec)
    console.print(table)
    if out is not None:
        try:
            out.write_text("".join(spec + "\n" for spec in chosen), encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
        console.print(f"{len(chosen)} architectures -> {out} (measure them with `hwprof profile --archs {out}`)")


def _k(k: int) -> int:
    if k < 1:
        raise ConfigError(f"-k must be a positive number of architectures, got {k}")
    return k


def choose_samples(sources: Sources, data: LatencyData, k: int, seed: int, select: str) -> np.ndarray:
    """Row indices into ``data`` of the K architectures to adapt from (the rest is held out).

    The model's references when all are measured; else chosen like ``--suggest`` among the
    measured architectures the source table holds; else a seeded random choice.
    """
    from predictors.transfer import suggest_samples

    position = {a: i for i, a in enumerate(data.archs)}
    refs = sources.model.reference_archs if sources.model is not None else ()
    if refs and all(r in position for r in refs):
        return np.array(sorted(position[r] for r in refs))
    rows = sources.rows_of(data.archs)
    if len(rows) >= k:
        picked = suggest_samples(k, sources.table.latency_ms, seed, pool=sorted(rows.values()), method=select)
        by_row = {r: a for a, r in rows.items()}
        return np.array(sorted(position[by_row[int(r)]] for r in picked))
    warn(f"the source table holds only {len(rows)} of the {len(data)} measured architectures; choosing {k} at random")
    return np.sort(np.random.default_rng(seed).choice(len(data), size=k, replace=False))


def adapt(
    db: Optional[Path] = typer.Option(None, "--db", help="Store with measurements of the new device (K are used, the rest test)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="The new device (its name in --db; a label with --samples)."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="CSV rows arch,latency_ms measured on the new device."),
    k: int = typer.Option(10, "-k", help="Number of measured architectures to adapt from (or to suggest)."),
    sources_csv: Optional[Path] = typer.Option(None, "--sources-csv", help="Source devices as a benchmark CSV (e.g. nb201.csv.gz)."),
    source_devices: Optional[str] = typer.Option(None, "--source-devices", help="Comma-separated source devices (default: all but the new one)."),
    sources_db: Optional[Path] = typer.Option(None, "--sources-db", help="Source devices from a store."),
    sources_model: Optional[Path] = typer.Option(None, "--sources-model", help="A pretrained transfer model (see --save-sources)."),
    save_sources: Optional[Path] = typer.Option(None, "--save-sources", help="Save the pretrained transfer model to DIR for --sources-model."),
    method: Optional[str] = typer.Option(None, "--method", help="Few-shot method: nnls (default), ridge, embedding, finetune."),
    param: list[str] = typer.Option([], "--param", help="Method setting KEY=VALUE for pretraining (repeatable), e.g. steps=2000."),
    space: Optional[str] = typer.Option(None, "--space", "-s", help="Search space (default: inferred)."),
    features: Optional[str] = typer.Option(None, "--features", help="Features of the transfer model (default onehot+counts)."),
    suggest: bool = typer.Option(False, "--suggest", help="Only print which K architectures to measure on the new device."),
    select: str = typer.Option("farthest", "--select", help="How to choose the K architectures: farthest, kmeans++, quantile, random."),
    pool: Optional[Path] = typer.Option(None, "--pool", help="--suggest: choose among these architectures of the source table."),
    seed: int = typer.Option(0, "--seed"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Save the adapted predictor to DIR (--suggest: the list to FILE)."),
) -> None:
    """Few-shot latency predictor for a new device from K measurements and many source devices."""
    from predictors.metrics import evaluate_predictions
    from predictors.persistence import save

    if suggest and (db is not None or samples is not None):
        raise ConfigError("--suggest chooses what to measure; it takes no --db or --samples")
    if not suggest and (db is None) == (samples is None):
        raise ConfigError("give the new device's measurements with exactly one of --db STORE --device NAME or --samples FILE")
    if db is not None and device is None:
        raise ConfigError("--db needs --device, the new device's name in the store")
    params = parse_params(param)
    if suggest and (method or "") == "embedding" and sources_model is None and "n_refs" not in params:
        params["n_refs"] = _k(k)  # the references are what to measure: as many as asked for
    sources = load_sources(sources_csv, sources_db, sources_model, _split_names(source_devices), device, space,
                           features, method, params, seed)
    if save_sources is not None:
        path = sources.model.save(save_sources)
        console.print(f"pretrained {sources.model.method} model ({len(sources.model.devices)} source devices) -> {path.parent}")
    if suggest:
        suggest_cmd(sources, k, seed, select, pool, out)
        return
    space = sources.space or space
    data = from_store(db, device, space) if db is not None else read_samples(samples, space, device or samples.stem)
    if sources.space and data.space != sources.space:
        raise DataError(f"the new device's architectures are of space {data.space!r}, the sources' of {sources.space!r}")
    if db is not None:
        if _k(k) >= len(data):
            raise DataError(f"-k {k} leaves no test architectures: {data.device} has {len(data)} in {db}")
        chosen = choose_samples(sources, data, k, seed, select)
        fit_data, test_data = data.subset(chosen), data.subset(np.setdiff1d(np.arange(len(data)), chosen))
    else:
        fit_data, test_data = data, None
    y = check_latencies(fit_data.archs, fit_data.latency_ms, fit_data.source)
    adapted = run_with_progress(
        f"adapting ({sources.model.method}) from {len(y)} samples",
        lambda report: sources.model.adapt(list(fit_data.archs), y, progress=report),
    )
    rows = [("samples", evaluate_predictions(y, adapted.predict_archs(list(fit_data.archs))))] if len(y) >= 2 else []
    held_out = None
    if test_data is not None and len(test_data) >= 2:
        held_out = evaluate_predictions(test_data.latency_ms, adapted.predict_archs(list(test_data.archs)))
        rows.append(("held out", held_out))
    console.print(metrics_table(
        f"{sources.model.method} from {len(y)} samples of {data.device}, "
        f"{len(sources.model.devices)} source devices ({sources.description})", rows,
    ))  # fmt: skip
    weights = getattr(adapted, "source_weights_", None) or {}
    top = [f"{d} {w:+.3f}" for d, w in sorted(weights.items(), key=lambda kv: -abs(kv[1]))[:5] if w != 0]
    if top:
        console.print("main sources: " + ", ".join(top), highlight=False)
    if out is not None:
        extra = {
            "space": data.space,
            "transfer": {
                "method": sources.model.method,
                "sources": sources.description,
                "source_devices": list(sources.model.devices),
                "samples": list(fit_data.archs),
                "select": "given" if db is None else select,
                "source_weights": weights,
            },
        }
        path = save(adapted, out, device=data.device, metrics=held_out, extra=extra)
        console.print(f"saved adapted {adapted.name} predictor for {data.device} -> {path.parent}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("adapt")(adapt)
