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

from hwprof.cli.common import console, parse_device_list
from hwprof.cli.progress import ProgressDisplay
from hwprof.errors import ConfigError

app = typer.Typer(
    name="modnas",
    help="MODNAS: train one hypernetwork for many devices, then get the accuracy/latency front of any device.",
    no_args_is_help=True,
)

DIR_ARG = typer.Argument(..., help="Directory of a trained hypernetwork (from `hwprof modnas train -o DIR`).")
DEVICE_HELP = "Device: a training device, a column of the NB201 table, or any name together with --ref-latencies."
REF_HELP = "CSV of arch,latency_ms rows with the device's latency on every reference architecture (see `hwprof modnas refs`)."


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
) -> None:
    """Train a hypernetwork over many devices (resumable; deterministic for a seed)."""
    from nas.search.modnas import ModnasConfig, train_modnas
    from nas.search.modnas.algorithm import progress_reporter, training_summary

    given = {k: v for k, v in (("steps", steps), ("combine", combine), ("sampler", sampler), ("scalarisation", scalarisation))
             if v is not None}
    config = ModnasConfig.create(
        str(out), mode, dataset=dataset, table=str(table) if table is not None else None,
        devices=parse_device_list(devices), seed=seed, **given,
    )
    with ProgressDisplay() as display:
        out = train_modnas(config, progress_reporter(display.update))
    for line in training_summary(out):
        console.print(line, markup=False)


def _load(directory: Path):
    from nas.search.modnas import ModnasModel

    return ModnasModel.load(directory)


def _device(model, device: Optional[str], ref_latencies: Optional[Path]):
    if device is None and ref_latencies is None:
        raise ConfigError("give --device NAME (a known device) or --ref-latencies FILE (any device)")
    return model.embedding(device=device, ref_latencies_file=ref_latencies)


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
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the front as JSON here."),
) -> None:
    """One architecture per preference ray for a device (zero-shot for a device given by its reference latencies)."""
    model = _load(directory)
    emb, lat = _device(model, device, ref_latencies)
    entries = model.front(emb, lat, rays)
    name = device or (ref_latencies.name if ref_latencies else "")
    distinct = len({e.spec for e in entries})
    console.print(_entries_table(model, entries, f"MODNAS front for {name}: {len(entries)} rays, {distinct} distinct architectures"))
    console.print(f"accuracy objective: {model.accuracy_source}", highlight=False, soft_wrap=True)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({
            "device": name, "accuracy_source": model.accuracy_source, "mode": model.mode,
            "embedding": [float(x) for x in emb], "front": [e.to_json() for e in entries],
        }, indent=1) + "\n", encoding="utf-8")
        console.print(f"saved {json_out}")


@app.command("pick")
def pick(
    directory: Path = DIR_ARG,
    preference: str = typer.Option(..., "--preference", "-p", help="Accuracy weight in [0, 1] (e.g. 0.3), or 'ACC,LAT' summing to 1."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help=DEVICE_HELP),
    ref_latencies: Optional[Path] = typer.Option(None, "--ref-latencies", help=REF_HELP),
) -> None:
    """The architecture for one device and one preference."""
    model = _load(directory)
    emb, lat = _device(model, device, ref_latencies)
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
