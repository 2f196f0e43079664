"""What ``hwprof report`` reads: each input path is recognised by its contents and loaded into a record.

Four kinds, each written by an existing command: a measurement store
(``hwprof profile``), a predictor directory (``hwprof train``), a search
output directory (``hwprof search -o DIR``) and a MODNAS directory or front
(``hwprof modnas train -o DIR``, ``hwprof modnas front --json FILE``). The
loaders keep what the report draws and nothing else; every refusal is a
one-line :class:`~hwprof.errors.HwprofError` naming the path.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwprof.errors import ConfigError, DataError, PersistenceError, StoreError
from hwprof.store import Store
from hwprof.store_records import DriftCheckRecord, RunRecord, StoreSummary

SQLITE_MAGIC = b"SQLite format 3\x00"
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
PREDICTOR_MARK = "predictor.json"
MODNAS_MARK = "modnas.json"
EXPECTED = (
    "expected a store (.db from `hwprof profile`), a predictor directory (`hwprof train -o DIR`), "
    "a search directory (`hwprof search -o DIR`), a MODNAS directory (`hwprof modnas train -o DIR`) "
    "or a MODNAS front (`hwprof modnas front --json FILE`)"
)


# --- records -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyGroup:
    """The newest latency of every architecture measured on one device, runtime, precision and setting."""

    device: str
    runtime: str  # "onnxruntime 1.18.0"
    precision: str
    estimator: str
    settings: Mapping[str, Any]
    specs: tuple[str, ...]
    latency_ms: tuple[float, ...]
    n_unstable: int

    @property
    def label(self) -> str:
        return f"{self.device} · {self.runtime} · {self.precision}"


@dataclass(frozen=True)
class StoreInput:
    path: Path
    summary: StoreSummary
    groups: tuple[LatencyGroup, ...]
    runs: tuple[RunRecord, ...]
    drift_checks: tuple[DriftCheckRecord, ...]
    unstable_specs: Mapping[str, tuple[str, ...]]  # device -> specs whose newest row is flagged unstable


@dataclass(frozen=True)
class HeldOut:
    archs: tuple[str, ...]
    measured_ms: tuple[float, ...]
    predicted_ms: tuple[float, ...]


@dataclass(frozen=True)
class PredictorInput:
    path: Path
    name: str
    device: str | None
    space: str | None
    n_train: int
    params: Mapping[str, Any]
    extra: Mapping[str, Any]
    created_at: str
    metrics: Any  # predictors.metrics.LatencyMetrics | None
    held_out: HeldOut | None
    held_out_missing: str  # why there is no scatter ("" when there is one)


@dataclass(frozen=True)
class SearchInput:
    path: Path
    results: tuple[Any, ...]  # nas.search.base.SearchResult, one per <algo>_seed<seed>.json


@dataclass(frozen=True)
class ModnasFront:
    """One device's front: a point per preference ray (latency in ms when the device's level is known)."""

    device: str
    latency: tuple[float, ...]
    latency_unit: str  # "ms" or "relative to the reference level"
    error_pct: tuple[float | None, ...]
    specs: tuple[str, ...]
    preference_accuracy: tuple[float, ...]


@dataclass(frozen=True)
class ModnasInput:
    path: Path
    accuracy_source: str
    mode: str
    fronts: tuple[ModnasFront, ...]
    train_devices: tuple[str, ...] = ()
    surrogate_quality: Mapping[str, Any] = field(default_factory=dict)


ReportInput = StoreInput | PredictorInput | SearchInput | ModnasInput


# --- detection -----------------------------------------------------------------------------------------


def detect_kind(path: str | Path) -> str:
    """``"store"``, ``"predictor"``, ``"search"``, ``"modnas"`` or ``"modnas-front"``; ConfigError for anything else.

    A directory may hold several kinds (a MODNAS model beside search results): this is the first of
    :func:`detect_kinds`, which names them all.
    """
    return detect_kinds(path)[0]


def detect_kinds(path: str | Path) -> tuple[str, ...]:
    """Every kind ``path`` holds: one for a file, one or more for a directory (``hwprof search -o DIR`` writes
    each algorithm's results beside the others, MODNAS's model included); ConfigError when it holds none."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"report input {str(path)!r} does not exist; {EXPECTED}")
    if path.is_dir():
        kinds = []
        if (path / PREDICTOR_MARK).is_file():
            kinds.append("predictor")
        if (path / MODNAS_MARK).is_file() or (path / "checkpoint.json").is_file():
            kinds.append("modnas")
        if search_result_files(path):
            kinds.append("search")
        if not kinds:
            raise ConfigError(f"{str(path)!r} is a directory with nothing hwprof report can read; {EXPECTED}")
        return tuple(kinds)
    return (_file_kind(path),)


