"""What the measurement store hands back: frozen records, one per kind of row.

Why records and not dicts: a caller spells ``r.median_ms`` and a typo fails at
once; JSON columns arrive parsed (arrays as tuples) so a record is a value;
and the fields a reader can rely on are written down here, not invented by
each query. The store (``hwprof.store``) runs the queries; ``from_row`` turns
one result row (columns named as the fields, JSON columns with a ``_json``
suffix) into a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

Row = Mapping[str, Any]  # an sqlite3.Row or anything indexable by column name

from hwprof.types import LatencyStats


def frozen_json(text: str) -> Any:
    """Parse a JSON column; arrays become tuples so a record holds no mutable sequences."""
    return _tuples(json.loads(text))


def _tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tuples(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    return obj


def corrected(latency_ms: float, reference_ms: float | None, baseline_ms: float | None) -> float | None:
    """``latency_ms`` scaled to the machine's state when its first calibrated group was measured.

    None when the row was profiled without calibration (no reference) or no
    baseline exists for its device, settings, space and estimator.
    """
    return latency_ms * baseline_ms / reference_ms if baseline_ms and reference_ms else None


@dataclass(frozen=True)
class MeasurementRecord:
    """One stored measurement with its device name, space and spec.

    ``samples_ms`` is None unless the read asked for samples: parsing every
    sample array is the costly part of reading many rows, and few readers need it.
    """

    id: int
    run_id: int
    device_id: int
    device: str
    space: str
    spec: str
    arch_id: str
    artifact_sha256: str
    settings_hash: str
    settings: Mapping[str, Any]
    host: Mapping[str, Any]
    median_ms: float
    mean_ms: float
    p90_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    ci_half_width_ms: float
    cv: float
    n_runs: int
    n_warmup: int
    unstable: bool
    stop_reason: str
    energy_mj: float | None
    meter: str | None
    reference_ms: float | None
    corrected_ms: float | None
    created_at: str
    hwprof_version: str
    samples_ms: tuple[float, ...] | None = None
    precision: str = "fp32"
    latency_ms: float = 0.0  # the primary estimate (the median for rows of schema < 4)
    estimator: str = "median"
    estimates: Mapping[str, float] | None = None
    visit_sizes: tuple[int, ...] = ()  # parsed with the samples only
    energy_ci_mj: float | None = None  # 95% half-width of energy_mj (schema >= 5; None without a meter)

    @classmethod
    def from_row(cls, row: Row, corrected_ms: float | None, with_samples: bool) -> "MeasurementRecord":
        return cls(
            id=row["id"], run_id=row["run_id"], device_id=row["device_id"], device=row["device"], space=row["space"],
            spec=row["spec"], arch_id=row["arch_id"], artifact_sha256=row["artifact_sha256"],
            settings_hash=row["settings_hash"], settings=frozen_json(row["settings_json"]),
            host=frozen_json(row["host_json"]), median_ms=row["median_ms"], mean_ms=row["mean_ms"],
            p90_ms=row["p90_ms"], std_ms=row["std_ms"], min_ms=row["min_ms"], max_ms=row["max_ms"],
            ci_half_width_ms=row["ci_half_width_ms"], cv=row["cv"], n_runs=row["n_runs"], n_warmup=row["n_warmup"],
            unstable=bool(row["unstable"]), stop_reason=row["stop_reason"], energy_mj=row["energy_mj"],
            meter=row["meter"], reference_ms=row["reference_ms"], corrected_ms=corrected_ms,
            created_at=row["created_at"], hwprof_version=row["hwprof_version"],
            samples_ms=tuple(json.loads(row["samples_json"])) if with_samples else None,
            precision=row["precision"], latency_ms=row["latency_ms"], estimator=row["estimator"],
            estimates=frozen_json(row["estimates_json"]),
            visit_sizes=tuple(json.loads(row["visits_json"])) if with_samples else (),
            energy_ci_mj=row["energy_ci_mj"],
        )  # fmt: skip

    @property
    def stats(self) -> LatencyStats:
        return LatencyStats(
            self.median_ms, self.mean_ms, self.p90_ms, self.std_ms, self.min_ms, self.max_ms,
            self.ci_half_width_ms, self.cv, self.n_runs,
        )  # fmt: skip


@dataclass(frozen=True)
class LatencyRecord:
    """The newest latency of one architecture on one device with one setting: what a cost lookup needs.

    Read without touching the JSON columns, so looking up thousands is cheap.
    """

    measurement_id: int
    device: str
    space: str
    spec: str
    arch_id: str
    settings_hash: str
    median_ms: float
    reference_ms: float | None
    corrected_ms: float | None
    primary_ms: float = 0.0  # the measurement's primary estimate (its median before schema v4)
    estimator: str = "median"
    precision: str = "fp32"

    @classmethod
    def from_row(cls, row: Row, corrected_ms: float | None) -> "LatencyRecord":
        return cls(
            measurement_id=row["id"], device=row["device"], space=row["space"], spec=row["spec"],
            arch_id=row["arch_id"], settings_hash=row["settings_hash"], median_ms=row["median_ms"],
            reference_ms=row["reference_ms"], corrected_ms=corrected_ms, primary_ms=row["latency_ms"],
            estimator=row["estimator"], precision=row["precision"],
        )  # fmt: skip

    def latency_ms(self, corrected: bool = False) -> float:
        """The calibrated latency when asked for and available, else the primary estimate."""
        return self.corrected_ms if corrected and self.corrected_ms is not None else self.primary_ms


@dataclass(frozen=True)
class DeviceRecord:
    id: int
    name: str
    fingerprint: str
    info: Mapping[str, Any]
    first_seen: str
    n_measurements: int

    @classmethod
    def from_row(cls, row: Row) -> "DeviceRecord":
        return cls(
            id=row["id"], name=row["name"], fingerprint=row["fingerprint"], info=frozen_json(row["info_json"]),
            first_seen=row["first_seen"], n_measurements=row["n_measurements"],
        )  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    id: int
    device_id: int
    device: str
    started_at: str
    finished_at: str | None
    status: str
    settings: Mapping[str, Any]
    protocol: Mapping[str, Any]
    host: Mapping[str, Any]
    command: str
    hwprof_version: str
    n_measurements: int

    @classmethod
    def from_row(cls, row: Row) -> "RunRecord":
        return cls(
            id=row["id"], device_id=row["device_id"], device=row["device"], started_at=row["started_at"],
            finished_at=row["finished_at"], status=row["status"], settings=frozen_json(row["settings_json"]),
            protocol=frozen_json(row["protocol_json"]), host=frozen_json(row["host_json"]), command=row["command"],
            hwprof_version=row["hwprof_version"], n_measurements=row["n_measurements"],
        )  # fmt: skip


@dataclass(frozen=True)
class DriftCheckRecord:
    id: int
    run_id: int
    ref_arch_id: str
    n_done: int
    baseline_ms: float
    median_ms: float
    drift_rel: float
    exceeded: bool
    created_at: str

    @classmethod
    def from_row(cls, row: Row) -> "DriftCheckRecord":
        return cls(
            id=row["id"], run_id=row["run_id"], ref_arch_id=row["ref_arch_id"], n_done=row["n_done"],
            baseline_ms=row["baseline_ms"], median_ms=row["median_ms"], drift_rel=row["drift_rel"],
            exceeded=bool(row["exceeded"]), created_at=row["created_at"],
        )  # fmt: skip


@dataclass(frozen=True)
class DeviceSummary:
    """Per device: its architectures, rows, unstable rows and the median of its newest per-architecture medians."""

    device: str
    fingerprint: str
    n_architectures: int
    n_measurements: int
    median_of_medians_ms: float | None
    n_unstable: int


@dataclass(frozen=True)
class StoreSummary:
    path: str
    schema_version: int
    counts: Mapping[str, int]  # table name -> rows
    per_device: tuple[DeviceSummary, ...]
