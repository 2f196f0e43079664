"""Source devices: measured latency tables, and the *source bank* distilled from them.

A :class:`SourceLatencies` is a table (architectures x devices) from a CSV, a
store or arrays. A :class:`SourceBank` is one ridge model per source device
on architecture features, fitted in closed form on such a table: it gives the
source devices' latency of *any* architecture of the space, not only the
measured ones, smooths their measurement noise, and is small enough to ship
as "a saved transfer model" (``bank.json`` + ``bank.npz``). Every few-shot
method starts from a bank, so the same code serves all three kinds of source.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from hwprof import __version__
from hwprof.errors import DataError, HwprofError, PersistenceError
from predictors.base import FLOOR_FRACTION, arch_specs, check_X
from predictors.linear import ridge_fit
from predictors.schema import FeatureSchema, featurizer_for_schema

if TYPE_CHECKING:
    from hwprof.store import Store
    from predictors.features.encoding import ArchFeaturizer

BANK_FORMAT_VERSION = 1
BANK_FILE = "bank.json"
MIN_SOURCE_ARCHS = 20


@dataclass(frozen=True, eq=False)
class SourceLatencies:
    """Measured latency (ms) of the same architectures on several source devices."""

    archs: tuple[str, ...]
    devices: tuple[str, ...]
    latency_ms: np.ndarray  # (n_archs, n_devices)

    def __post_init__(self) -> None:
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        if lat.ndim != 2 or lat.shape != (len(self.archs), len(self.devices)):
            raise DataError(
                f"source latencies of shape {lat.shape} do not match {len(self.archs)} architectures x {len(self.devices)} devices"
            )
        if not self.devices:
            raise DataError("no source devices; expected at least one")
        if len(set(self.devices)) != len(self.devices):
            raise DataError(f"source devices repeat: {sorted(self.devices)}")
        bad = ~np.isfinite(lat) | (lat <= 0)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f"source latency of {self.archs[r]!r} on {self.devices[c]!r} is {lat[r, c]}; expected finite positive ms"
            )
        lat.flags.writeable = False
        object.__setattr__(self, "latency_ms", lat)

    @classmethod
    def from_columns(
        cls,
        archs: Sequence[str],
        latency_by_device: Mapping[str, Any],
        *,
        devices: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> "SourceLatencies":
        """From columns such as those of :func:`predictors.data.read_latency_table` (devices default: all but ``exclude``)."""
        names = list(devices) if devices is not None else list(latency_by_device)
        unknown = [d for d in [*names, *exclude] if d not in latency_by_device]
        if unknown:
            raise DataError(f"unknown source device(s) {unknown}; available: {', '.join(latency_by_device)}")
        names = [d for d in names if d not in set(exclude)]
        if not names:
            raise DataError("every source device was excluded; expected at least one left")
        lat = np.column_stack([np.asarray(latency_by_device[d], dtype=np.float64) for d in names])
        return cls(tuple(arch_specs(archs)), tuple(names), lat)

    @classmethod
    def from_store(
        cls,
        store: "Store",
        *,
        space: str | None = None,
        devices: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
    ) -> "SourceLatencies":
        """The architectures measured on every chosen device of a store (median latency per architecture)."""
        names = list(devices) if devices is not None else store.measured_devices()
        names = [d for d in names if d not in set(exclude)]
        if not names:
            raise DataError("the store has no source devices left after exclusions; expected at least one")
        per_device = {d: store.latencies(d, space) for d in names}
        empty = [d for d, v in per_device.items() if not v]
        if empty:
            raise DataError(f"no measurements for source device(s) {empty} in the store")
        common = set.intersection(*(set(v) for v in per_device.values()))
        if len(common) < MIN_SOURCE_ARCHS:
            raise DataError(
                f"only {len(common)} architectures are measured on all source devices {names}; expected at least {MIN_SOURCE_ARCHS}"
            )
        archs = sorted(common)
        lat = np.array([[per_device[d][a] for d in names] for a in archs], dtype=np.float64)
        return cls(tuple(archs), tuple(names), lat)

    def select(self, devices: Sequence[str]) -> "SourceLatencies":
        missing = [d for d in devices if d not in self.devices]
        if missing:
            raise DataError(f"unknown source device(s) {missing}; available: {', '.join(self.devices)}")
        cols = [self.devices.index(d) for d in devices]
        return SourceLatencies(self.archs, tuple(devices), self.latency_ms[:, cols])

    def without(self, devices: Sequence[str]) -> "SourceLatencies":
        return self.select([d for d in self.devices if d not in set(devices)])

    def content_sha256(self) -> str:
        """Hash of the architectures, devices and latencies: what a pretrained model learned from."""
        h = hashlib.sha256()
        h.update("\n".join(self.archs).encode())
        h.update(b"\0" + "\n".join(self.devices).encode() + b"\0")
        h.update(np.ascontiguousarray(self.latency_ms, dtype="<f8").tobytes())
        return h.hexdigest()

    def live_equivalent(self, space: str) -> tuple["SourceLatencies", int]:
        """Each row described by the work its exported network really does, and how many rows changed.

        hwprof's exporters drop operations whose output feeds nothing (in NB201,
        the edges into a node that reaches the output only through ``none``
        edges); published tables were measured on networks that keep them. For
        a device measured through hwprof, architecture ``a`` costs what the
        sources measured for ``space.live_equivalent(a)``: this table gives
        each row the latencies of that architecture's row (kept as measured
        when the table lacks it). A space without ``live_equivalent`` has no
        dead operations: the table is returned unchanged.
        """
        from hwprof import registry

        mapper = getattr(registry.get_space(space), "live_equivalent", None)
        if mapper is None:
            return self, 0
        from hwprof.types import Architecture

        row = {a: i for i, a in enumerate(self.archs)}
        target = [row.get(mapper(Architecture(space, a)).spec, i) for i, a in enumerate(self.archs)]
        changed = int(sum(t != i for i, t in enumerate(target)))
        if not changed:
            return self, 0
        return SourceLatencies(self.archs, self.devices, self.latency_ms[np.asarray(target)]), changed


def standardized_log(latency_ms: np.ndarray) -> np.ndarray:
    """Per-column standardized log latency: devices become comparable in shape, not in scale."""
    logs = np.log(np.asarray(latency_ms, dtype=np.float64))
    std = logs.std(axis=0)
    return (logs - logs.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)


class SourceBank:
    """One ridge model per source device (milliseconds, additive) on architecture features."""

    def __init__(self, schema: FeatureSchema, devices: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                 floor_ms: np.ndarray, alpha: float, n_archs: int, data_sha256: str) -> None:
        self.schema = schema
        self.devices = tuple(devices)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.floor_ms = np.asarray(floor_ms, dtype=np.float64)
        self.alpha = float(alpha)
        self.n_archs = int(n_archs)
        self.data_sha256 = data_sha256
        d = len(self.devices)
        if self.coef.shape != (schema.width, d) or self.intercept.shape != (d,) or self.floor_ms.shape != (d,):
            raise DataError(
                f"source bank arrays {self.coef.shape}/{self.intercept.shape} do not match {schema.width} features x {d} devices"
            )

    @classmethod
    def fit(cls, sources: SourceLatencies, featurizer: "ArchFeaturizer", alpha: float = 1.0) -> "SourceBank":
        """Ridge per device on the featurized source architectures."""
        if len(sources.archs) < MIN_SOURCE_ARCHS:
            raise DataError(f"need at least {MIN_SOURCE_ARCHS} source architectures, got {len(sources.archs)}")
        X = featurizer.transform(sources.archs)
        coef, intercept = ridge_fit(X, sources.latency_ms, alpha)
        h = hashlib.sha256()
        h.update("\n".join(sources.archs).encode())
        h.update(np.ascontiguousarray(sources.latency_ms, dtype="<f8").tobytes())
        # Ridge can extrapolate below zero; latency predictions are floored at a fraction of the fastest measured.
        floor = FLOOR_FRACTION * sources.latency_ms.min(axis=0)
        return cls(featurizer.schema, sources.devices, coef, intercept, floor, alpha, len(sources.archs), h.hexdigest())

    @property
    def featurizer(self) -> "ArchFeaturizer":
        return featurizer_for_schema(self.schema)  # type: ignore[return-value]

    def predict(self, X: Any) -> np.ndarray:
        """Source latencies (n, n_devices) in ms of feature rows X."""
        X = check_X(X, self.schema.width)
        return np.maximum(X @ self.coef + self.intercept, self.floor_ms)

    def predict_archs(self, archs: Sequence[str]) -> np.ndarray:
        return self.predict(self.featurizer.transform(archs))

    def without(self, devices: Sequence[str]) -> "SourceBank":
        keep = [i for i, d in enumerate(self.devices) if d not in set(devices)]
        if not keep:
            raise DataError("every source device was excluded from the bank; expected at least one left")
        return SourceBank(self.schema, [self.devices[i] for i in keep], self.coef[:, keep], self.intercept[keep],
                          self.floor_ms[keep], self.alpha, self.n_archs, self.data_sha256)

    # --- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            np.savez(directory / "bank.npz", coef=self.coef, intercept=self.intercept, floor_ms=self.floor_ms)
            meta = {
                "format_version": BANK_FORMAT_VERSION,
                "kind": "source-bank",
                "hwprof_version": __version__,
                "devices": list(self.devices),
                "feature_schema": self.schema.to_json(),
                "alpha": self.alpha,
                "training_data": {"sha256": self.data_sha256, "n_archs": self.n_archs},
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            (directory / BANK_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise PersistenceError(f"cannot write source bank to {str(directory)!r}: {exc.strerror or exc}") from None
        return directory / BANK_FILE

    @classmethod
    def load(cls, directory: str | Path) -> "SourceBank":
        directory = Path(directory)
        path = directory / BANK_FILE
        if not path.is_file():
            raise PersistenceError(f"no source bank at {str(directory)!r}: {BANK_FILE} is missing")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PersistenceError(f"{path} is corrupt: not valid JSON ({exc})") from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise PersistenceError(f"{path} is corrupt: format_version is {version!r}, expected an integer")
        if version > BANK_FORMAT_VERSION:
            raise PersistenceError(
                f"{path} has format version {version}, newer than this hwprof supports ({BANK_FORMAT_VERSION}); upgrade hwprof"
            )
        try:
            schema = FeatureSchema.from_json(meta["feature_schema"])
            featurizer_for_schema(schema)
            with np.load(directory / "bank.npz", allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("coef", "intercept", "floor_ms")}
            return cls(schema, meta["devices"], arrays["coef"], arrays["intercept"], arrays["floor_ms"],
                       meta["alpha"], meta["training_data"]["n_archs"], meta["training_data"]["sha256"])
        except KeyError as exc:
            raise PersistenceError(f"source bank {str(directory)!r} is corrupt: missing {exc}") from None
        except (OSError, ValueError, HwprofError) as exc:
            raise PersistenceError(f"source bank {str(directory)!r} is unusable: {exc}") from None
