"""Latency data for the predictor commands: a device's measurements from a store, a column of a
benchmark CSV, a file of few-shot samples, or source devices for transfer.

Every loader validates what it reads (finite positive milliseconds, one space,
enough rows) and says where a bad value came from, so the commands can trust
the arrays they get.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError
from hwprof.store import Store

LAT_PREFIX, LAT_SUFFIX = "lat_", "_ms"


@dataclass(frozen=True, eq=False)
class LatencyData:
    """Architectures of one space with one measured latency each, on one device."""

    archs: tuple[str, ...]
    latency_ms: np.ndarray
    space: str
    device: str
    source: str  # where it came from, for messages and metadata

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "LatencyData":
        idx = np.asarray(idx, dtype=np.int64)
        return LatencyData(tuple(self.archs[i] for i in idx), self.latency_ms[idx], self.space, self.device, self.source)


def check_latencies(archs: Sequence[str], values: np.ndarray, where: str) -> np.ndarray:
    """Finite positive milliseconds, else a DataError naming the architecture."""
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{where}: latency of {archs[i]!r} is {values[i]}; expected finite positive milliseconds "
            f"({bad.size} bad value(s))"
        )
    return values


def target_device(target: str) -> str:
    """``lat_titanx_1_ms`` or ``titanx_1`` -> ``titanx_1``."""
    name = target.strip()
    if name.startswith(LAT_PREFIX) and name.endswith(LAT_SUFFIX) and len(name) > len(LAT_PREFIX + LAT_SUFFIX):
        name = name[len(LAT_PREFIX) : -len(LAT_SUFFIX)]
    if not name:
        raise ConfigError(f"--target must name a latency column such as 'lat_titanx_1_ms', got {target!r}")
    return name


def open_store(db: Path) -> Store:
    """An existing store (never creates one: a typo in --db must not yield an empty database)."""
    return Store(db, create=False)


def store_spaces(store: Store, device: str) -> list[str]:
    return sorted({r["space"] for r in store.measurements(device=device, latest_only=True)})


def from_store(db: Path, device: str, space: str | None = None, calibrated: bool = False) -> LatencyData:
    """The newest median latency per architecture of ``device`` (one space; inferred when it is the only one).

    ``calibrated`` takes the reference-calibrated latency (``corrected_ms``) of
    rows profiled with ``--calibrate``; other rows keep their raw median.
    """
    store = open_store(db)
    try:
        latencies = store.latencies(device, space, corrected=calibrated)  # StoreError when the device has no measurements
        spaces = store_spaces(store, device)
    finally:
        store.close()
    if space is None:
        if len(spaces) > 1:
            raise ConfigError(f"{db} holds {device!r} measurements of spaces {', '.join(spaces)}; choose one with --space")
        space = spaces[0]
    if not latencies:
        raise DataError(f"{db} has no measurements of space {space!r} on {device!r}; it has spaces {', '.join(spaces)}")
    archs = tuple(sorted(latencies))
    values = np.array([latencies[a] for a in archs], dtype=np.float64)
    source = f"db:{db}" + (" (calibrated)" if calibrated else "")
    return LatencyData(archs, check_latencies(archs, values, str(db)), space, device, source)


def read_table(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Architectures and latency columns (by device name) of a benchmark-style CSV."""
    from nas.tabular import read_latency_csv

    archs, latency, _ = read_latency_csv(path)
    return [a.strip() for a in archs], latency


def resolve_space(archs: Sequence[str], space: str | None) -> str:
    from predictors.features.encoding import infer_space

    return space if space is not None else infer_space(list(archs))


def from_csv(path: Path, target: str, space: str | None = None) -> LatencyData:
    """One latency column of a CSV such as nb201.csv.gz (``arch`` + ``lat_<device>_ms`` columns)."""
    device = target_device(target)
    archs, latency = read_table(path)
    if device not in latency:
        known = ", ".join(f"lat_{d}_ms" for d in latency)
        raise DataError(f"{path.name} has no latency column 'lat_{device}_ms'; it has {known}")
    space = resolve_space(archs, space)
    values = check_latencies(archs, latency[device], path.name)
    return LatencyData(tuple(archs), values, space, device, f"csv:{path}")


def read_samples(path: Path, space: str | None, device: str) -> LatencyData:
    """Few-shot samples: CSV rows ``arch,latency_ms`` (a header line with those names is optional)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    except OSError as exc:
        raise DataError(f"cannot read samples file {str(path)!r}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {str(path)!r} as a UTF-8 CSV: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["arch", "latency_ms"]:
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path.name} holds no samples; expected CSV rows 'arch,latency_ms'")
    archs, values = [], []
    for i, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataError(f"{path.name}: sample {i} has {len(row)} fields; expected 'arch,latency_ms'")
        try:
            value = float(row[1])
        except ValueError:
            raise DataError(f"{path.name}: sample {i} has latency {row[1]!r}; expected a number of milliseconds") from None
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"{path.name}: sample {i} has latency {value}; expected finite positive milliseconds")
        archs.append(row[0].strip())
        values.append(value)
    if len(set(archs)) != len(archs):
        dup = next(a for a in archs if archs.count(a) > 1)
        raise DataError(f"{path.name}: architecture {dup!r} appears more than once; give one latency per architecture")
    space = resolve_space(archs, space)
    return LatencyData(tuple(archs), np.array(values), space, device, f"samples:{path}")


def split_indices(n: int, val_fraction: float, seed: int, n_train: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (train, validation) row indices; ``n_train`` fixes the training size instead."""
    if not (0.0 <= val_fraction < 1.0) or not math.isfinite(val_fraction):
        raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    if n_train is not None:
        if n_train < 1 or n_train > n:
            raise ConfigError(f"--n-train must be in 1..{n} (the number of measured architectures), got {n_train}")
        return np.sort(order[:n_train]), np.sort(order[n_train:])
    n_val = int(round(val_fraction * n))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
