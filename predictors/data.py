"""Latency data for training and evaluating predictors, and the one reader of each latency file format.

Sources: a device's measurements in a store, one ``lat_<device>_ms`` column of
a benchmark CSV (:func:`read_latency_table`), or a file of few-shot samples,
rows ``arch,latency_ms`` (:func:`read_latency_samples`). Every loader
validates what it reads (finite positive milliseconds, one space, enough rows)
and says where a bad value came from, so callers can trust the arrays they get.
Other readers of these formats (the tabular benchmarks and the MODNAS reference
latencies) call the readers here instead of parsing the files again.
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError
from hwprof.store import Store
from hwprof.types import Architecture

LAT_PREFIX, LAT_SUFFIX = "lat_", "_ms"
ARCH_COLUMNS = ("arch", "ops")  # the architecture column of a benchmark CSV, first match wins
PLAIN_LATENCY = "latency_ms"  # an unnamed device's latency column (``arch,latency_ms`` files)
SAMPLES_HEADER = ("arch", PLAIN_LATENCY)


# --- names of latency columns ----------------------------------------------------------------------


def latency_column(device: str) -> str:
    """``titanx_1`` -> ``lat_titanx_1_ms``, the column of a device in a benchmark CSV."""
    return f"{LAT_PREFIX}{device}{LAT_SUFFIX}"


def column_device(column: str) -> str | None:
    """``lat_titanx_1_ms`` -> ``titanx_1``; None for a column that is not a latency column."""
    name = column.strip()
    if name.startswith(LAT_PREFIX) and name.endswith(LAT_SUFFIX) and len(name) > len(LAT_PREFIX + LAT_SUFFIX):
        return name[len(LAT_PREFIX) : -len(LAT_SUFFIX)]
    return None


def target_device(target: str) -> str:
    """The device of a latency column given either way: ``lat_titanx_1_ms`` or ``titanx_1`` -> ``titanx_1``."""
    name = column_device(target) or target.strip()
    if not name:
        raise ConfigError(f"--target must name a latency column such as 'lat_titanx_1_ms', got {target!r}")
    return name


# --- benchmark tables: arch + lat_<device>_ms columns ----------------------------------------------


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """A benchmark-style CSV: architecture strings, latency columns by device, other numeric columns by name.

    Arrays are read-only float64 in file order.
    """

    archs: tuple[str, ...]
    latency_ms: dict[str, np.ndarray]
    other: dict[str, np.ndarray]
    lines: tuple[int, ...] = ()  # the file line of each architecture (comments and blank lines skipped)

    @property
    def devices(self) -> list[str]:
        return list(self.latency_ms)

    def column(self, target: str, where: str) -> tuple[str, np.ndarray]:
        """(device, latencies) of ``target`` given as ``lat_<device>_ms`` or ``<device>``."""
        device = target_device(target)
        if device not in self.latency_ms:
            known = ", ".join(latency_column(d) for d in self.latency_ms)
            raise DataError(f"{where} has no latency column {latency_column(device)!r}; it has {known}")
        return device, self.latency_ms[device]


def read_csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based file line, fields) of each CSV row of ``path`` (``.gz`` unpacked), the way every latency file is read:
    a UTF-8 byte-order mark (as Excel writes) dropped, blank lines and ``#`` comment lines skipped.

    OSError, UnicodeDecodeError, EOFError and csv.Error reach the caller, which names the file.
    """
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        return [(reader.line_num, r) for r in reader if any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]


def _to_float(path: Path, column: str, values: tuple[str, ...], lines: Sequence[int]) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        row, value = next((i, v) for i, v in enumerate(values) if not _is_number(v))
        raise DataError(f"{path.name}: column {column!r} line {lines[row]} holds {value!r}; expected a finite number") from None
    nonfinite = np.flatnonzero(~np.isfinite(arr))
    if nonfinite.size:
        row = int(nonfinite[0])
        raise DataError(f"{path.name}: column {column!r} line {lines[row]} holds {values[row]!r}; expected a finite number")
    arr.flags.writeable = False
    return arr


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_unique(path: Path, archs: Sequence[str], lines: Sequence[int]) -> None:
    """DataError naming both lines when an architecture string appears twice (which latency would count?)."""
    seen: dict[str, int] = {}
    for arch, line in zip(archs, lines):
        if arch in seen:
            raise DataError(
                f"{path.name}: duplicate architecture {arch!r} on lines {seen[arch]} and {line}; expected each architecture once"
            )
        seen[arch] = line


