"""`hwprof devices`, `hwprof profile`, `hwprof measure`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.table import Table

from hwprof import registry
from hwprof.cli.common import CommandInterrupted, console, warn
from hwprof.cli.options import parse_key_values
from hwprof.cli.progress import ProgressDisplay
from hwprof.errors import ConfigError, HwprofError, first_line
from hwprof.meters import get_meter
from hwprof.profiling import (
    ProfileInterrupted, ProfileSummary, Profiler, ProgressEvent, dedupe, parse_indices, read_arch_file,
)
from hwprof.protocol import ProtocolSettings, instability_note
from hwprof.store import Store


MAX_UNSTABLE_SHOWN = 5  # a noisy machine flags hundreds; the store keeps every flag
# The name hwprof/cli/predict_cmd.py imports for its --param; the one parser is hwprof.cli.options.parse_key_values.


def resolve_device(name: str, settings: dict, config: Optional[Path] = None):
    """(device, runner): a device configured in hwprof.toml (measured over SSH) or a registered local adapter."""
    from hwprof.config import remote_targets

    targets = remote_targets(config)
    if name in targets:
        from dataclasses import replace

        from hwprof.remote import RemoteDevice, SshRunner

        target = replace(targets[name], settings={**targets[name].settings, **settings})
        return RemoteDevice(target), SshRunner(target)
    return registry.get_device(name, **settings), None


def devices(
    config: Optional[Path] = typer.Option(None, "--config", help="Project file with remote devices (default: $HWPROF_CONFIG or ./hwprof.toml)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Also list the devices the nodes of this Ray cluster advertise ('auto' or HOST:PORT)."),
) -> None:
    """List device adapters (formats, precisions, usable here or why not), configured remote devices, a Ray fleet's devices and energy meters."""
    from rich.markup import escape

    from hwprof.catalog import device_statuses
    from hwprof.config import config_path, remote_targets
    from hwprof.meters import meter_status
    from hwprof.remote import remote_status

    fleet = None
    if ray is not None:  # asked first: a cluster that does not answer is one line before any table
        from hwprof.fleet import advertised_devices

        fleet = advertised_devices(ray)
    table = Table(title="hwprof devices")
    for col in ("device", "formats", "precisions", "usable", "details"):
        table.add_column(col)
    for st in device_statuses():
        notes = [st.detail] + [f"export {e.name} ({e.format}): {e.problem}" for e in st.exporters if not e.usable]
        if not any(e.usable for e in st.exporters) and st.formats:
            notes.append(f"no usable exporter writes {', '.join(st.formats)}")
        if not st.usable:
            usable = "[red]no[/red]"
        elif st.profilable_precisions:
            usable = "[green]yes[/green]"
        else:
            usable = "[yellow]measure files only[/yellow]"
        table.add_row(st.name, ", ".join(st.formats), ", ".join(st.precisions), usable, escape("; ".join(notes)))
    console.print(table)
    targets = remote_targets(config)
    if targets:
        remote = Table(title=f"remote devices ({escape(str(config_path(config)))})")
        for col in ("device", "where", "adapter", "usable", "details"):
            remote.add_column(col)
        for name, t in targets.items():
            ok, why = remote_status(t)
            remote.add_row(name, f"{t.destination}:{t.port}", t.device, "[green]yes[/green]" if ok else "[red]no[/red]", escape(why))
        console.print(remote)
    if fleet is not None:
        nodes = Table(title=f"Ray fleet at {ray} (hwprof profile --ray {ray} --device NAME)")
        for col in ("device", "nodes", "where"):
            nodes.add_column(col)
        for name, where in sorted(fleet.items()):
            nodes.add_row(name, str(len(where)), escape(", ".join(where)))
        if not fleet:
            nodes.add_row("-", "0", "no live node advertises a device: start one with `hwprof worker --devices NAME --address ADDRESS`")
        console.print(nodes)
    meters = Table(title="energy meters (hwprof profile --meter NAME)")
    for col in ("meter", "usable", "details"):
        meters.add_column(col)
    for name, ok, why in meter_status():
        meters.add_row(name, "[green]yes[/green]" if ok else "[red]no[/red]", escape(why))
    console.print(meters)


