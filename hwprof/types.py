"""Core value types. Frozen dataclasses; units live in field names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Architecture:
    """A network of a named search space, identified by the space's canonical spec string.

    The core never interprets ``spec``; the space (found by name through the
    ``hwprof.spaces`` entry point) parses it and builds the network.
    """

    space: str
    spec: str

    @property
    def arch_id(self) -> str:
        return stable_hash({"space": self.space, "spec": self.spec})

    def to_json(self) -> dict[str, str]:
        return {"space": self.space, "spec": self.spec}


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ModelArtifact:
    """An exported model file and what is needed to run it."""

    path: str
    format: str  # "onnx", "tflite"
    sha256: str
    size_bytes: int
    arch_id: str
    inputs: tuple[InputSpec, ...]
    exporter: Mapping[str, Any] = field(default_factory=dict)

    def inputs_json(self) -> list[dict[str, Any]]:
        return [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs]


@dataclass(frozen=True)
class DeviceInfo:
    """What a device adapter found when it checked the machine."""

    name: str
    runtime: str
    runtime_version: str
    cpu_model: str
    cores_logical: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Identifies the hardware+runtime+settings combination (not volatile load)."""
        return stable_hash(
            {
                "name": self.name,
                "runtime": self.runtime,
                "runtime_version": self.runtime_version,
                "cpu_model": self.cpu_model,
                "cores_logical": self.cores_logical,
                "settings": dict(self.settings),
            }
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = dict(self.settings)
        d["extra"] = dict(self.extra)
        return d


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a stream of per-inference latencies (milliseconds)."""

    median_ms: float
    mean_ms: float
    p90_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ci_half_width_ms: float  # 95% CI half-width of the median
    cv: float  # coefficient of variation (std/mean)
    n_runs: int


@dataclass(frozen=True)
class Measurement:
    """One protocol run of one model on one device. Immutable; stored as a row."""

    arch_id: str
    artifact_sha256: str
    device: str
    stats: LatencyStats
    n_warmup: int
    unstable: bool
    settings: Mapping[str, Any]
    host: Mapping[str, Any]
    timestamp: str  # ISO 8601 UTC
    hwprof_version: str
    samples_ms: tuple[float, ...] = ()
    energy_mj: float | None = None
    meter: str | None = None
    stop_reason: str = ""
    # Geometric mean of the medians of the space's calibration models, measured interleaved in
    # the same group when the profiler calibrates (see hwprof.profiling); lets the store
    # correct changes of the machine's speed between groups and sessions.
    reference_ms: float | None = None

    @property
    def latency_ms(self) -> float:
        return self.stats.median_ms

    @property
    def settings_hash(self) -> str:
        return stable_hash(dict(self.settings))
