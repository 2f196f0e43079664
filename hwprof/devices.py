"""The device adapter contract.

An adapter is small: it knows how to load an artifact in its runtime
(``prepare`` returns a handle, ``release`` takes it back) and run one
inference. Warm-up, repetitions, statistics and host metadata come from
``hwprof.protocol`` / ``hwprof.hostinfo`` so every device is measured the same
way; :mod:`hwprof.worker` runs an adapter wherever the device is.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, ContextManager, Mapping, Sequence

from hwprof import __version__
from hwprof.errors import ConfigError, HwprofError
from hwprof.estimators import pooled_estimates, primary_of
from hwprof.hostinfo import host_metadata
from hwprof.protocol import MeasurementInterrupted, ProtocolSettings, TimingResult, run_interleaved, run_protocol
from hwprof.meters import EnergyRecorder, Meter
from hwprof.types import DeviceInfo, Measurement, ModelArtifact, merge_settings


@dataclass
class PreparedModel:
    """What ``Device.prepare`` loaded: ``run()`` is one inference; ``state`` is what ``release`` frees."""

    artifact: ModelArtifact
    run: Callable[[], object]
    state: Any = None


class Device(ABC):
    """A place where exported models run and are timed.

    Subclasses declare ``name``, ``supported_formats`` and ``default_settings``;
    constructor keyword arguments override settings and are validated here.
    """

    name: ClassVar[str] = ""
    supported_formats: ClassVar[tuple[str, ...]] = ()
    supported_precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    default_settings: ClassVar[Mapping[str, Any]] = {}
    description: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        self.settings: dict[str, Any] = self.validate_settings(
            merge_settings(f"device {self.name!r}", self.default_settings, settings)
        )
        self.meter: Meter | None = None  # see use_meter

    def use_meter(self, meter: Meter | None) -> None:
        """Measure energy with ``meter`` (checked here) in every later measurement; None detaches it.

        The meter is read around each visit's timed loop, so energy_mj covers
        the same repetitions as the latency (see :mod:`hwprof.meters`).
        """
        if meter is not None:
            meter.check()
        self.meter = meter

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Normalise and check settings; raise ConfigError. Default: accept as is."""
        return settings

    @abstractmethod
    def check(self) -> DeviceInfo:
        """Describe the device, or raise DeviceUnavailable saying why it cannot run here."""

    @abstractmethod
    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        """Load the artifact; the handle's ``run()`` runs one inference.

        Raise ModelRunError when the runtime rejects the model.
        """

    def release(self, handle: PreparedModel) -> None:
        """Free what ``prepare`` loaded for ``handle`` (sessions, interpreters). Default: drop references."""
        handle.state = None

    def measuring(self) -> ContextManager[Any]:
        """Entered around prepare -> time -> release (e.g. pin the process to cores). Default: nothing."""
        return contextlib.nullcontext()

    def host_metadata(self) -> dict[str, Any]:
        """Metadata of the machine this adapter runs on (called where the worker runs, never by a remote driver)."""
        return host_metadata(self.runtime_packages())

    def runtime_packages(self) -> tuple[str, ...]:
        """Distribution names whose versions are recorded with every measurement."""
        return ()

    def measure(self, artifact: ModelArtifact, protocol: ProtocolSettings | None = None) -> Measurement:
        """Run the shared protocol on one artifact and return an immutable Measurement."""
        protocol = protocol or ProtocolSettings()
        protocol.validate()
        self._check_format(artifact)
        recorder, observe = self._recorder(1)
        with self.measuring(), self._metering():
            handle = self.prepare(artifact)
            try:
                result = self.time(handle.run, protocol, **observe)
            except MeasurementInterrupted as exc:
                raise self._interrupted([artifact], exc, protocol, recorder) from exc
            finally:
                self.release(handle)
            (m,) = self._with_energy([self.to_measurement(artifact, result, protocol, self.host_metadata())], recorder, protocol)
        return m

    def measure_many(self, artifacts: Sequence[ModelArtifact], protocol: ProtocolSettings | None = None) -> list[Measurement]:
        """Measure several artifacts together, interleaved in ``protocol.rounds`` rounds.

        All artifacts are loaded first, so no repetition pays for loading; see
        ``hwprof.protocol.run_interleaved`` for why interleaving makes latencies
        measured minutes apart comparable. Every handle is released, also on errors.
        On Ctrl-C, :class:`~hwprof.protocol.MeasurementInterrupted` carries a
        Measurement (stop reason ``interrupted``) for every model the protocol kept.
        """
        protocol = protocol or ProtocolSettings()
        protocol.validate()
        for artifact in artifacts:
            self._check_format(artifact)
        handles: list[PreparedModel] = []
        recorder, observe = self._recorder(len(artifacts))
        with self.measuring(), self._metering():
            try:
                for artifact in artifacts:
                    handles.append(self.prepare(artifact))
                results = self.time_many([h.run for h in handles], protocol, **observe)
            except MeasurementInterrupted as exc:
                raise self._interrupted(artifacts, exc, protocol, recorder) from exc
            finally:
                for handle in handles:
                    self.release(handle)
            host = self.host_metadata()
            return self._with_energy(
                [self.to_measurement(a, r, protocol, host) for a, r in zip(artifacts, results)], recorder, protocol
            )

    def _recorder(self, n_models: int) -> tuple[EnergyRecorder | None, dict[str, Any]]:
        """The attached meter's recorder and the keyword that hands it to ``time``/``time_many`` (none without a meter)."""
        if self.meter is None:
            return None, {}
        recorder = EnergyRecorder(self.meter, n_models)
        return recorder, {"observer": recorder}

    def _metering(self) -> ContextManager[Any]:
        return self.meter.session() if self.meter is not None else contextlib.nullcontext()

    @staticmethod
    def _with_energy(measurements: list[Any], recorder: EnergyRecorder | None, protocol: ProtocolSettings) -> list[Any]:
        return measurements if recorder is None else recorder.annotate(measurements, protocol.confidence)

    def _interrupted(
        self, artifacts: Sequence[ModelArtifact], exc: MeasurementInterrupted, protocol: ProtocolSettings,
        recorder: EnergyRecorder | None = None,
    ) -> MeasurementInterrupted:
        """The protocol's partial TimingResults as Measurements of ``artifacts`` (None stays None)."""
        host = self.host_metadata()
        partial = [None if r is None else self.to_measurement(a, r, protocol, host) for a, r in zip(artifacts, exc.partial)]
        try:
            partial = self._with_energy(partial, recorder, protocol)
        except HwprofError:  # the latencies are kept even when the meter cannot say what the cut-short visits used
            pass
        return MeasurementInterrupted(partial)

    def check_precision(self, precision: str) -> None:
        """ConfigError unless this device measures models of ``precision``: refuse before exporting anything."""
        if precision not in self.supported_precisions:
            raise ConfigError(
                f"device {self.name!r} measures {', '.join(self.supported_precisions)} models, not {precision!r}"
            )

    def _check_format(self, artifact: ModelArtifact) -> None:
        if artifact.format not in self.supported_formats:
            raise ConfigError(
                f"device {self.name!r} runs {', '.join(self.supported_formats)}, not {artifact.format!r}"
            )
        self.check_precision(artifact.precision)

    def time(self, fn: Callable[[], object], protocol: ProtocolSettings, observer: Any = None) -> TimingResult:
        """Hook for adapters that time differently (e.g. on-device timers); default: host clock.

        ``observer`` (given only when a meter is attached) is told of every visit's timed loop.
        """
        return run_protocol(fn, protocol, observer=observer)

    def time_many(self, fns: Sequence[Callable[[], object]], protocol: ProtocolSettings, observer: Any = None) -> list[TimingResult]:
        """Interleaved counterpart of ``time``; default: host clock."""
        return run_interleaved(fns, protocol, observer=observer)

    def to_measurement(
        self, artifact: ModelArtifact, result: TimingResult, protocol: ProtocolSettings, host: Mapping[str, Any]
    ) -> Measurement:
        # an adapter timed elsewhere may bring statistics without samples (android-adb): no pooled estimates then
        estimates = pooled_estimates(result.samples_ms) if result.samples_ms else {}
        return Measurement(
            arch_id=artifact.arch_id,
            artifact_sha256=artifact.sha256,
            device=self.name,
            stats=result.stats,
            n_warmup=result.n_warmup,
            unstable=result.unstable,
            settings=dict(self.settings),
            host=dict(host),
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            hwprof_version=__version__,
            samples_ms=result.samples_ms,
            stop_reason=result.stop_reason,
            precision=artifact.precision,
            visit_sizes=result.visit_sizes,
            estimator=primary_of(estimates),
            estimates=estimates,
        )
