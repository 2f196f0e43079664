"""Profiling orchestration: export -> measure (through the worker) -> store, in small interleaved groups.

The exporter is the registered one for the device's formats and the requested
precision; measuring goes through a :class:`~hwprof.runners.Runner` (the
worker's JSON path, in this process by default), so host metadata is that of
the machine where the worker ran.

Each model's architecture, artifact and measurement are written in one
transaction, so an interrupted run (Ctrl-C, a failing model) leaves every
completed measurement committed and no partial rows. Ctrl-C inside an
interleaved group keeps the group's models that completed their minimum
rounds (stop reason ``interrupted``). A store locked by another process is
waited for (``commit_wait_s``), never a reason to drop measured work.

A :class:`~hwprof.runners.ConcurrentRunner` (a Ray fleet, :mod:`hwprof.fleet`)
gets the same groups, calibration models included, all at once: each is
exported and measured where the runner places it, and stored here as it
comes back; resuming, interrupts and the stored rows are those of the
sequential path.

One device at a time: a latency benchmark must not share cores with another
benchmark, so a run refuses to start while a live process profiles the same
device with the same settings into the same store (:mod:`hwprof.liveness`).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from hwprof.artifacts import DEFAULT_PRECISION, ArtifactCache, exporter_for
from hwprof.devices import Device
from hwprof.errors import ConfigError, HwprofError, RunInProgress, StoreBusy, first_line
from hwprof.estimators import group_estimates, primary_of, reference_of
from hwprof.liveness import driver_identity, driver_state
from hwprof.protocol import (
    STOP_INTERRUPTED,
    DriftCheck,
    DriftMonitor,
    MeasurementInterrupted,
    ProtocolSettings,
    instability_note,
)
from hwprof.registry import get_device, get_space
from hwprof.runners import ConcurrentRunner, GroupDone, GroupJob, InProcessRunner, Runner
from hwprof.spaces import SearchSpace, parse_indices, read_arch_file  # noqa: F401  (re-exported for callers of the profiler)
from hwprof.store import Store
from hwprof.types import Architecture, Measurement, ModelArtifact, settings_identity, stable_hash

logger = logging.getLogger("hwprof")

COMMIT_WAIT_S = 600.0  # how long a measured group waits for a write lock held by another process


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
    n_measured: int = 0  # stored in this run, the interrupted group's kept models included
    n_skipped: int = 0
    n_unstable: int = 0
    n_interrupted: int = 0  # kept from a group cut short by an interrupt (stop reason "interrupted")
    latencies_ms: list[float] = field(default_factory=list)
    drift_checks: list[DriftCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unstable_warnings: list[str] = field(default_factory=list)  # one per unstable row, kept apart: there may be hundreds
    status: str = "running"
    elapsed_s: float = 0.0  # wall time of the run: exports, measuring, drift checks, storing

    @property
    def networks_per_min(self) -> float | None:
        """Measured (not skipped) networks per minute of wall time; None before any time has passed."""
        return self.n_measured * 60.0 / self.elapsed_s if self.elapsed_s > 0 else None


class ProfileInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a signal raised as one) stopped :meth:`Profiler.profile`; ``summary`` says what was kept."""

    def __init__(self, summary: ProfileSummary) -> None:
        super().__init__(f"run {summary.run_id} interrupted: {summary.n_measured} measurements kept")
        self.summary = summary


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
        commit_wait_s: float = COMMIT_WAIT_S,
    ) -> None:
        self.device = device
        self.space = space
        self.store = store
        self.protocol = protocol or ProtocolSettings()
        self.protocol.validate()
        self.cache = ArtifactCache(cache_dir if cache_dir is not None else store.path.parent / ".hwprof-cache")
        self.precision = precision
        device.check_precision(precision)  # the device's own refusal, before any exporter is looked for
        self.exporter = exporter_for(device.supported_formats, precision)
        self.runner = runner if runner is not None else InProcessRunner(device)
        self.command = command
        if isinstance(drift_every, bool) or not isinstance(drift_every, int) or drift_every < 0:
            raise ConfigError(f"drift_every must be an integer >= 0 (0 = no drift checks), got {drift_every!r}")
        if isinstance(drift_threshold_rel, bool) or not isinstance(drift_threshold_rel, (int, float)) \
                or not 0 < drift_threshold_rel < math.inf:
            raise ConfigError(f"drift_threshold_rel must be a number > 0, got {drift_threshold_rel!r}")
        self.drift_every = drift_every
        self.drift_threshold_rel = drift_threshold_rel
        self.commit_wait_s = commit_wait_s
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
        # the settings as the worker validated them (a remote adapter normalises its own)
        self.settings = dict(self.info.settings)
        self.settings_hash = settings_identity(self.settings, precision)
        self._run_id: int | None = None
        self.notes: list[str] = []  # what starting the run found (stale runs, runs of other hosts): for the summary
        for path in self.cache.remove_stale_temp_files():
            logger.info("removed %s, left by an export that was killed", path)

    # --- the run -------------------------------------------------------------
    @property
    def run_id(self) -> int:
        """The open run, started on first use (refused while another live process runs the same measurement)."""
        return self._claim()

    def _claim(self) -> int:
        if self._run_id is None:
            _, host = self.runner.describe()  # the worker's machine, now
            host = {**host, **driver_identity()}  # and the process driving the run: for live-run detection
            self._run_id, notes = self._write(lambda: self._claim_run(host), "start a run")
            self.notes.extend(notes)
        return self._run_id

    def _claim_run(self, host: dict[str, Any]) -> tuple[int, list[str]]:
        """Check for live runs of the same measurement and start ours, in one write transaction (no race).

        Returns the new run's id and notes on the runs found (kept apart until the
        transaction commits: a retried attempt must not repeat them).
        """
        notes: list[str] = []
        with self.store.transaction():
            for run in self.store.runs(status="running", device=self.device.name):
                if stable_hash(dict(run.settings)) != stable_hash(self.settings):
                    continue
                pid = run.host.get("driver_pid", run.host.get("pid"))
                hostname = run.host.get("driver_hostname", run.host.get("hostname"))
                state = driver_state(run.host)
                if state == "alive" and pid != host["driver_pid"]:
                    raise RunInProgress(
                        f"run {run.id} (pid {pid} on {hostname}, `{run.command or 'hwprof'}`) is profiling "
                        f"{self.device.name} with the same settings into {self.store.path}; two benchmarks sharing "
                        "cores corrupt each other's figures: wait for it to finish or stop it, then run this again"
                    )
                if state == "dead":
                    self.store.finish_run(run.id, "interrupted")
                    notes.append(f"run {run.id} was left 'running' by pid {pid}, which is gone: marked interrupted")
                elif state == "unknown":
                    notes.append(
                        f"run {run.id} is marked running by pid {pid} on {hostname}; its process cannot be checked "
                        "from here: if it is still measuring on this machine, the two runs disturb each other"
                    )
            run_id = self.store.start_run(
                self.device_id, dict(self.settings), self.protocol.to_json(), host, self.command
            )
        return run_id, notes

    def _write(self, write: Callable[[], Any], what: str) -> Any:
        """``write()`` retried while another process holds the store's write lock (up to ``commit_wait_s``)."""

        def waiting(exc: StoreBusy) -> None:
            logger.warning(
                "the store %s is locked by another process; waiting up to %.0f s to %s", self.store.path, self.commit_wait_s, what
            )

        return self.store.retry_busy(write, self.commit_wait_s, on_wait=waiting)

    def _store_one(self, arch: Architecture, artifact: ModelArtifact, m: Measurement) -> None:
        """Architecture, artifact and measurement in one transaction, waiting out another process's lock."""

        def write() -> None:
            with self.store.transaction():
                self.store.add_architecture(arch)
                self.store.add_artifact(artifact)
                self.store.add_measurement(self.run_id, self.device_id, m)

        self._write(write, f"store the measurement of {arch.spec}")

    def _finish_run(self, status: str) -> None:
        if self._run_id is not None:
            run_id, self._run_id = self._run_id, None
            self._write(lambda: self.store.finish_run(run_id, status), f"mark run {run_id} {status}")

    # --- single models ---------------------------------------------------

    def export(self, arch: Architecture) -> ModelArtifact:
        """The artifact of ``arch`` in the device's format and the profiler's precision (cached by content)."""
        return self._job([arch]).export(self.cache)[0]

    def _job(self, group: Sequence[Architecture]) -> GroupJob:
        return GroupJob(tuple(group), self.space, self.exporter, self.precision, self.protocol)

    def measure(self, arch: Architecture) -> Measurement:
        """Export (cached), measure and store one architecture atomically."""
        artifact = self.export(arch)
        self._claim()  # before measuring: refused while another process measures the same
        try:
            measurement = self.runner.measure([artifact], self.protocol, interleaved=False)[0]
        except MeasurementInterrupted as exc:
            self._store_kept([arch], [artifact], exc.partial, None)
            raise
        self._store_one(arch, artifact, measurement)
        return measurement

    def measure_latency_ms(self, arch: Architecture) -> float:
        """Median latency of the reference model without storing it (drift checks)."""
        return self.runner.measure([self.export(arch)], self.protocol, interleaved=False)[0].latency_ms

    def cached_latency_ms(self, arch: Architecture) -> float | None:
        """Latest stored latency of ``arch`` on this device with these settings (one indexed lookup)."""
        record = self.store.latest_latency(self.device.name, arch.arch_id, self.settings_hash)
        return None if record is None else float(record.latency_ms())

    def already_measured(self) -> set[str]:
        return self.store.measured_arch_ids(self.device_id, self.settings_hash)

    # --- batches -----------------------------------------------------------
    def measure_batch(self, archs: Sequence[Architecture]) -> list[Measurement]:
        """Export (cached) and measure ``archs`` together, interleaved; each stored atomically.

        When calibrating, the space's calibration architectures join the group
        (stored only if they were asked for) and every measurement records the
        geometric mean of their medians from the same group as ``reference_ms``:
        one number for how fast the machine ran while the group was measured.

        Interrupted (Ctrl-C), the group's models the protocol kept (those that
        completed their ``rounds`` visits and ``min_runs`` runs) are stored
        with stop reason ``interrupted`` (calibrated only if every reference
        was kept too), and :class:`~hwprof.protocol.MeasurementInterrupted` is
        raised again with ``partial``: per architecture of ``archs``, the
        stored Measurement or None.
        """
        group, refs = self._group_of(archs)
        artifacts = [self.export(a) for a in group]
        self._claim()  # before measuring: refused while another process measures the same
        try:
            measurements = self.runner.measure(artifacts, self.protocol, interleaved=True)
        except MeasurementInterrupted as exc:
            raise MeasurementInterrupted(self._store_interrupted(archs, group, refs, artifacts, exc.partial)) from exc
        return self._store_group(archs, group, refs, artifacts, measurements)

    def _group_of(self, archs: Sequence[Architecture]) -> tuple[list[Architecture], list[Architecture]]:
        """``archs`` with the calibration models appended (those not among them), and the calibration models."""
        group = list(archs)
        refs = self.space.calibration_architectures(self.references) if self.calibrate else []
        ids = {a.arch_id for a in group}
        group += [r for r in refs if r.arch_id not in ids]
        return group, refs

    def _store_group(
        self, archs: Sequence[Architecture], group: Sequence[Architecture], refs: Sequence[Architecture],
        artifacts: Sequence[ModelArtifact], measurements: Sequence[Measurement],
    ) -> list[Measurement]:
        """Calibrate a measured group and store its requested models; their Measurements, aligned to ``archs``."""
        measurements = self._calibrated(group, refs, measurements)[: len(archs)]
        for arch, artifact, m in zip(archs, artifacts, measurements):
            self._store_one(arch, artifact, m)
        return measurements

    def _store_interrupted(
        self, archs: Sequence[Architecture], group: Sequence[Architecture], refs: Sequence[Architecture],
        artifacts: Sequence[ModelArtifact], partial: Sequence[Any],
    ) -> list[Measurement | None]:
        """Store what an interrupted group kept (stop reason ``interrupted``); aligned to ``archs``."""
        return self._store_kept(archs, artifacts, self._calibrated(group, refs, partial), STOP_INTERRUPTED)

    def _calibrated(self, group: Sequence[Architecture], refs: Sequence[Architecture], measurements: Sequence[Any]) -> list[Any]:
        """``measurements`` with every estimate of the group (None entries stay; see :mod:`hwprof.estimators`).

        With calibration models in the group (all of them measured), each
        measurement also gets the paired estimates and, as ``reference_ms``, the
        calibration models' level in its primary estimator: one number for how
        fast the machine ran while the group was measured (the store's
        ``corrected_ms``). Without them (or in an interrupted group that lost
        one), the pooled estimates only.
        """
        by_id = {a.arch_id: m for a, m in zip(group, measurements)}
        if refs and all(by_id.get(r.arch_id) is not None for r in refs):
            positions = {a.arch_id: i for i, a in enumerate(group)}
            ref_pos = [positions[r.arch_id] for r in refs]
        else:
            ref_pos = []
        present = [i for i, m in enumerate(measurements) if m is not None]
        if not present:
            return list(measurements)
        index = {i: k for k, i in enumerate(present)}
        estimates, level = group_estimates(
            [measurements[i].samples_ms for i in present],
            [measurements[i].visit_sizes for i in present],
            [index[i] for i in ref_pos],
        )
        out = list(measurements)
        for i in present:
            est = estimates[index[i]]
            estimator = primary_of(est)
            out[i] = replace(measurements[i], estimates=est, estimator=estimator, reference_ms=reference_of(estimator, level))
        return out

    def _store_kept(
        self, archs: Sequence[Architecture], artifacts: Sequence[ModelArtifact], partial: Sequence[Any], stop_reason: str | None
    ) -> list[Measurement | None]:
        """Store the measurements an interrupt left (``stop_reason`` set on each when given); aligned to ``archs``."""
        kept: list[Measurement | None] = []
        for arch, artifact, m in zip(archs, artifacts, list(partial) + [None] * (len(archs) - len(partial))):
            if m is not None:
                m = replace(m, stop_reason=stop_reason) if stop_reason else m
                self._store_one(arch, artifact, m)
            kept.append(m)
        return kept

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
        complete. On Ctrl-C (or a signal the caller raises as KeyboardInterrupt)
        the group in progress keeps every model that completed its minimum
        rounds (stop reason ``interrupted``; see :meth:`measure_batch`), the run
        is marked ``interrupted`` and :class:`ProfileInterrupted` carries the
        summary of what was stored. Such rows count as measured when resuming.
        """
        started = time.monotonic()
        done = set() if again else self.already_measured()
        summary = ProfileSummary(run_id=self.run_id, n_requested=len(archs))
        summary.warnings.extend(self.notes)
        self.notes.clear()
        monitor: DriftMonitor | None = None  # its baseline is measured inside the try: an interrupt there finishes the run
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

        def count(arch: Architecture, m: Measurement) -> None:
            summary.n_measured += 1
            summary.n_interrupted += int(m.stop_reason == STOP_INTERRUPTED)
            summary.n_unstable += int(m.unstable)
            summary.latencies_ms.append(m.latency_ms)
            if m.unstable:
                note = instability_note(m.samples_ms, m.visit_sizes, self.protocol)
                summary.unstable_warnings.append(f"{arch.spec}: unstable measurement ({note})")

        def flush(group: list[Architecture]) -> None:
            try:
                measurements = self.measure_batch(group)
            except MeasurementInterrupted as exc:
                for arch, m in zip(group, exc.partial):
                    if m is not None:
                        count(arch, m)
                raise
            drift = None
            for arch, m in zip(group, measurements):
                count(arch, m)
                if monitor is not None and drift is None and monitor.due(summary.n_measured):
                    drift = self._check_drift(monitor, summary)
                emit(arch, m, drift if arch is group[-1] else None)

        def skip(arch: Architecture) -> None:
            summary.n_skipped += 1
            emit(arch, None, None)

        status = "failed"
        try:
            if isinstance(self.runner, ConcurrentRunner):
                self._profile_concurrently(self.runner, list(self._groups(archs, done, group_size, skip)), summary, count, emit)
                status = "completed"
                return summary
            monitor = self._drift_monitor(len(archs) - sum(a.arch_id in done for a in archs))
            for group in self._groups(archs, done, group_size, skip):
                flush(group)
            status = "completed"
        except KeyboardInterrupt as exc:
            status = "interrupted"
            raise ProfileInterrupted(summary) from exc
        finally:
            summary.status = status
            summary.elapsed_s = time.monotonic() - started
            self._finish_run(status)
        return summary

    @staticmethod
    def _groups(
        archs: Sequence[Architecture], done: set[str], group_size: int, skip: Callable[[Architecture], None]
    ) -> Iterator[list[Architecture]]:
        """The architectures not in ``done`` (added to it) in groups of ``group_size``, each as it fills; ``skip`` the rest."""
        group: list[Architecture] = []
        for arch in archs:
            if arch.arch_id in done:
                skip(arch)
                continue
            done.add(arch.arch_id)
            group.append(arch)
            if len(group) >= group_size:
                yield group
                group = []
        if group:
            yield group

    def _profile_concurrently(
        self,
        runner: ConcurrentRunner,
        groups: Sequence[list[Architecture]],
        summary: ProfileSummary,
        count: Callable[[Architecture, Measurement], None],
        emit: Callable[[Architecture, Measurement | None, DriftCheck | None], None],
    ) -> None:
        """The groups :meth:`profile` would measure one after another, all sent to ``runner`` at once.

        The same groups (same calibration models) as the sequential path; each is
        exported and measured where the runner runs it and stored here as it
        comes back. Drift checks compare one machine with itself over time, so
        they do not run across several devices: each group's calibration
        models give its ``reference_ms`` instead. A group's error stops the run
        (the groups in flight are cancelled; what they kept is stored), as a
        failing group does on the sequential path; so does an interrupt.
        """
        if not groups:
            return
        self._claim()  # before measuring: refused while another process measures the same
        sent: dict[int, tuple[list[Architecture], list[Architecture], list[Architecture]]] = {}
        for archs_of_group in groups:
            group, refs = self._group_of(archs_of_group)
            sent[runner.start(self._job(group))] = (archs_of_group, group, refs)

        def kept(finished: GroupDone) -> None:
            """Store a group collected while stopping: whole when it had finished, else what it kept."""
            if finished.error is None and finished.result is not None and finished.ticket in sent:
                archs_of_group, group, refs = sent.pop(finished.ticket)
                stored = self._store_group(archs_of_group, group, refs, finished.artifacts, finished.result.measurements)
                for arch, m in zip(archs_of_group, stored):
                    count(arch, m)
                    emit(arch, m, None)
            elif isinstance(finished.error, MeasurementInterrupted):
                archs_of_group, group, refs = sent.pop(finished.ticket)
                for arch, m in zip(archs_of_group, self._store_interrupted(
                        archs_of_group, group, refs, finished.artifacts, finished.error.partial)):
                    if m is not None:
                        count(arch, m)
                        emit(arch, m, None)

        try:
            while runner.pending:
                finished_now = runner.wait()
                summary.warnings.extend(runner.notes)
                runner.notes.clear()
                for finished in finished_now:
                    if isinstance(finished.error, MeasurementInterrupted):  # the device host stopped it, not us
                        kept(finished)
                        summary.warnings.append(
                            f"a group was interrupted on {finished.where or 'its device host'}: the networks it did "
                            "not keep are measured by the next run of the same command"
                        )
                        continue
                    if finished.error is not None:
                        raise finished.error
                    archs_of_group, group, refs = sent.pop(finished.ticket)
                    assert finished.result is not None
                    stored = self._store_group(archs_of_group, group, refs, finished.artifacts, finished.result.measurements)
                    for arch, m in zip(archs_of_group, stored):
                        count(arch, m)
                        emit(arch, m, None)
        except KeyboardInterrupt:
            for finished in runner.cancel():
                kept(finished)
            raise
        except HwprofError as exc:
            for finished in runner.cancel():
                kept(finished)
            left = sum(len(v[0]) for v in sent.values())
            raise type(exc)(
                f"{first_line(exc)}; {summary.n_measured} measurements stored, {left} networks not measured: "
                "run the same command again to measure the rest"
            ) from exc

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
        self._write(
            lambda: self.store.add_drift_check(
                self.run_id, self._drift_ref.arch_id, check.n_done, check.baseline_ms, check.median_ms, check.drift_rel,
                check.exceeded,
            ),
            "store a drift check",
        )
        if check.exceeded:
            summary.warnings.append(
                f"drift: reference model now {check.median_ms:.3f} ms vs {check.baseline_ms:.3f} ms at start "
                f"({check.drift_rel:+.1%}, threshold {self.drift_threshold_rel:.0%}) after {check.n_done} models"
            )
        return check

    def close(self) -> None:
        """Finish an open run (from single ``measure`` calls) and close the store."""
        self._finish_run("completed")
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
