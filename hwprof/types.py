"""Core value types. Frozen dataclasses; units live in field names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from hwprof.errors import ConfigError


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def merge_settings(what: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with the ``given`` values that are not None; ConfigError names unknown keys."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{what} has no setting(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults)) or 'none'}"
        )
    merged = dict(defaults)
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged


def coerce_numbers(what: str, settings: dict[str, Any], spec: Mapping[str, tuple[type, float]]) -> dict[str, Any]:
    """Convert each ``settings[key]`` to ``int`` or ``float`` and check it is >= its minimum (``spec``: key -> (type, minimum))."""
    for key, (kind, minimum) in spec.items():
        try:
            value = kind(settings[key])
        except (TypeError, ValueError):
            expected = "an integer" if kind is int else "a number"
            raise ConfigError(f"{what} {key} must be {expected}, got {settings[key]!r}") from None
        if not value >= minimum:  # also refuses NaN
            raise ConfigError(f"{what} {key} must be >= {minimum:g}, got {settings[key]!r}")
        settings[key] = value
    return settings


def settings_identity(settings: Mapping[str, Any], precision: str = "fp32") -> str:
    """What makes two measurements of one architecture on one device comparable: settings and precision.

    fp32 keeps the hash of the settings alone (the identity before precisions
    existed), so stores written earlier resume and compare as before.
    """
    if precision == "fp32":
        return stable_hash(dict(settings))
    return stable_hash({"settings": dict(settings), "precision": precision})


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
    precision: str = "fp32"  # "fp32", "int8": part of what was measured

    def inputs_json(self) -> list[dict[str, Any]]:
        return [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "arch_id": self.arch_id,
            "inputs": self.inputs_json(),
            "exporter": dict(self.exporter),
            "precision": self.precision,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ModelArtifact":
        return cls(
            path=str(data["path"]),
            format=str(data["format"]),
            sha256=str(data["sha256"]),
            size_bytes=int(data["size_bytes"]),
            arch_id=str(data["arch_id"]),
            inputs=tuple(InputSpec(str(i["name"]), tuple(int(d) for d in i["shape"]), str(i["dtype"])) for i in data["inputs"]),
            exporter=dict(data.get("exporter", {})),
            precision=str(data.get("precision", "fp32")),
        )


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DeviceInfo":
        return cls(
            name=str(data["name"]),
            runtime=str(data["runtime"]),
            runtime_version=str(data["runtime_version"]),
            cpu_model=str(data["cpu_model"]),
            cores_logical=int(data["cores_logical"]),
            settings=dict(data.get("settings", {})),
            extra=dict(data.get("extra", {})),
        )


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LatencyStats":
        return cls(**{f.name: (int if f.name == "n_runs" else float)(data[f.name]) for f in fields(cls)})


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
    energy_mj: float | None = None  # per inference, over the timed repetitions; None (never 0) without a meter
    meter: str | None = None
    stop_reason: str = ""
    # Geometric mean of the medians of the space's calibration models, measured interleaved in
    # the same group when the profiler calibrates (see hwprof.profiling); lets the store
    # correct changes of the machine's speed between groups and sessions.
    reference_ms: float | None = None
    precision: str = "fp32"  # of the artifact measured; part of the measurement's identity (settings_hash)
    # Samples per visit of an interleaved measurement, in visit order (sum = len(samples_ms)); () = one block.
    visit_sizes: tuple[int, ...] = ()
    # The primary latency: ``estimates[estimator]`` (the median when absent); see hwprof.estimators.
    estimator: str = "median"
    estimates: Mapping[str, float] = field(default_factory=dict)
    # 95% uncertainty (half-width) of energy_mj: spread of its visits and the meter's resolution (hwprof.meters).
    energy_ci_mj: float | None = None

    @property
    def latency_ms(self) -> float:
        if self.estimator == "median" or self.estimator not in self.estimates:
            return self.stats.median_ms
        return float(self.estimates[self.estimator])

    @property
    def settings_hash(self) -> str:
        return settings_identity(self.settings, self.precision)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values; ``Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m``.

        Floats are written with ``repr`` precision, so the round trip is exact;
        an infinite CI half-width (too few samples) is written as ``Infinity``.
        """
        return {
            "arch_id": self.arch_id,
            "artifact_sha256": self.artifact_sha256,
            "device": self.device,
            "stats": self.stats.to_json(),
            "n_warmup": self.n_warmup,
            "unstable": self.unstable,
            "settings": dict(self.settings),
            "host": dict(self.host),
            "timestamp": self.timestamp,
            "hwprof_version": self.hwprof_version,
            "samples_ms": list(self.samples_ms),
            "energy_mj": self.energy_mj,
            "meter": self.meter,
            "stop_reason": self.stop_reason,
            "reference_ms": self.reference_ms,
            "precision": self.precision,
            "visit_sizes": list(self.visit_sizes),
            "estimator": self.estimator,
            "estimates": dict(self.estimates),
            "energy_ci_mj": self.energy_ci_mj,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Measurement":
        def opt_float(value: Any) -> float | None:
            return None if value is None else float(value)

        return cls(
            arch_id=str(data["arch_id"]),
            artifact_sha256=str(data["artifact_sha256"]),
            device=str(data["device"]),
            stats=LatencyStats.from_json(data["stats"]),
            n_warmup=int(data["n_warmup"]),
            unstable=bool(data["unstable"]),
            settings=dict(data["settings"]),
            host=dict(data["host"]),
            timestamp=str(data["timestamp"]),
            hwprof_version=str(data["hwprof_version"]),
            samples_ms=tuple(float(x) for x in data.get("samples_ms", ())),
            energy_mj=opt_float(data.get("energy_mj")),
            meter=data.get("meter"),
            stop_reason=str(data.get("stop_reason", "")),
            reference_ms=opt_float(data.get("reference_ms")),
            precision=str(data.get("precision", "fp32")),
            visit_sizes=tuple(int(x) for x in data.get("visit_sizes", ())),
            estimator=str(data.get("estimator", "median")),
            estimates={str(k): float(v) for k, v in dict(data.get("estimates", {})).items()},
            energy_ci_mj=opt_float(data.get("energy_ci_mj")),
        )
