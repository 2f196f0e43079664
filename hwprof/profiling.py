"""Profiling orchestration: export -> measure (through the worker) -> store, in small interleaved groups.

The exporter is the registered one for the device's formats and the requested
precision; measuring goes through a :class:`~hwprof.runners.Runner` (the
worker's JSON path, in this process by default), so host metadata is that of
the machine where the worker ran.

Each model's architecture, artifact and measurement are written in one
transaction, so an interrupted run (Ctrl-C, a failing model) leaves every
completed measurement committed and no partial rows. One device at a time:
a latency benchmark must not share cores with another benchmark.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from hwprof.artifacts import DEFAULT_PRECISION, WEIGHT_SEED, ArtifactCache, exporter_for, space_inputs
from hwprof.devices import Device
from hwprof.errors import ConfigError
from hwprof.protocol import DriftCheck, DriftMonitor, ProtocolSettings
from hwprof.registry import get_device, get_space
from hwprof.runners import InProcessRunner, Runner
from hwprof.spaces import SearchSpace, parse_indices, read_arch_file  # noqa: F401  (re-exported for callers of the profiler)
from hwprof.store import Store
from hwprof.types import Architecture, Measurement, ModelArtifact, stable_hash


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the progress callback after every model (measured or skipped)."""

    n_done: int
    n_total: int
    arch: Architecture
    measurement: Measurement | None
    skipped: bool
    running_median_ms: float | None
    drift: DriftCheck | None = None