def profile(
    ctx: typer.Context,
    device: str = typer.Option("ort-cpu", "--device", "-d", help="Device adapter (see `hwprof devices`)."),
    space: str = typer.Option("nb201", "--space", "-s", help="Search space."),
    n: int = typer.Option(20, "--num", "-n", help="Number of random architectures (ignored with --archs/--indices)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random sample."),
    db: Path = typer.Option(Path("hwprof.db"), "--db", help="SQLite store (created if missing)."),
    archs_file: Optional[Path] = typer.Option(None, "--archs", help="File with one architecture string per line."),
    indices: Optional[str] = typer.Option(None, "--indices", help="Benchmark indices, e.g. 0-99,120 (spaces with an index)."),
    again: bool = typer.Option(False, "--again", help="Re-measure architectures already stored for this device+settings."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Intra-op threads (device setting intra_op_threads)."),
    set_: list[str] = typer.Option([], "--set", help="Device setting KEY=VALUE (repeatable)."),
    target_ci: float = typer.Option(0.01, "--target-ci", help="Stop when the 95% CI half-width of the primary estimate's quantile <= this fraction of it."),
    min_runs: int = typer.Option(10, "--min-runs"),
    max_runs: int = typer.Option(1000, "--max-runs"),
    max_time_s: float = typer.Option(10.0, "--max-time-s", help="Cap on timed runs per model (seconds)."),
    rounds: int = typer.Option(5, "--rounds", help="Visit each model at least this many times, interleaved with its group (1 = one block per model, pyperf-style)."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", help="Visit a model at most this many times while its estimate is not stable [default: 10, or --rounds when higher]."),
    visit_runs: int = typer.Option(20, "--visit-runs", help="Timed runs per visit (interleaved)."),
    interleave: int = typer.Option(50, "--interleave", help="Models measured together, in alternating rounds."),
    calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Also time the space's calibration models in every group and store calibrated latencies (needs --rounds > 1: skipped at --rounds 1 unless --calibrate is given, which is then refused)."),
    references: int = typer.Option(5, "--references", help="Calibration models timed with every group (with --calibrate)."),
    drift_every: int = typer.Option(50, "--drift-every", help="Re-measure a reference model every N models (0 = off)."),
    drift_threshold: float = typer.Option(0.05, "--drift-threshold", help="Warn when the reference drifts more than this fraction."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Exported-model cache (default: .hwprof-cache beside the db)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Project file with remote devices (default: $HWPROF_CONFIG or ./hwprof.toml)."),
    precision: str = typer.Option("fp32", "--precision", help="Precision of the exported models: fp32 or int8 (post-training static quantization; devices that support it, see `hwprof devices`)."),
    meter: Optional[str] = typer.Option(None, "--meter", help="Energy meter read around the timed runs (rapl, nvml, tegrastats, csv; see `hwprof devices`): stores energy_mj per inference."),
    meter_set: list[str] = typer.Option([], "--meter-set", help="Meter setting KEY=VALUE (repeatable), e.g. path=power.csv for --meter csv."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Profile on a Ray fleet: 'auto' (the cluster this machine belongs to) or HOST:PORT; --device names the device the nodes advertise (dev:NAME, see `hwprof worker`). Groups run in parallel, one per node; no drift checks (each group's calibration models record reference_ms)."),
) -> None:
    """Measure the real latency of architectures on a device into the store (resumable).

    Ctrl-C (or SIGTERM/SIGHUP) keeps every completed measurement and, of the
    group in progress, every network that completed its minimum rounds
    (stop reason ``interrupted``); the run is marked interrupted and the same
    command resumes with the rest. Refused while another live process profiles
    the same device with the same settings into the same store.
    """
    settings = parse_key_values(set_, "--set")
    if threads is not None:
        settings["intra_op_threads"] = threads
    if n < 1 and archs_file is None and indices is None:
        raise ConfigError(f"-n must be >= 1, got {n}")
    protocol = ProtocolSettings(
        target_rel_ci=target_ci, min_runs=min_runs, max_runs=max_runs, max_time_s=max_time_s, rounds=rounds,
        # an explicit --max-rounds below --rounds is refused by validate(); only the default follows --rounds up
        max_rounds=max(ProtocolSettings.max_rounds, rounds) if max_rounds is None else max_rounds, visit_runs=visit_runs,
    )
    protocol.validate()
    if calibrate and rounds < 2 and _given(ctx, "calibrate"):
        raise ConfigError(f"--calibrate needs --rounds 2 or more (calibration models are timed in every round), got --rounds {rounds}")
    if meter is None and meter_set:
        raise ConfigError("--meter-set needs --meter NAME")
    if ray is not None:
        from hwprof.fleet import open_fleet

        dev, runner = open_fleet(device, settings, ray)
    else:
        dev, runner = resolve_device(device, settings, config)
    store = None
    try:
        dev.check_precision(precision)  # refused before anything is exported, measured or stored
        if meter is not None:  # checked now: a meter that cannot work fails before anything is measured or stored
            _attach_meter(dev, runner, device, meter, parse_key_values(meter_set, "--meter-set"))
        sp = registry.get_space(space)
        archs = _select(sp, n, seed, archs_file, indices)
        store = Store(db)
        store.check_integrity()  # a damaged store is one line before anything is measured
        profiler = Profiler(
            dev, sp, store, protocol=protocol, cache_dir=cache_dir,
            command=shlex.join(["hwprof", *sys.argv[1:]]), drift_every=drift_every, drift_threshold_rel=drift_threshold,
            interleave=interleave, calibrate=calibrate, references=references, runner=runner, precision=precision,
        )
        fleet = f", {len(runner.nodes())} Ray node(s) advertising {runner.resource}" if hasattr(runner, "nodes") else ""
        console.print(
            f"profiling {len(archs)} {space} architectures ({precision}) on [bold]{device}[/bold] "
            f"({profiler.info.cpu_model}, {profiler.info.runtime} {profiler.info.runtime_version}{fleet}) -> {db}"
        )
        try:
            summary = _run_with_progress(profiler, archs, again)
        except ProfileInterrupted as exc:
            raise CommandInterrupted(_kept_line(exc.summary, device, db)) from exc
    finally:
        if store is not None:
            store.close()
        if hasattr(runner, "close"):  # a fleet runner leaves the Ray session it opened
            runner.close()
    _print_summary(summary, device)


def _given(ctx: typer.Context, param: str) -> bool:
    """Whether the command line set ``param`` (not its default, nor a project file's [defaults])."""
    source = ctx.get_parameter_source(param)
    return source is not None and source.name == "COMMANDLINE"  # click's enum, vendored by newer typer


def _kept_line(summary: ProfileSummary, device: str, db: Path, resume: str = "run the same command") -> str:
    """What an interrupted run kept, in one line; ``resume`` says how to measure the rest."""
    partial = (
        f" ({summary.n_interrupted} of them from the group in progress, stop_reason 'interrupted')"
        if summary.n_interrupted else ""
    )
    return (
        f"run {summary.run_id} on {device} marked interrupted; {summary.n_measured} "
        f"measurement{'' if summary.n_measured == 1 else 's'} kept in {db}{partial}; "
        f"{resume} to measure the rest"
    )


def _attach_meter(dev: Any, runner: Any, device: str, meter: str, settings: dict[str, Any]) -> None:
    """The meter is read on the machine that runs the model: here, or by the remote worker / each fleet node.

    A remote one is built and checked there at once (a describe request), so
    a meter missing on that machine is one line before anything is stored.
    """
    if runner is None:
        dev.use_meter(get_meter(meter, **settings))
        return
    if meter in registry.names("meter"):  # its settings checked here first (a typo is not a connection error);
        get_meter(meter, **settings)  # a meter only the remote machine has is checked there alone
    runner.use_meter(meter, settings)
    try:
        runner.describe()
    except HwprofError as exc:  # every HwprofError is one line and exit 1: only where it happened is added
        raise HwprofError(f"meter {meter!r} on {device} (read where the model runs): {first_line(exc)}") from None


def _select(sp: Any, n: int, seed: int, archs_file: Optional[Path], indices: Optional[str]):
    if archs_file is not None and indices is not None:
        raise ConfigError("give either --archs or --indices, not both")
    if archs_file is not None:
        return dedupe(read_arch_file(archs_file, sp))
    if indices is not None:
        if not hasattr(sp, "from_index"):
            raise ConfigError(f"space {sp.name!r} has no benchmark index; use --archs or -n")
        return dedupe(sp.from_index(i) for i in parse_indices(indices, sp.size))
    if n > sp.size:
        warn(f"-n {n} is more than the {sp.size} architectures of space {sp.name!r}: profiling all {sp.size}")
    return sp.sample(min(n, sp.size), np.random.default_rng(seed))


def _run_with_progress(profiler: Profiler, archs, again: bool) -> ProfileSummary:
    with ProgressDisplay() as display:
        display.update("profiling", 0, len(archs))

        def on_progress(ev: ProgressEvent) -> None:
            med = f"median {ev.running_median_ms:.3f} ms" if ev.running_median_ms is not None else ""
            node = ev.measurement.host.get("fleet") if ev.measurement is not None else None
            if node:  # a fleet: which node the last group came from
                med += f", last from node {str(node.get('node_id', ''))[:8]} ({node.get('node_ip')})"
            display.update("profiling", ev.n_done, len(archs), med)
            if ev.drift is not None and ev.drift.exceeded:
                display.console.print(f"[yellow]drift[/yellow] reference {ev.drift.drift_rel:+.1%} after {ev.drift.n_done} models")

        return profiler.profile(archs, again=again, on_progress=on_progress)


def _print_summary(summary: ProfileSummary, device: str) -> None:
    table = Table(title=f"run {summary.run_id} on {device}: {summary.status}")
    table.add_column("measured", justify="right")
    table.add_column("skipped (already stored)", justify="right")
    table.add_column("median ms", justify="right")
    table.add_column("min ms", justify="right")
    table.add_column("max ms", justify="right")
    table.add_column("unstable", justify="right")
    table.add_column("drift checks", justify="right")
    lat = summary.latencies_ms
    fmt = (lambda v: f"{v:.3f}") if lat else (lambda v: "-")
    table.add_row(
        str(summary.n_measured),
        str(summary.n_skipped),
        fmt(float(np.median(lat)) if lat else 0.0),
        fmt(min(lat) if lat else 0.0),
        fmt(max(lat) if lat else 0.0),
        str(summary.n_unstable),
        ", ".join(f"{c.drift_rel:+.1%}" for c in summary.drift_checks) or "-",
    )
    console.print(table)
    rate = summary.networks_per_min
    if rate is not None and summary.n_measured:  # a narrow terminal would cut an eighth column
        console.print(f"{summary.n_measured} networks measured in {summary.elapsed_s:.1f} s: {rate:.1f} networks/min")
    unstable = summary.unstable_warnings
    for w in summary.warnings + unstable[:MAX_UNSTABLE_SHOWN]:
        warn(w)
    if len(unstable) > MAX_UNSTABLE_SHOWN:
        warn(f"... and {len(unstable) - MAX_UNSTABLE_SHOWN} more unstable measurements (spread above the protocol's "
             "unstable_rel); each row is flagged in the store (`hwprof show`, `hwprof export`)")


def measure(
    model: Path = typer.Argument(..., help="An .onnx or .tflite file with static input shapes."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device adapter (default: the first registered one usable here that runs the file's format)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Intra-op threads (device setting intra_op_threads)."),
    set_: list[str] = typer.Option([], "--set", help="Device setting KEY=VALUE (repeatable)."),
    target_ci: float = typer.Option(0.01, "--target-ci"),
    max_time_s: float = typer.Option(10.0, "--max-time-s"),
) -> None:
    """Measure one ONNX or TFLite file (not stored): median, spread and CI of its latency."""
    from devices.export.model_files import load_model_file
    from hwprof import worker
    from hwprof.catalog import default_device_for

    settings = parse_key_values(set_, "--set")
    if threads is not None:
        settings["intra_op_threads"] = threads
    protocol = ProtocolSettings(target_rel_ci=target_ci, max_time_s=max_time_s)
    protocol.validate()
    artifact = load_model_file(model)
    device = device or default_device_for(artifact.format)
    (m,) = worker.measure(device, [artifact], protocol, settings, interleaved=False)
    s = m.stats
    table = Table(title=f"{model.name} on {device} ({artifact.format}, {artifact.precision})")
    for col in ("median ms", "mean ms", "p90 ms", "std ms", "95% CI ± ms", "CV", "runs", "warm-up", "stop"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{s.median_ms:.4f}", f"{s.mean_ms:.4f}", f"{s.p90_ms:.4f}", f"{s.std_ms:.4f}",
        f"{s.ci_half_width_ms:.4f}", f"{s.cv:.1%}", str(s.n_runs), str(m.n_warmup), m.stop_reason,
    )
    console.print(table)
    if m.unstable:
        warn(f"unstable measurement ({instability_note(m.samples_ms, m.visit_sizes, protocol)})")


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)
    app.command("profile")(profile)
    app.command("measure")(measure)
