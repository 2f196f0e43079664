"""The device adapter contract.

An adapter is small: it knows how to load an artifact in its runtime and run
one inference. Warm-up, repetitions, statistics and host metadata come from
``hwprof.protocol`` / ``hwprof.hostinfo`` so every device is measured the same way.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping, Sequence

from hwprof import __version__
from hwprof.errors import ConfigError
from hwprof.hostinfo import host_metadata
from hwprof.protocol import ProtocolSettings, TimingResult, run_interleaved, run_protocol
from hwprof.types import DeviceInfo, Measurement, ModelArtifact


class Device(ABC):
    """A place where exported models run and are timed.

    Subclasses declare ``name``, ``supported_formats`` and ``default_settings``;
    constructor keyword arguments override settings and are validated here.
    """

    name: ClassVar[str] = ""
    supported_formats: ClassVar[tuple[str, ...]] = ()
    default_settings: ClassVar[Mapping[str, Any]] = {}
    description: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.default_settings))
        if unknown:
            raise ConfigError(
                f"device {self.name!r} has no setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.default_settings)) or 'none'}"
            )
        merged = dict(self.default_settings)
        merged.update({k: v for k, v in settings.items() if v is not None})
        self.settings: dict[str, Any] = self.validate_settings(merged)

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Normalise and check settings; raise ConfigError. Default: accept as is."""
        return settings

    @abstractmethod
    def check(self) -> DeviceInfo:
        """Describe the device, or raise DeviceUnavailable saying why it cannot run here."""

    @abstractmethod
    def prepare(self, artifact: ModelArtifact) -> Callable[[], object]:
        """Load the artifact and return a zero-argument callable running one inference.

        Raise ModelRunError when the runtime rejects the model.
        """

    def release(self) -> None:
        """Free what one ``prepare`` call loaded (sessions, interpreters). Optional.

        ``measure_many`` prepares several artifacts before timing any of them and
        then calls ``release`` once per successful ``prepare``.
        """

    def runtime_packages(self) -> tuple[str, ...]:
        """Distribution names whose versions are recorded with every measurement."""
        return ()

    def measure(self, artifact: ModelArtifact, protocol: ProtocolSettings | None = None) -> Measurement:
        """Run the shared protocol on one artifact and return an immutable Measurement."""
        protocol = protocol or ProtocolSettings()
        protocol.validate()
        self._check_format(artifact)
        fn = self.prepare(artifact)
        try:
            result = self.time(fn, protocol)
        finally:
            self.release()
        return self.to_measurement(artifact, result, protocol)

    def measure_many(self, artifacts: Sequence[ModelArtifact], protocol: ProtocolSettings | None = None) -> list[Measurement]:
        """Measure several artifacts together, interleaved in ``protocol.rounds`` rounds.

        All artifacts are loaded first, so no repetition pays for loading; see
        ``hwprof.protocol.run_interleaved`` for why interleaving makes latencies
        measured minutes apart comparable.
        """
        protocol = protocol or ProtocolSettings()
        protocol.validate()
        for artifact in artifacts:
            self._check_format(artifact)
        fns: list[Callable[[], object]] = []
        try:
            for artifact in artifacts:
                fns.append(self.prepare(artifact))
            results = self.time_many(fns, protocol)
        finally:
            for _ in fns:
                self.release()
        return [self.to_measurement(a, r, protocol) for a, r in zip(artifacts, results)]

    def _check_format(self, artifact: ModelArtifact) -> None:
        if artifact.format not in self.supported_formats:
            raise ConfigError(
                f"device {self.name!r} runs {', '.join(self.supported_formats)}, not {artifact.format!r}"
            )

    def time(self, fn: Callable[[], object], protocol: ProtocolSettings) -> TimingResult:
        """Hook for adapters that time differently (e.g. on-device timers); default: host clock."""
        return run_protocol(fn, protocol)

    def time_many(self, fns: Sequence[Callable[[], object]], protocol: ProtocolSettings) -> list[TimingResult]:
        """Interleaved counterpart of ``time``; default: host clock."""
        return run_interleaved(fns, protocol)

    def to_measurement(
        self, artifact: ModelArtifact, result: TimingResult, protocol: ProtocolSettings
    ) -> Measurement:
        return Measurement(
            arch_id=artifact.arch_id,
            artifact_sha256=artifact.sha256,
            device=self.name,
            stats=result.stats,
            n_warmup=result.n_warmup,
            unstable=result.unstable,
            settings=dict(self.settings),
            host=host_metadata(self.runtime_packages()),
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            hwprof_version=__version__,
            samples_ms=result.samples_ms,
            stop_reason=result.stop_reason,
        )
