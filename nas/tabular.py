"""Tabular benchmarks: NAS-Bench-201 accuracy + latency and FBNet latency, read from CSV.

Only ``csv``, ``gzip`` and numpy are used so that reading a table never pulls in
pandas. The bundled copies live in ``nas/data`` (provenance in its README.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwprof.errors import ConfigError, DataError, InvalidArchitecture
from predictors.data import read_latency_table

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace

DATA_DIR = Path(__file__).resolve().parent / "data"
NB201_NUM_ARCHS = 15625
# Accuracy key -> CSV column, in the benchmark's dataset names.
NB201_ACCURACY_COLUMNS = {"cifar10": "c10_acc", "cifar100": "c100_acc", "ImageNet16-120": "in16_acc"}


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


def read_latency_csv(path: str | Path) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a benchmark-style CSV: an ``arch`` (or ``ops``) column, ``lat_<device>_ms`` columns, numbers.

    Returns (architecture strings, latency by device, other numeric columns by name),
    arrays as read-only float64 in file order; the one reader is
    :func:`predictors.data.read_latency_table`.
    """
    table = read_latency_table(path)
    return list(table.archs), dict(table.latency_ms), dict(table.other)


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
    archs, order = _in_index_order(path, archs, other)
    accuracy = _reorder({k: other[c] for k, c in NB201_ACCURACY_COLUMNS.items()}, order)
    return NB201Table(archs=archs, accuracy=accuracy, latency_ms=_reorder(latency, order))


def _load_fbnet(path: Path) -> FBNetTable:
    archs, latency, other = read_latency_csv(path)
    archs, order = _in_index_order(path, archs, other)
    return FBNetTable(archs=archs, latency_ms=_reorder(latency, order))


_bundled_nb201 = functools.cache(lambda: _load_nb201(DATA_DIR / "nb201.csv.gz"))
_bundled_fbnet = functools.cache(lambda: _load_fbnet(DATA_DIR / "fbnet.csv.gz"))
