"""Tabular benchmarks: NAS-Bench-201 accuracy + latency and FBNet latency, read from CSV.

Only ``csv``, ``gzip`` and numpy are used so that reading a table never pulls in
pandas. The bundled copies live in ``nas/data`` (provenance in its README.md).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwprof.errors import ConfigError, DataError, InvalidArchitecture

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

DATA_DIR = Path(__file__).resolve().parent / "data"
NB201_NUM_ARCHS = 15625
ARCH_COLUMNS = ("arch", "ops")
# Accuracy key -> CSV column, in the benchmark's dataset names.
NB201_ACCURACY_COLUMNS = {"cifar10": "c10_acc", "cifar100": "c100_acc", "ImageNet16-120": "in16_acc"}
_LAT_PREFIX, _LAT_SUFFIX = "lat_", "_ms"


@dataclass(frozen=True, eq=False)
class NB201Table:
    """NAS-Bench-201 rows in the official index order (row i = architecture index i).

    Arrays are read-only because the default table is cached and shared.
    """

    archs: list[str]
    accuracy: dict[str, np.ndarray]
    latency_ms: dict[str, np.ndarray]

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.archs)}

    def index_of(self, spec: str) -> int:
        try:
            return self._index[spec]
        except KeyError:
            raise InvalidArchitecture(
                f"architecture {spec!r} is not in the NAS-Bench-201 table; expected a string like "
                "'|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'"
            ) from None

    @property
    def devices(self) -> list[str]:
        return list(self.latency_ms)


@dataclass(frozen=True, eq=False)
class FBNetTable:
    """FBNet-space networks (22 layer choices joined by '|') with measured latency."""

    archs: list[str]
    latency_ms: dict[str, np.ndarray]

    @property
    def devices(self) -> list[str]:
        return list(self.latency_ms)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise DataError(f"benchmark CSV not found: {str(path)!r}; expected an existing .csv or .csv.gz file")
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, "r", newline="", encoding="utf-8")


def _to_float(path: Path, column: str, values: tuple[str, ...]) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        arr = None
    bad = None
    if arr is None:
        for row, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                bad = (row, v)
                break
    else:
        nonfinite = np.flatnonzero(~np.isfinite(arr))
        if nonfinite.size:
            bad = (int(nonfinite[0]), values[nonfinite[0]])
    if bad is not None:
        row, v = bad
        # +2: one header line, 1-based line numbers.
        raise DataError(
            f"{path.name}: column {column!r} line {row + 2} holds {v!r}; expected a finite number"
        )
    arr.flags.writeable = False
    return arr


def read_latency_csv(path: str | Path) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a benchmark-style CSV: an ``arch`` (or ``ops``) column, ``lat_<device>_ms`` columns, numbers.

    Returns (architecture strings, latency by device, other numeric columns by name),
    arrays as read-only float64 in file order. Every column except the architecture
    column must hold finite numbers.
    """
    path = Path(path)
    try:
        with _open_text(path) as f:
            rows = list(csv.reader(f))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {str(path)!r} as CSV ({e}); expected a UTF-8 .csv or gzip .csv.gz file") from None
    if not rows:
        raise DataError(f"{path.name} is empty; expected a header line and one row per architecture")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{path.name} has a header but no rows; expected one row per architecture")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path.name}: duplicate columns {dup}; expected each column name once")
    arch_col = next((c for c in ARCH_COLUMNS if c in header), None)
    if arch_col is None:
        raise DataError(f"{path.name} has columns {header}; expected an 'arch' or 'ops' column")
    for line, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DataError(f"{path.name}: line {line} has {len(r)} fields; expected {len(header)} like the header")
    columns = dict(zip(header, zip(*body)))
    archs = list(columns.pop(arch_col))
    empty = next((i for i, a in enumerate(archs) if not a.strip()), None)
    if empty is not None:
        raise DataError(f"{path.name}: line {empty + 2} has an empty {arch_col!r}; expected an architecture string")
    latency: dict[str, np.ndarray] = {}
    other: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        arr = _to_float(path, name, values)
        if name.startswith(_LAT_PREFIX) and name.endswith(_LAT_SUFFIX) and len(name) > len(_LAT_PREFIX + _LAT_SUFFIX):
            latency[name[len(_LAT_PREFIX) : -len(_LAT_SUFFIX)]] = arr
        else:
            other[name] = arr
    if not latency:
        raise DataError(f"{path.name} has no latency columns; expected columns named like 'lat_<device>_ms'")
    return archs, latency, other


def _in_index_order(path: Path, archs: list[str], columns: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray | None]:
    """Rows sorted by the ``idx`` column: (architectures, permutation or None when already in order)."""
    if "idx" not in columns:
        return archs, None
    idx = columns["idx"]
    order = np.argsort(idx, kind="stable")
    if not np.array_equal(idx[order], np.arange(len(archs))):
        raise DataError(f"{path.name}: column 'idx' is not a permutation of 0..{len(archs) - 1}")
    if np.array_equal(order, np.arange(len(archs))):
        return archs, None
    return [archs[i] for i in order], order


def _reorder(arrays: dict[str, np.ndarray], order: np.ndarray | None) -> dict[str, np.ndarray]:
    if order is None:
        return arrays
    out = {}
    for k, v in arrays.items():
        arr = v[order]
        arr.flags.writeable = False
        out[k] = arr
    return out


def load_nb201(path: str | Path | None = None) -> NB201Table:
    """NAS-Bench-201 table; ``None`` reads the bundled copy (cached after the first load)."""
    return _bundled_nb201() if path is None else _load_nb201(Path(path))


def nb201_table_for(space: "SearchSpace", path: str | Path | None = None, what: str = "this objective") -> NB201Table:
    """The NB201 table for an objective on ``space``; ConfigError for another space, which the table cannot score."""
    if space.name != "nb201":
        raise ConfigError(f"{what} reads the NAS-Bench-201 table, which only scores the nb201 space, not {space.name!r}")
    return load_nb201(path)


def load_fbnet(path: str | Path | None = None) -> FBNetTable:
    """FBNet-space latency table; ``None`` reads the bundled copy (cached after the first load)."""
    return _bundled_fbnet() if path is None else _load_fbnet(Path(path))


def _load_nb201(path: Path) -> NB201Table:
    archs, latency, other = read_latency_csv(path)
    missing = [c for c in NB201_ACCURACY_COLUMNS.values() if c not in other]
    if missing:
        raise DataError(f"{path.name} lacks accuracy columns {missing}; expected {list(NB201_ACCURACY_COLUMNS.values())}")
    if len(set(archs)) != len(archs):
        raise DataError(f"{path.name}: {len(archs) - len(set(archs))} duplicate architecture strings; expected each once")
    archs, order = _in_index_order(path, archs, other)
    accuracy = _reorder({k: other[c] for k, c in NB201_ACCURACY_COLUMNS.items()}, order)
    return NB201Table(archs=archs, accuracy=accuracy, latency_ms=_reorder(latency, order))


def _load_fbnet(path: Path) -> FBNetTable:
    archs, latency, other = read_latency_csv(path)
    archs, order = _in_index_order(path, archs, other)
    return FBNetTable(archs=archs, latency_ms=_reorder(latency, order))


_bundled_nb201 = functools.cache(lambda: _load_nb201(DATA_DIR / "nb201.csv.gz"))
_bundled_fbnet = functools.cache(lambda: _load_fbnet(DATA_DIR / "fbnet.csv.gz"))