def read_latency_table(path: str | Path, *, plain_latency: bool = False) -> LatencyTable:
    """Read a benchmark-style CSV (``.csv`` or ``.csv.gz``): an ``arch`` (or ``ops``) column, ``lat_<device>_ms`` columns.

    Every column except the architecture column must hold finite numbers;
    architecture strings are stripped of surrounding whitespace and appear once.
    Blank lines, ``#`` comment lines and a byte-order mark are skipped (:func:`read_csv_rows`).
    ``plain_latency`` also accepts a table whose only latency column is an
    unnamed device's ``latency_ms`` (kept in ``other``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"benchmark CSV not found: {str(path)!r}; expected an existing .csv or .csv.gz file")
    try:
        numbered = read_csv_rows(path)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {str(path)!r} as CSV ({e}); expected a UTF-8 .csv or gzip .csv.gz file") from None
    if not numbered:
        raise DataError(f"{path.name} is empty; expected a header line and one row per architecture")
    header = [h.strip() for h in numbered[0][1]]
    body = [r for _, r in numbered[1:]]
    lines = tuple(line for line, _ in numbered[1:])
    if not body:
        raise DataError(f"{path.name} has a header but no rows; expected one row per architecture")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path.name}: duplicate columns {dup}; expected each column name once")
    arch_col = next((c for c in ARCH_COLUMNS if c in header), None)
    if arch_col is None:
        raise DataError(f"{path.name} has columns {header}; expected an 'arch' or 'ops' column")
    for line, r in zip(lines, body):
        if len(r) != len(header):
            raise DataError(f"{path.name}: line {line} has {len(r)} fields; expected {len(header)} like the header")
    columns = dict(zip(header, zip(*body)))
    archs = tuple(a.strip() for a in columns.pop(arch_col))
    empty = next((i for i, a in enumerate(archs) if not a), None)
    if empty is not None:
        raise DataError(f"{path.name}: line {lines[empty]} has an empty {arch_col!r}; expected an architecture string")
    _check_unique(path, archs, lines)
    latency: dict[str, np.ndarray] = {}
    other: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        arr = _to_float(path, name, values, lines)
        device = column_device(name)
        if device is not None:
            latency[device] = arr
        else:
            other[name] = arr
    if not latency and not (plain_latency and PLAIN_LATENCY in other):
        plain = f" or one {PLAIN_LATENCY!r} column" if plain_latency else ""
        raise DataError(f"{path.name} has no latency columns; expected columns named like 'lat_<device>_ms'{plain}")
    return LatencyTable(archs, latency, other, lines)


# --- few-shot samples: arch,latency_ms rows ---------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LatencySamples:
    """Rows of an ``arch,latency_ms`` file: specs as written, latencies (ms), and the line of each row."""

    archs: tuple[str, ...]
    latency_ms: np.ndarray
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.archs)


def read_latency_samples(path: str | Path) -> LatencySamples:
    """Read CSV rows ``arch,latency_ms`` (blank lines and ``#`` comments skipped).

    The header is optional but, when present, must be exactly ``arch,latency_ms``:
    a first row whose latency is not a number is a header, and any other header
    (``arch,lat_ms``) is a DataError rather than a sample. Every row has two
    fields, a finite positive latency, and each architecture appears once.
    """
    path = Path(path)
    expected = ",".join(SAMPLES_HEADER)
    try:
        rows = read_csv_rows(path)
    except OSError as exc:
        raise DataError(f"cannot read samples file {str(path)!r}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DataError(f"cannot read {str(path)!r} as a UTF-8 CSV: {exc}") from None
    if rows:
        first = rows[0][1]
        if len(first) < 2 or not _is_number(first[1]):  # not a sample: it must be the header
            if tuple(c.strip().lower() for c in first) != SAMPLES_HEADER:
                raise DataError(
                    f"{path.name}: the first line {','.join(first)!r} is neither the header {expected!r} nor a sample; "
                    f"expected the header {expected!r} or no header"
                )
            rows = rows[1:]
    if not rows:
        raise DataError(f"{path.name} holds no samples; expected CSV rows {expected!r}")
    archs, values, lines = [], [], []
    for line, row in rows:
        if len(row) != 2:
            raise DataError(f"{path.name}: line {line} has {len(row)} fields; expected {expected!r}")
        try:
            value = float(row[1])
        except ValueError:
            raise DataError(f"{path.name}: line {line} has latency {row[1]!r}; expected a number of milliseconds") from None
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"{path.name}: line {line} has latency {value}; expected finite positive milliseconds")
        arch = row[0].strip()
        if not arch:
            raise DataError(f"{path.name}: line {line} has an empty architecture; expected {expected!r}")
        archs.append(arch)
        values.append(value)
        lines.append(line)
    first: dict[str, int] = {}
    for arch, line in zip(archs, lines):
        if arch in first:
            raise DataError(
                f"{path.name}: architecture {arch!r} appears more than once (lines {first[arch]} and {line}); "
                "give one latency per architecture"
            )
        first[arch] = line
    return LatencySamples(tuple(archs), np.array(values, dtype=np.float64), tuple(lines))


# --- one device's latencies -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LatencyData:
    """Architectures of one space with one measured latency each, on one device."""

    archs: tuple[str, ...]
    latency_ms: np.ndarray
    space: str
    device: str
    source: str  # where it came from, for messages and metadata
    db: Path | None = None  # the store it was read from (its measurements' device settings live there)
    lines: tuple[int, ...] | None = None  # the file line of each architecture, to name a bad one; None for a store

    def __len__(self) -> int:
        return len(self.archs)

    def subset(self, idx: Sequence[int] | np.ndarray) -> LatencyData:
        idx = np.asarray(idx, dtype=np.int64)
        archs = tuple(self.archs[i] for i in idx)
        lines = None if self.lines is None else tuple(self.lines[i] for i in idx)
        return LatencyData(archs, self.latency_ms[idx], self.space, self.device, self.source, self.db, lines)


def check_latencies(archs: Sequence[str], values: Any, where: str) -> np.ndarray:
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


def resolve_space(archs: Sequence[str], space: str | None, where: str = "", lines: Sequence[int] | None = None) -> str:
    """``space``, or the registered space whose parser accepts ``archs``.

    When the architectures come from a file, ``where`` and ``lines`` (one per
    architecture) let an error name the line of the one that is wrong.
    """
    from predictors.features.encoding import ArchitectureError, infer_space

    if space is not None:
        return space
    try:
        return infer_space(list(archs))
    except ArchitectureError as exc:
        if lines is None:
            raise
        raise DataError(f"{where}: {exc.at_line(lines[exc.index])}; fix it or pass --space") from None


def describe_bad_architecture(exc: DataError, lines: Sequence[int] | None) -> str:
    """``exc`` as text, a bad architecture named by its line in the file it came from (when ``lines`` are known)."""
    from predictors.features.encoding import ArchitectureError

    if isinstance(exc, ArchitectureError) and lines is not None:
        return exc.at_line(lines[exc.index])
    return str(exc)


def check_architectures(data: LatencyData) -> LatencyData:
    """``data`` when every architecture parses in its space; else a DataError naming the bad one (by line for a file)."""
    from predictors.features.encoding import ArchFeaturizer

    try:
        ArchFeaturizer(data.space, "onehot").choices(data.archs)
    except DataError as exc:
        why = describe_bad_architecture(exc, data.lines)
        raise DataError(f"{data.source} does not hold {data.space} architectures: {why}") from None
    return data


def open_store(db: str | Path) -> Store:
    """An existing store (never creates one: a typo in --db must not yield an empty database)."""
    return Store(db, create=False)


def store_spaces(store: Store, device: str | None = None) -> list[str]:
    """The spaces of the newest measurements (of ``device``, or of every device)."""
    return store.spaces(device)


def default_device(db: str | Path) -> str:
    """The store's only measured device (ConfigError when there are several or none)."""
    store = open_store(db)
    try:
        names = store.measured_devices()
    finally:
        store.close()
    if len(names) != 1:
        have = ", ".join(names) if names else "none"
        raise ConfigError(f"choose the device with --device; {db} holds measurements of {len(names)} devices ({have})")
    return names[0]


def from_store(db: str | Path, device: str, space: str | None = None, calibrated: bool = False) -> LatencyData:
    """The newest measurement's primary latency (``latency_ms``, the pooled minimum by default, see
    :mod:`hwprof.estimators`) per architecture of ``device`` (one space; inferred when it is the only one).

    ``calibrated`` takes the reference-calibrated latency (``corrected_ms``) of
    rows profiled with ``--calibrate``; other rows keep their primary latency. A
    store with no calibrated row at all is a ConfigError rather than raw data
    passed off as calibrated.
    """
    db = Path(db)
    store = open_store(db)
    try:
        latencies = store.latencies(device, space, corrected=calibrated)  # StoreError when the device has no measurements
        spaces = store_spaces(store, device)
        newest = {r.spec: r for r in store.latency_records(device, space)} if calibrated else {}
    finally:
        store.close()
    if newest and all(r.corrected_ms is None for r in newest.values()):
        raise ConfigError(
            f"--calibrated: none of the {len(newest)} {device!r} measurements in {db} has a calibrated latency (they were "
            "profiled with --no-calibrate or --rounds 1, so no reference models were timed); drop --calibrated, "
            "or profile again with calibration (the default, --rounds 2 or more)"
        )
    if space is None:
        if len(spaces) > 1:
            raise ConfigError(f"{db} holds {device!r} measurements of spaces {', '.join(spaces)}; choose one with --space")
        space = spaces[0]
    if not latencies:
        raise DataError(f"{db} has no measurements of space {space!r} on {device!r}; it has spaces {', '.join(spaces)}")
    archs = tuple(sorted(latencies))
    values = np.array([latencies[a] for a in archs], dtype=np.float64)
    source = f"db:{db}" + (" (calibrated)" if calibrated else "")
    return LatencyData(archs, check_latencies(archs, values, str(db)), space, device, source, db)


def store_device_settings(db: str | Path, device: str, space: str, archs: Sequence[str]) -> dict[str, Any]:
    """Device settings of the stored measurements of ``archs`` (the newest row's); ConfigError when they differ.

    A predictor that re-runs the measured networks (``ops``) must run them the
    way they were measured, which is only defined for one setting.
    """
    store = open_store(db)
    try:
        wanted = [Architecture(space, a).arch_id for a in archs]
        rows = store.measurements(device=device, space=space, latest_only=True, arch_ids=wanted)
    finally:
        store.close()
    hashes = {r.settings_hash for r in rows}
    if len(hashes) > 1:
        raise ConfigError(
            f"{db} holds {device!r} measurements under {len(hashes)} different settings; "
            "the predictor re-runs them and needs one setting (profile again with one)"
        )
    return dict(rows[-1].settings) if rows else {}


def _default_target(table: LatencyTable, path: Path) -> str:
    """The CSV's only latency column (``lat_<device>_ms`` or ``latency_ms``), else a ConfigError asking for --target."""
    columns = [latency_column(d) for d in table.latency_ms] + ([PLAIN_LATENCY] if PLAIN_LATENCY in table.other else [])
    if len(columns) != 1:
        raise ConfigError(f"--csv needs --target, the latency column: {path.name} has {', '.join(columns)}")
    return columns[0]


def csv_label(path: Path) -> str:
    """The device label of a file of unnamed latencies: its name without ``.csv``/``.gz`` (as ``adapt --samples`` does)."""
    name = path.name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name or path.name


def from_csv(path: str | Path, target: str | None, space: str | None = None, label: str | None = None) -> LatencyData:
    """One latency column of a CSV such as nb201.csv.gz (``arch`` + ``lat_<device>_ms`` columns).

    ``target`` defaults to the only latency column. A column ``latency_ms``
    (an ``arch,latency_ms`` file) holds an unnamed device's latencies: the data
    is labelled ``label``, by default the file's name without ``.csv``.
    """
    path = Path(path)
    table = read_latency_table(path, plain_latency=True)
    target = target if target is not None else _default_target(table, path)
    if target.strip() == PLAIN_LATENCY:
        if PLAIN_LATENCY not in table.other:
            raise DataError(f"{path.name} has no column {PLAIN_LATENCY!r}; it has {', '.join(map(latency_column, table.latency_ms))}")
        device, values = (label or csv_label(path)), table.other[PLAIN_LATENCY]
    else:
        device, values = table.column(target, path.name)
    space = resolve_space(table.archs, space, path.name, table.lines)
    values = check_latencies(table.archs, values, path.name)
    return LatencyData(table.archs, values, space, device, f"csv:{path}", lines=table.lines)


def read_samples(path: str | Path, space: str | None, device: str) -> LatencyData:
    """Few-shot samples of ``device``: a file of ``arch,latency_ms`` rows (see :func:`read_latency_samples`)."""
    path = Path(path)
    samples = read_latency_samples(path)
    space = resolve_space(samples.archs, space, path.name, samples.lines)
    return LatencyData(samples.archs, samples.latency_ms, space, device, f"samples:{path}", lines=samples.lines)


def check_data_source(db: Path | None, csv_path: Path | None, target: str | None, what: str) -> None:
    """Exactly one of a store or a CSV (``what`` names the command in the message)."""
    if (db is None) == (csv_path is None):
        raise ConfigError(f"{what} needs exactly one data source: --db STORE or --csv FILE [--target COLUMN]")
    if db is not None and target is not None:
        raise ConfigError("--target applies to --csv; with --db choose the device with --device")


def load_latency_data(
    db: Path | None = None,
    csv_path: Path | None = None,
    *,
    device: str | None = None,
    target: str | None = None,
    space: str | None = None,
    calibrated: bool = False,
    label: str | None = None,
) -> LatencyData:
    """A device's latencies from a store (``device`` defaults to its only one) or from a CSV column ``target``
    (default: its only latency column).

    With a CSV, ``device`` must agree with a ``lat_<device>_ms`` column and names
    the device of a plain ``latency_ms`` column (default ``label``, else the file's name).
    """
    check_data_source(db, csv_path, target, "loading latency data")
    if db is not None:
        return from_store(db, device or default_device(db), space, calibrated)
    if calibrated:
        raise ConfigError("--calibrated applies to a store (--db): a CSV holds one latency per architecture")
    assert csv_path is not None
    data = from_csv(csv_path, target, space, label=device or label)
    if device is not None and device != data.device:
        raise ConfigError(f"--device {device!r} contradicts --target {target or latency_column(data.device)!r} "
                          f"(device {data.device!r}); give one of them")
    return data


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

