"""`hwprof modnas train|front|pick|refs`: one hypernetwork search, then any device and trade-off on demand.

Thin: options -> ``nas.search.modnas`` calls -> rich output. ``hwprof search --algo modnas``
reaches the same training through the search registry (``nas.search.modnas.algorithm``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hwprof.cli.common import console, parse_device_list, warn
from hwprof.cli.options import parse_key_values
from hwprof.cli.progress import ProgressDisplay
from hwprof.errors import ConfigError

app = typer.Typer(
    name="modnas",
    help="MODNAS: train one hypernetwork for many devices, then get the accuracy/latency front of any device.",
    no_args_is_help=True,
)

DIR_ARG = typer.Argument(..., help="Directory of a trained hypernetwork (from `hwprof modnas train -o DIR`).")
DEVICE_HELP = ("Device: a training device, a column of the NB201 table, any name together with --ref-latencies, "
               "or with --db a device profiled into that store.")
REF_HELP = "CSV of arch,latency_ms rows with the device's latency on every reference architecture (see `hwprof modnas refs`)."
DB_HELP = "Store with the device's measurements: its reference latencies are read from there (see --profile-missing)."
SET_HELP = "With --db: use the stored measurements with this device setting KEY=VALUE (repeatable; default: the setting with the most networks)."
PRECISION_HELP = "With --db: use the stored measurements of this precision (fp32, int8; default: the setting with the most networks)."
PROFILE_MISSING_HELP = "Measure the reference networks the store lacks first (through the profiler, stored, resumable)."


def _command() -> str:
    import shlex
    import sys

    return shlex.join(["hwprof", *sys.argv[1:]])


def _profile_progress(display: ProgressDisplay, phase: str):
    return lambda done, total: display.update(phase, done, total)


def parse_preference(text: str) -> list[float]:
    """'0.3' (accuracy weight) or '0.3,0.7' (accuracy, latency) -> floats; checked on the simplex by the library."""
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--preference {text!r} is not understood; expected the accuracy weight (e.g. 0.3) or 'ACC,LAT' (e.g. 0.3,0.7)"
        ) from None


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (resumes an unfinished run there)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Comma-separated training devices (default: every table column)."),
    mode: str = typer.Option("surrogate", "--mode", help="surrogate (accuracy surrogate fitted on the table) | supernet (digits)."),
    dataset: str = typer.Option("cifar10", "--dataset", help="Accuracy column of the table (surrogate mode)."),
    table: Optional[Path] = typer.Option(None, "--table", help="NAS-Bench-201 CSV (default: the bundled copy)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Hypernetwork steps (default: the configuration's, see docs/modnas.md)."),
    combine: Optional[str] = typer.Option(None, "--combine", help="mgd (min-norm point of the task gradients, the default) | linear (their mean)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="reinmax | gdas (default: the configuration's, see docs/modnas.md)."),
    scalarisation: Optional[str] = typer.Option(
        None, "--scalarisation", help="chebyshev | weighted_sum: how a preference weighs the objectives (default: the mode's, see docs/modnas.md)."),
    seed: int = typer.Option(0, "--seed"),
    store_devices: Optional[str] = typer.Option(
        None, "--store-devices", help="Comma-separated devices profiled into --db, trained on beside the table's (see docs/modnas.md)."),
    db: Optional[Path] = typer.Option(None, "--db", help="Store that --store-devices are read from."),
    profile_missing: bool = typer.Option(False, "--profile-missing", help="Measure the reference networks a store device lacks first (stored, resumable)."),
) -> None:
    """Train a hypernetwork over many devices (resumable; deterministic for a seed)."""
    from nas.search.modnas import ModnasConfig, train_modnas
    from nas.search.modnas.algorithm import progress_reporter, training_summary

    if seed < 0:  # named by its option here; the library would say "seed must be an integer >= 0"
        raise ConfigError(f"--seed {seed} is not a non-negative integer; expected a seed like 0 or 42")
    given = {k: v for k, v in (("steps", steps), ("combine", combine), ("sampler", sampler), ("scalarisation", scalarisation))
             if v is not None}
    stored = parse_device_list(store_devices, "--store-devices")
    if stored is None and (db is not None or profile_missing):
        raise ConfigError("--db and --profile-missing apply to --store-devices; name the profiled devices there")
    config = ModnasConfig.create(
        str(out), mode, dataset=dataset, table=str(table) if table is not None else None,
        devices=parse_device_list(devices), seed=seed, store_devices=stored, store_db=str(db) if db is not None else None,
        **given,
    )
    with ProgressDisplay() as display:
        out = train_modnas(config, progress_reporter(display.update), profile_missing=profile_missing)
    for line in training_summary(out):
        console.print(line, markup=False)


def _load(directory: Path):
    from nas.search.modnas import ModnasModel

    return ModnasModel.load(directory)


def _device(model, device: Optional[str], ref_latencies: Optional[Path], db: Optional[Path] = None,
            set_: tuple[str, ...] = (), precision: Optional[str] = None, profile_missing: bool = False):
    """(embedding, reference latencies or None, the store device or None)."""
    if db is None:
        if set_ or precision is not None or profile_missing:
            raise ConfigError("--set, --precision and --profile-missing choose measurements in a store; give --db STORE")
        if device is None and ref_latencies is None:
            raise ConfigError("give --device NAME (a known device) or --ref-latencies FILE (any device)")
        emb, lat = model.embedding(device=device, ref_latencies_file=ref_latencies)
        return emb, lat, None
    from nas.search.modnas.store_devices import read_store_device
    from nas.search.modnas.store_front import store_device_embedding

    if ref_latencies is not None or device is None:
        raise ConfigError("with --db give the profiled device with --device NAME (and no --ref-latencies)")
    target = read_store_device(db, device, parse_key_values(set_, "--set"), precision)
    with ProgressDisplay() as display:
        emb, lat, target = store_device_embedding(
            model, target, profile_missing, on_progress=_profile_progress(display, f"profiling references on {device}"),
            command=_command(),
        )
    if target.note:
        warn(target.note)
    return emb, lat, target


def _fmt(x: Optional[float], digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _entries_table(model, entries, title: str) -> Table:
    t = Table(title=title)
    t.add_column("ray", justify="right")
    t.add_column("pref. accuracy", justify="right")
    t.add_column("pref. latency", justify="right")
    t.add_column("predicted latency ms", justify="right")
    if model.accuracy is not None:
        t.add_column("surrogate error %", justify="right")
    t.add_column("architecture", overflow="fold")
    for i, e in enumerate(entries):
        lat = _fmt(e.predicted_latency_ms) if e.predicted_latency_ms is not None else f"x{e.predicted_latency_rel:.3g} ref"
        row = [str(i), f"{e.preference[0]:.3f}", f"{e.preference[1]:.3f}", lat]
        if model.accuracy is not None:
            row.append(_fmt(e.surrogate_error_pct))
        t.add_row(*row, e.spec)
    return t


@app.command("front")
def front(
    directory: Path = DIR_ARG,
    device: Optional[str] = typer.Option(None, "--device", "-d", help=DEVICE_HELP),
    ref_latencies: Optional[Path] = typer.Option(None, "--ref-latencies", help=REF_HELP),
    rays: int = typer.Option(24, "--rays", help="Number of preference rays."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the front as JSON here (an existing file needs --overwrite)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
    db: Optional[Path] = typer.Option(None, "--db", help=DB_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP),
    profile_missing: bool = typer.Option(False, "--profile-missing", help=PROFILE_MISSING_HELP),
    measure: bool = typer.Option(
        False, "--measure", help="With --db: measure the front's networks on the device (stored; already stored ones are reused) "
        "and compare the measured front's hypervolume with the predicted one's."),
) -> None:
    """One architecture per preference ray for a device (zero-shot for a device given by its reference latencies)."""
    from hwprof.outputs import output_file, write_atomic

    target_json = None if json_out is None else output_file(json_out, overwrite=overwrite, option="--json")
    model = _load(directory)
    if measure and db is None:
        raise ConfigError("--measure measures on a profiled device and stores the result; give --db STORE --device NAME")
    emb, lat, target = _device(model, device, ref_latencies, db, tuple(set_), precision, profile_missing)
    entries = model.front(emb, lat, rays)
    name = device or (ref_latencies.name if ref_latencies else "")
    distinct = len({e.spec for e in entries})
    console.print(_entries_table(model, entries, f"MODNAS front for {name}: {len(entries)} rays, {distinct} distinct architectures"))
    console.print(f"accuracy objective: {model.accuracy_source}", highlight=False, soft_wrap=True)
    if target is not None:
        console.print(f"reference latencies: {len(lat)} networks of {name} ({target.settings_text}) in {db}",
                      highlight=False, soft_wrap=True, markup=False)
    check = None
    if measure:
        from nas.search.modnas.store_front import check_front

        with ProgressDisplay() as display:
            check = check_front(model, entries, emb, target, on_progress=_profile_progress(display, f"measuring the front on {name}"),
                                command=_command())
        _print_check(check)
    if target_json is not None:
        data = {"device": name, "accuracy_source": model.accuracy_source, "mode": model.mode,
                "embedding": [float(x) for x in emb], "front": [e.to_json() for e in entries]}
        if target is not None:
            data["store"] = target.to_json()
        if check is not None:
            data["check"] = check.to_json()
        write_atomic(target_json, json.dumps(data, indent=1) + "\n")
        console.print(f"saved {json_out}", markup=False, highlight=False)


def _print_check(check) -> None:
    t = Table(title=f"the front's {len(check.networks)} networks measured on {check.device} "
                    f"({check.n_profiled} now, {len(check.networks) - check.n_profiled} already stored)")
    for col in ("pref. accuracy", "predicted ms", "measured ms", "measured / predicted", "predicted error %", "table error %"):
        t.add_column(col, justify="right")
    t.add_column("architecture", overflow="fold")
    for n in check.networks:
        t.add_row(f"{n.preference[0]:.3f}", _fmt(n.predicted_latency_ms), _fmt(n.measured_latency_ms), f"{n.latency_ratio:.3f}",
                  _fmt(n.predicted_error_pct), _fmt(n.table_error_pct), n.spec)
    console.print(t)
    (elo, ehi), (llo, lhi) = check.error_bounds_pct, check.latency_bounds_ms
    console.print(
        f"hypervolume: predicted {check.hv_predicted:.4f}, measured {check.hv_measured:.4f} (ratio {check.hv_ratio:.3f}); "
        f"reference point [1, 1] after scaling error {elo:.2f}-{ehi:.2f} % and latency {llo:.4g}-{lhi:.4g} ms",
        highlight=False, soft_wrap=True, markup=False,
    )
    console.print(
        f"latency: Spearman {check.latency_spearman:.3f} between predicted and measured, median |error| "
        f"{check.median_abs_latency_error:.1%}; predicted error from the {check.predicted_error_source}, measured error "
        "from the NB201 table", highlight=False, soft_wrap=True, markup=False,
    )


@app.command("pick")
def pick(
    directory: Path = DIR_ARG,
    preference: str = typer.Option(..., "--preference", "-p", help="Accuracy weight in [0, 1] (e.g. 0.3), or 'ACC,LAT' summing to 1."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help=DEVICE_HELP),
    ref_latencies: Optional[Path] = typer.Option(None, "--ref-latencies", help=REF_HELP),
    db: Optional[Path] = typer.Option(None, "--db", help=DB_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP),
    profile_missing: bool = typer.Option(False, "--profile-missing", help=PROFILE_MISSING_HELP),
) -> None:
    """The architecture for one device and one preference."""
    model = _load(directory)
    emb, lat, _ = _device(model, device, ref_latencies, db, tuple(set_), precision, profile_missing)
    e = model.pick(emb, parse_preference(preference), lat)
    console.print(e.spec, highlight=False, soft_wrap=True)
    details = [f"preference accuracy {e.preference[0]:.3f} / latency {e.preference[1]:.3f}"]
    if e.predicted_latency_ms is not None:
        details.append(f"predicted latency {e.predicted_latency_ms:.4g} ms")
    if e.surrogate_error_pct is not None:
        details.append(f"surrogate error {e.surrogate_error_pct:.4g} % (a model of the table, not a measurement)")
    console.print("; ".join(details), style="dim", highlight=False, soft_wrap=True)


@app.command("refs")
def refs(
    directory: Optional[Path] = typer.Argument(
        None, help="A trained hypernetwork's directory (default: the set a run on every table device uses)."
    ),
    table: Optional[Path] = typer.Option(None, "--table", help="NAS-Bench-201 CSV when no DIR is given (default: the bundled copy)."),
    csv_out: Optional[Path] = typer.Option(None, "--template", help="Write an arch,latency_ms CSV to fill in (latency left empty)."),
) -> None:
    """The reference architectures whose latencies a new device must supply (for --ref-latencies)."""
    if directory is not None:
        ref_set = _load(directory).refs
    else:
        from nas.search.modnas.refs import nb201_references
        from nas.tabular import load_nb201

        ref_set = nb201_references(load_nb201(table))
    t = Table(title=f"{len(ref_set)} reference architectures ({ref_set.space})")
    t.add_column("index", justify="right")
    t.add_column("architecture", overflow="fold")
    for i, s in enumerate(ref_set.specs):
        t.add_row(str(i), s)
    console.print(t)
    console.print(f"chosen by {ref_set.method}", style="dim", highlight=False)
    if directory is None:
        console.print("a hypernetwork trained on other devices has its own set: pass its DIR", style="dim", highlight=False)
    if csv_out is not None:
        csv_out.parent.mkdir(parents=True, exist_ok=True)
        csv_out.write_text("arch,latency_ms\n" + "".join(f"{s},\n" for s in ref_set.specs), encoding="utf-8")
        console.print(f"saved {csv_out}; fill in the latency_ms column and pass it with --ref-latencies")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="modnas")