@dataclass
class ProfileSummary:
    run_id: int
    n_requested: int
    n_measured: int = 0
    n_skipped: int = 0
    n_unstable: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    drift_checks: list[DriftCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unstable_warnings: list[str] = field(default_factory=list)  # one per unstable row, kept apart: there may be hundreds
    status: str = "running"


class Profiler:
    """Measures architectures of one space on one device into a store."""

    def __init__(
        self,
        device: Device,
        space: SearchSpace,
        store: Store,
        protocol: ProtocolSettings | None = None,
        cache_dir: str | Path | None = None,
        command: str = "",
        drift_every: int = 50,
        drift_threshold_rel: float = 0.05,
        interleave: int = 50,
        calibrate: bool = True,
        references: int = 5,
        precision: str = DEFAULT_PRECISION,
        runner: Runner | None = None,
    ) -> None:
        self.device = device
        self.space = space
        self.store = store
        self.protocol = protocol or ProtocolSettings()
        self.protocol.validate()
        self.cache = ArtifactCache(cache_dir if cache_dir is not None else store.path.parent / ".hwprof-cache")
        self.precision = precision
        self.exporter = exporter_for(device.supported_formats, precision)
        self.runner = runner if runner is not None else InProcessRunner(device)
        self.command = command
        self.drift_every = drift_every
        self.drift_threshold_rel = drift_threshold_rel
        if isinstance(interleave, bool) or not isinstance(interleave, int) or interleave < 1:
            raise ConfigError(f"interleave must be an integer >= 1, got {interleave!r}")
        self.interleave = interleave
        # Calibration needs interleaving: the reference must share the group's minutes.
        self.calibrate = bool(calibrate) and self.protocol.rounds > 1
        if isinstance(references, bool) or not isinstance(references, int) or references < 1:
            raise ConfigError(f"references must be an integer >= 1, got {references!r}")
        self.references = references
        self.info, _ = self.runner.describe()
        self.device_id = store.upsert_device(self.info)
        self.settings_hash = stable_hash(dict(device.settings))
        self._run_id: int | None = None

    # --- single models ---------------------------------------------------
    @property
    def run_id(self) -> int:
        if self._run_id is None:
            _, host = self.runner.describe()  # the worker's machine, now
            self._run_id = self.store.start_run(
                self.device_id, dict(self.device.settings), self.protocol.to_json(), host, self.command
            )
        return self._run_id

    def export(self, arch: Architecture) -> ModelArtifact:
        """The artifact of ``arch`` in the device's format and the profiler's precision (cached by content)."""
        return self.cache.get_or_export(
            arch, lambda: self.space.build(arch, seed=WEIGHT_SEED), space_inputs(self.space), self.exporter, self.precision
        )

    def measure(self, arch: Architecture) -> Measurement:
        """Export (cached), measure and store one architecture atomically."""
        artifact = self.export(arch)
        measurement = self.runner.measure([artifact], self.protocol, interleaved=False)[0]
        run_id = self.run_id
        with self.store.transaction():
            self.store.add_architecture(arch)
            self.store.add_artifact(artifact)
            self.store.add_measurement(run_id, self.device_id, measurement)
        return measurement

    def measure_latency_ms(self, arch: Architecture) -> float:
        """Median latency of the reference model without storing it (drift checks)."""
        return self.runner.measure([self.export(arch)], self.protocol, interleaved=False)[0].latency_ms

    def cached_latency_ms(self, arch: Architecture) -> float | None:
        """Latest stored latency of ``arch`` on this device with these settings (one indexed lookup)."""
        record = self.store.latest_latency(self.device.name, arch.arch_id, self.settings_hash)
        return None if record is None else float(record.median_ms)

    def already_measured(self) -> set[str]:
        return self.store.measured_arch_ids(self.device_id, self.settings_hash)

    # --- batches -----------------------------------------------------------
    def measure_batch(self, archs: Sequence[Architecture]) -> list[Measurement]:
        """Export (cached) and measure ``archs`` together, interleaved; each stored atomically.

        When calibrating, the space's calibration architectures join the group
        (stored only if they were asked for) and every measurement records the
        geometric mean of their medians from the same group as ``reference_ms``:
        one number for how fast the machine ran while the group was measured.
        """
        group = list(archs)
        refs = self.space.calibration_architectures(self.references) if self.calibrate else []
        ids = {a.arch_id for a in group}
        group += [r for r in refs if r.arch_id not in ids]
        artifacts = [self.export(a) for a in group]
        measurements = self.runner.measure(artifacts, self.protocol, interleaved=True)
        if refs:
            by_id = {a.arch_id: m.latency_ms for a, m in zip(group, measurements)}
            ref_ms = math.exp(statistics.fmean(math.log(by_id[r.arch_id]) for r in refs))
            measurements = [replace(m, reference_ms=ref_ms) for m in measurements]
        measurements = measurements[: len(archs)]
        run_id = self.run_id
        for arch, artifact, m in zip(archs, artifacts, measurements):
            with self.store.transaction():
                self.store.add_architecture(arch)
                self.store.add_artifact(artifact)
                self.store.add_measurement(run_id, self.device_id, m)
        return measurements

    def profile(
        self,
        archs: Sequence[Architecture],
        again: bool = False,
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> ProfileSummary:
        """Measure ``archs`` in order; resumable (skips already measured unless ``again``).

        With ``protocol.rounds > 1`` the architectures are measured in groups of
        ``interleave``, each group's models visited in alternating rounds (see
        ``hwprof.protocol.run_interleaved``); a group is committed when it is
        complete, so an interrupt loses at most the group in progress.
        """
        done = set() if again else self.already_measured()
        summary = ProfileSummary(run_id=self.run_id, n_requested=len(archs))
        monitor = self._drift_monitor(len(archs) - sum(a.arch_id in done for a in archs))
        group_size = self.interleave if self.protocol.rounds > 1 else 1
        n_done = 0

        def emit(arch: Architecture, m: Measurement | None, drift: DriftCheck | None) -> None:
            nonlocal n_done
            n_done += 1
            if on_progress is not None:
                on_progress(
                    ProgressEvent(
                        n_done=n_done,
                        n_total=len(archs),
                        arch=arch,
                        measurement=m,
                        skipped=m is None,
                        running_median_ms=statistics.median(summary.latencies_ms) if summary.latencies_ms else None,
                        drift=drift,
                    )
                )

        def flush(group: list[Architecture]) -> None:
            measurements = self.measure_batch(group)
            drift = None
            for arch, m in zip(group, measurements):
                summary.n_measured += 1
                summary.n_unstable += int(m.unstable)
                summary.latencies_ms.append(m.latency_ms)
                if m.unstable:
                    summary.unstable_warnings.append(f"{arch.spec}: unstable measurement (CV {m.stats.cv:.1%})")
                if monitor is not None and drift is None and monitor.due(summary.n_measured):
                    drift = self._check_drift(monitor, summary)
                emit(arch, m, drift if arch is group[-1] else None)
            group.clear()

        status = "failed"
        try:
            group: list[Architecture] = []
            for arch in archs:
                if arch.arch_id in done:
                    summary.n_skipped += 1
                    emit(arch, None, None)
                    continue
                done.add(arch.arch_id)
                group.append(arch)
                if len(group) >= group_size:
                    flush(group)
            if group:
                flush(group)
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            summary.status = status
            self.store.finish_run(self.run_id, status)
            self._run_id = None
        return summary

    def _drift_monitor(self, n_to_measure: int) -> DriftMonitor | None:
        if self.drift_every <= 0 or n_to_measure < self.drift_every:
            return None
        ref = self.space.reference_architecture()
        self._drift_ref = ref
        monitor = DriftMonitor(lambda: self.measure_latency_ms(ref), every=self.drift_every, threshold_rel=self.drift_threshold_rel)
        monitor.start()
        return monitor

    def _check_drift(self, monitor: DriftMonitor, summary: ProfileSummary) -> DriftCheck:
        check = monitor.check(summary.n_measured)
        summary.drift_checks.append(check)
        self.store.add_drift_check(
            self.run_id, self._drift_ref.arch_id, check.n_done, check.baseline_ms, check.median_ms, check.drift_rel, check.exceeded
        )
        if check.exceeded:
            summary.warnings.append(
                f"drift: reference model now {check.median_ms:.3f} ms vs {check.baseline_ms:.3f} ms at start "
                f"({check.drift_rel:+.1%}, threshold {self.drift_threshold_rel:.0%}) after {check.n_done} models"
            )
        return check

    def close(self) -> None:
        """Finish an open run (from single ``measure`` calls) and close the store."""
        if self._run_id is not None:
            self.store.finish_run(self._run_id, "completed")
            self._run_id = None
        self.store.close()


def open_profiler(
    device_name: str,
    db: str | Path,
    space_name: str,
    protocol: ProtocolSettings | None = None,
    cache_dir: str | Path | None = None,
    command: str = "",
    **device_settings: Any,
) -> Profiler:
    """Convenience for library users and cost models: names in, a ready Profiler out."""
    device = get_device(device_name, **device_settings)
    space = get_space(space_name)
    store = Store(db)
    try:
        return Profiler(device, space, store, protocol=protocol, cache_dir=cache_dir, command=command)
    except BaseException:
        store.close()
        raise


def dedupe(archs: Iterable[Architecture]) -> list[Architecture]:
    seen: set[str] = set()
    out = []
    for a in archs:
        if a.arch_id not in seen:
            seen.add(a.arch_id)
            out.append(a)
    return out