def _file_kind(path: Path) -> str:
    head = _head(path)
    if head.startswith(SQLITE_MAGIC) or path.suffix.lower() in STORE_SUFFIXES:
        return "store"
    if path.suffix.lower() == ".json":
        doc = _read_json(path)
        if isinstance(doc, dict) and isinstance(doc.get("front"), list):
            return "modnas-front"
        if isinstance(doc, dict) and {"history", "pareto", "algorithm"} <= doc.keys():
            return "search"
    raise ConfigError(f"{str(path)!r} is not a file hwprof report can read; {EXPECTED}")


def load_input(path: str | Path, kind: str | None = None) -> ReportInput:
    """The record of one input, whatever its kind (``kind``: what :func:`detect_kind` said, to skip asking again)."""
    path = Path(path)
    kind = kind or detect_kind(path)
    if kind == "store":
        return load_store(path)
    if kind == "predictor":
        return load_predictor_dir(path)
    if kind == "search":
        return load_search(path)
    if kind == "modnas":
        return load_modnas_dir(path)
    return load_modnas_front(path)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"cannot read report input {str(path)!r}: {exc.strerror or exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{str(path)!r} is not readable JSON: {exc}") from None


def _check_finite(doc: Any, path: Path, field: str = "") -> None:
    """DataError naming the first NaN or infinity in ``doc``: hwprof writes non-finite numbers as null, so one in
    a result file means it was corrupted (Python's JSON reads NaN and Infinity literals without complaint)."""
    if isinstance(doc, float) and not math.isfinite(doc):
        raise DataError(f"{str(path)!r} is corrupt: {field or 'the document'} is {doc}; expected a finite number")
    if isinstance(doc, dict):
        for key, value in doc.items():
            _check_finite(value, path, f"{field}.{key}" if field else str(key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            _check_finite(value, path, f"{field}[{i}]")


def search_result_files(directory: Path) -> list[Path]:
    """The result JSONs of budgeted searches in ``directory`` (each beside its ``_history.csv``)."""
    return sorted(p for p in directory.glob("*_seed*.json") if p.with_name(f"{p.stem}_history.csv").is_file())


# --- store ------------------------------------------------------------------------------------------------


def load_store(path: Path) -> StoreInput:
    if path.is_file() and path.stat().st_size == 0:
        raise StoreError(f"{path} is empty, not an hwprof store; fill one with `hwprof profile --db {path}`")
    with Store(path, create=False) as store:
        summary = store.summary()
        runtimes = {d.id: _runtime(d.info) for d in store.devices()}
        rows = store.measurements(latest_only=True)
        runs = tuple(store.runs())
        drift = tuple(store.drift_checks())
    if not rows:
        raise DataError(f"{path} holds no measurements yet; profile into it with `hwprof profile --db {path}`")
    grouped: dict[tuple[str, str, str, str, str], list[Any]] = defaultdict(list)
    for r in rows:
        grouped[(r.device, runtimes.get(r.device_id, "?"), r.precision, r.settings_hash, r.estimator)].append(r)
    groups = []
    for (device, runtime, precision, _, estimator), members in grouped.items():
        groups.append(LatencyGroup(
            device=device, runtime=runtime, precision=precision, estimator=estimator,
            settings=dict(members[0].settings), specs=tuple(m.spec for m in members),
            latency_ms=tuple(float(m.latency_ms) for m in members), n_unstable=sum(m.unstable for m in members),
        ))  # fmt: skip
    unstable: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.unstable:
            unstable[r.device].append(r.spec)
    return StoreInput(path, summary, tuple(groups), runs, drift, {k: tuple(v) for k, v in unstable.items()})


def _runtime(info: Mapping[str, Any]) -> str:
    return " ".join(str(x) for x in (info.get("runtime"), info.get("runtime_version")) if x) or "?"


# --- predictor ------------------------------------------------------------------------------------------------


def load_predictor_dir(path: Path) -> PredictorInput:
    from predictors.persistence import read_info
    from predictors.training import predictor_space, read_held_out

    info = read_info(path)
    held_out, missing = None, ""
    try:
        saved = read_held_out(path, info)
    except PersistenceError as exc:
        saved, missing = None, str(exc)
    if saved is not None:
        held_out = HeldOut(saved.archs, tuple(map(float, saved.measured_ms)), tuple(map(float, saved.predicted_ms)))
    elif not missing:
        missing = (
            "trained without a validation split, so there are no held-out predictions"
            if info.metrics is None
            else "the directory keeps no held-out predictions (only `hwprof train` writes them, and only since "
            "hwprof kept them; an older or adapted predictor has none): retrain it to draw them"
        )
    return PredictorInput(
        path=path, name=info.name, device=info.device, space=predictor_space(info), n_train=info.n_train,
        params=dict(info.params), extra=dict(info.extra), created_at=info.created_at, metrics=info.metrics,
        held_out=held_out, held_out_missing=missing,
    )  # fmt: skip


# --- search ---------------------------------------------------------------------------------------------------------


def load_search(path: Path) -> SearchInput:
    from nas.search.base import SearchResult

    files = [path] if path.is_file() else search_result_files(path)
    results = []
    for f in files:
        doc = _read_json(f)
        _check_finite(doc, f)
        try:
            results.append(SearchResult.from_json(doc))
        except DataError as exc:
            raise DataError(f"{f}: {exc}") from None
    if not results:  # a file detected as a result always parses to one; a directory holds at least one
        raise ConfigError(f"{str(path)!r} holds no search results; {EXPECTED}")
    return SearchInput(path, tuple(results))


# --- MODNAS ---------------------------------------------------------------------------------------------------------


def load_modnas_dir(path: Path) -> ModnasInput:
    """The front of every training device (latency in ms for table columns, else relative)."""
    from nas.search.modnas import ModnasModel

    model = ModnasModel.load(path)
    fronts = []
    for device in model.train_devices:
        embedding, ref_ms = model.embedding(device=device)
        fronts.append(_front(device, [e.to_json() for e in model.front(embedding, ref_ms)]))
    quality = {
        name: dict(model.meta[key]["fit"])
        for name, key in (("latency surrogate", "latency_surrogate"), ("accuracy surrogate", "accuracy_surrogate"))
        if isinstance(model.meta.get(key), dict) and isinstance(model.meta[key].get("fit"), dict)
    }
    return ModnasInput(path, model.accuracy_source, model.mode, tuple(fronts), tuple(model.train_devices), quality)


def load_modnas_front(path: Path) -> ModnasInput:
    doc = _read_json(path)
    _check_finite(doc, path)
    try:
        front = _front(str(doc.get("device") or path.stem), doc["front"])
        return ModnasInput(path, str(doc.get("accuracy_source", "")), str(doc.get("mode", "")), (front,))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is not a MODNAS front from `hwprof modnas front --json` ({type(exc).__name__}: {exc})") from None


def _front(device: str, entries: Sequence[Mapping[str, Any]]) -> ModnasFront:
    absolute = all(e.get("predicted_latency_ms") is not None for e in entries)
    key = "predicted_latency_ms" if absolute else "predicted_latency_rel"
    return ModnasFront(
        device=device,
        latency=tuple(float(e[key]) for e in entries),
        latency_unit="ms" if absolute else "relative to the reference level",
        error_pct=tuple(None if e.get("surrogate_error_pct") is None else float(e["surrogate_error_pct"]) for e in entries),
        specs=tuple(str(e["arch"]) for e in entries),
        preference_accuracy=tuple(float(e["preference"][0]) for e in entries),
    )
