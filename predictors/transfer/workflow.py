"""The ``hwprof adapt`` workflow as library calls: source devices, which K architectures to measure, adapting.

A notebook user does what the command does::

    sources = load_sources(SourceSpec(csv=Path("nb201.csv.gz"), method="nnls"), new_device="pixel3")
    suggestion = suggest(sources, 10)                       # what to measure on the new device
    result = adapt_device(AdaptOptions(device="pixel3", samples=Path("pixel3.csv")), sources)
    result.save("pixel3-nnls")

Policy lives here, not in the CLI: the new device is never its own source;
a pretrained model's references are measured when it has them; otherwise K
architectures are chosen over the source table among those measured, and the
rest of a store's measurements is held out for metrics. Things worth a warning
come back as ``notes`` (library code does not print).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwprof import __version__ as hwprof_version
from hwprof.errors import ConfigError, DataError, PersistenceError
from predictors.base import Predictor
from predictors.data import (
    LatencyData,
    check_architectures,
    check_latencies,
    from_store,
    open_store,
    read_latency_table,
    read_samples,
    resolve_space,
    store_spaces,
)
from predictors.features.encoding import DEFAULT_FEATURE_SET, space_of_kind
from predictors.metrics import LatencyMetrics, evaluate_predictions
from predictors.persistence import save
from predictors.training import PhaseProgress, make_featurizer
from predictors.transfer import (
    DEFAULT_METHOD,
    SourceLatencies,
    TransferModel,
    get_transfer_method,
    load_transfer_model,
    pretrain,
    suggest_archs,
    suggest_samples,
)
from predictors.transfer.base import check_samples
from predictors.transfer.live import adapt_live, has_dead_operations


CACHE_SUBDIR = "transfer"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def cached_pretraining(cache_dir: Path, key: str, train: Callable[[], TransferModel]) -> TransferModel:
    """The model saved under ``cache_dir/transfer/key``, else ``train()`` saved there (written aside, then renamed).

    An entry that does not load (corrupt, truncated, from a newer hwprof) is
    trained again and replaced; a cache that cannot be written costs only the
    reuse.
    """
    entry = Path(cache_dir) / CACHE_SUBDIR / key
    if entry.is_dir():
        try:
            return load_transfer_model(entry)
        except PersistenceError:
            shutil.rmtree(entry, ignore_errors=True)
    model = train()
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=entry.parent))
        try:
            model.save(scratch)
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(scratch, entry)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except (OSError, PersistenceError):
        pass  # an unwritable cache only loses the reuse
    return model


DEFAULT_K = 10


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"-k must be a positive number of architectures, got {k}")
    return k


# --- source devices -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """Where the source devices come from: exactly one of a benchmark CSV, a store, or a saved transfer model.

    ``devices`` restricts a table's source devices; ``method``, ``params`` and
    ``features`` configure pretraining (a saved model is already pretrained).
    """

    csv: Path | None = None
    db: Path | None = None
    model: Path | None = None
    devices: tuple[str, ...] | None = None
    method: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    features: str | None = None
    cache_dir: Path | None = None  # keep pretrained models here, keyed by the table's content (None: no cache)

    def for_suggesting(self, k: int) -> SourceSpec:
        """An ``embedding`` model pretrained to suggest K architectures has K references (unless ``n_refs`` is set)."""
        if self.method == "embedding" and self.model is None and "n_refs" not in self.params:
            return replace(self, params={**self.params, "n_refs": check_k(k)})
        return self


class Sources:
    """The source devices of a few-shot adaptation: their latency table (when measured) and the transfer model.

    Opened sources hold a saved model, or a table and what to pretrain on it;
    :meth:`pretrained` does the (possibly long) pretraining once.
    """

    def __init__(self, table: SourceLatencies | None, model: TransferModel | None, space: str, description: str,
                 notes: Sequence[str] = (), *, method: str = DEFAULT_METHOD, feature_set: str = DEFAULT_FEATURE_SET,
                 params: Mapping[str, Any] | None = None, cache_dir: Path | None = None, live: bool = False) -> None:
        self.table = table  # None for a saved model
        self.model = model  # None until pretrained
        self.space = space
        self.description = description
        self.notes = tuple(notes)
        self.method = model.method if model is not None else method
        self.feature_set = feature_set
        self.params = dict(params or {})
        self.cache_dir = None if cache_dir is None else Path(cache_dir)  # where pretrained models are kept (None: nowhere)
        self.live = live  # adapt and predict on live-equivalent architectures (a device measured through hwprof)

    @property
    def min_samples(self) -> int:
        """How many measured architectures of a new device the method needs."""
        return (self.model if self.model is not None else get_transfer_method(self.method)).min_samples

    @property
    def n_devices(self) -> int:
        return len(self.model.devices if self.model is not None else self.table.devices)  # type: ignore[union-attr]

    def _replace(self, **changes: Any) -> Sources:
        fields = {"table": self.table, "model": self.model, "space": self.space, "description": self.description,
                  "notes": self.notes, "method": self.method, "feature_set": self.feature_set, "params": self.params,
                  "cache_dir": self.cache_dir, "live": self.live}
        fields.update(changes)
        table, model, space, description = (fields.pop(k) for k in ("table", "model", "space", "description"))
        return Sources(table, model, space, description, **fields)

    def with_params(self, **params: Any) -> Sources:
        """These (not yet pretrained) sources with more pretraining settings."""
        return self._replace(params={**self.params, **params})

    def live_equivalent(self) -> Sources:
        """Sources that describe each architecture by the work hwprof's export of it does (dead operations dropped).

        For a device measured through hwprof (``hwprof profile``): the adapted
        predictor is fitted on, and predicts for, each network's live
        equivalent (:func:`predictors.transfer.live.adapt_live`), so the
        pretrained model (and its cache entry) is the same as for
        architectures as given, and a saved model works too.
        """
        if self.live:
            return self
        if self.space and not has_dead_operations(self.space):  # nothing to map (FBNet): the same sources
            return self._replace(live=True)
        return self._replace(description=f"{self.description} (architectures described by their live equivalents)", live=True)

    def choice_table(self) -> SourceLatencies | None:
        """The table K samples are chosen from: with live sources, row ``a`` holds what the sources measured for ``live(a)``."""
        if self.table is None or not self.live:
            return self.table
        return self.table.live_equivalent(self.space)[0]

    def pretrained(self, *, seed: int = 0, progress: PhaseProgress | None = None) -> Sources:
        """These sources with the method pretrained on the table (themselves when the model exists).

        With a ``cache_dir`` the pretrained model is kept there, keyed by the
        table's content, the method, its settings, the features and the seed,
        and reused by the next call (a corrupt entry is rebuilt).
        """
        if self.model is not None:
            return self
        assert self.table is not None
        table = self.table

        def train() -> TransferModel:
            report = progress(f"pretraining {self.method} on {len(table.devices)} source devices") if progress is not None else None
            return pretrain(self.method, table, feature_set=self.feature_set, space=self.space, seed=seed,
                            progress=report, **self.params)

        if self.cache_dir is None:
            model = train()
        else:
            model = cached_pretraining(self.cache_dir, self.cache_key(seed), train)
        return self._replace(model=model)

    def cache_key(self, seed: int) -> str:
        """What identifies a pretraining: the table's content, method, settings, features, space, seed, hwprof version."""
        assert self.table is not None
        settings = json.dumps({k: _jsonable(v) for k, v in sorted(self.params.items())}, sort_keys=True)
        text = "\n".join([self.table.content_sha256(), self.method, settings, self.feature_set, self.space, str(seed),
                          hwprof_version])
        return f"{self.method}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"

    def rows_of(self, archs: Sequence[str]) -> dict[str, int]:
        """Row of each of ``archs`` in the source table (those it holds)."""
        if self.table is None:
            return {}
        index = {a: i for i, a in enumerate(self.table.archs)}
        return {a: index[a] for a in archs if a in index}


def load_source_table(
    csv_path: Path | None,
    db: Path | None,
    devices: Sequence[str] | None,
    exclude: str | None,
    space: str | None,
) -> tuple[SourceLatencies, str, str]:
    """(source table, space, description) from a CSV or a store, without the new device ``exclude`` itself."""
    if csv_path is not None:
        table = read_latency_table(csv_path)
        space = resolve_space(table.archs, space, Path(csv_path).name, range(2, len(table.archs) + 2))
        drop = [exclude] if exclude is not None and exclude in table.latency_ms else []
        sources = SourceLatencies.from_columns(table.archs, table.latency_ms, devices=devices, exclude=drop)
        return sources, space, f"csv:{csv_path}"
    if db is None:
        raise ConfigError("a source table comes from a CSV or a store; give one")
    store = open_store(db)
    try:
        if space is None:
            spaces = store_spaces(store)
            if len(spaces) != 1:
                raise ConfigError(f"{db} holds spaces {', '.join(spaces) or 'none'}; choose one with --space")
            space = spaces[0]
        drop = [exclude] if exclude is not None else []
        sources = SourceLatencies.from_store(store, space=space, devices=devices, exclude=drop)
    finally:
        store.close()
    return sources, space, f"db:{db}"


def _load_saved(spec: SourceSpec, new_device: str | None, space: str | None) -> Sources:
    assert spec.model is not None
    for flag, value in (("--source-devices", spec.devices), ("--features", spec.features), ("--param", spec.params or None)):
        if value is not None:
            raise ConfigError(f"{flag} applies when pretraining on a source table; {spec.model} is already pretrained")
    model = load_transfer_model(spec.model)
    if spec.method is not None and spec.method != model.method:
        raise ConfigError(f"{spec.model} is a pretrained {model.method!r} model; it cannot adapt with --method {spec.method!r}")
    model_space = space_of_kind(model.schema.kind) or ""
    if space is not None and model_space and space != model_space:
        raise PersistenceError(f"transfer model {str(spec.model)!r} is for space {model_space!r}, not {space!r}")
    notes = []
    if new_device is not None and new_device in model.devices:
        notes.append(f"{new_device!r} is one of the model's source devices; the result says nothing about few-shot accuracy")
    return Sources(None, model, model_space, f"model:{spec.model}", notes)


def open_sources(spec: SourceSpec, *, new_device: str | None = None, space: str | None = None) -> Sources:
    """Load a saved transfer model, or read a source table to pretrain ``spec.method`` (default nnls) on.

    ``new_device`` is never a source: it is dropped from a table, refused in
    ``spec.devices``, and noted when a saved model was pretrained on it.
    """
    given = [p for p in (spec.csv, spec.db, spec.model) if p is not None]
    if len(given) != 1:
        raise ConfigError("give the source devices with exactly one of --sources-csv FILE, --sources-db DB, --sources-model DIR")
    if new_device is not None and spec.devices is not None and new_device in spec.devices:
        raise ConfigError(f"the new device {new_device!r} cannot be one of its own --source-devices")
    if spec.model is not None:
        return _load_saved(spec, new_device, space)
    method = spec.method or DEFAULT_METHOD
    get_transfer_method(method)  # unknown names fail before any data is read
    table, space, where = load_source_table(spec.csv, spec.db, spec.devices, new_device, space)
    feature_set = make_featurizer(space, spec.features).feature_set
    return Sources(table, None, space, where, method=method, feature_set=feature_set, params=spec.params,
                   cache_dir=spec.cache_dir)


def load_sources(
    spec: SourceSpec,
    *,
    new_device: str | None = None,
    space: str | None = None,
    seed: int = 0,
    progress: PhaseProgress | None = None,
) -> Sources:
    """:func:`open_sources`, pretrained."""
    return open_sources(spec, new_device=new_device, space=space).pretrained(seed=seed, progress=progress)


# --- what to measure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """The K architectures to measure on a new device, and how they were chosen."""

    archs: tuple[str, ...]
    rows: Mapping[str, int]  # their rows in the source table (those it holds)
    how: str  # "the model's reference architectures" or the selection method
    n_source_devices: int


def _pool_rows(sources: Sources, pool: Sequence[str] | None, where: str) -> list[int] | None:
    if pool is None or sources.table is None:  # a saved model: its references are checked against the pool
        return None
    rows = sources.rows_of(pool)
    missing = [a for a in pool if a not in rows]
    if missing:
        raise DataError(f"{len(missing)} architecture(s) of {where} are not in the source table (e.g. {missing[0]!r})")
    return sorted(set(rows.values()))


def restricted_to_pool(sources: Sources, pool: Sequence[str] | None, pool_name: str = "the pool") -> Sources:
    """Sources whose method, when it pretrains reference architectures (``embedding``), takes them from ``pool``."""
    pool_rows = _pool_rows(sources, pool, pool_name)
    if pool_rows is not None and sources.model is None and get_transfer_method(sources.method).uses_references:
        return sources.with_params(reference_pool=pool_rows)
    return sources


def suggest(
    sources: Sources,
    k: int,
    *,
    seed: int = 0,
    select: str = "farthest",
    pool: Sequence[str] | None = None,
    pool_name: str = "the pool",
) -> Suggestion:
    """Which K architectures to measure: the model's references when it has them, else chosen over the source table.

    ``pool`` restricts the choice to these architectures of the source table:
    an ``embedding`` model still to be pretrained takes its references from the
    pool; a saved one whose references lie outside the pool is refused.
    """
    check_k(k)
    pool_rows = _pool_rows(sources, pool, pool_name)
    sources = restricted_to_pool(sources, pool, pool_name).pretrained(seed=seed)
    assert sources.model is not None
    has_refs = bool(sources.model.reference_archs)
    if has_refs and pool is not None:
        outside = [a for a in sources.model.reference_archs if a not in set(pool)]
        if outside:
            raise DataError(
                f"the pretrained {sources.model.method!r} model measures its own {len(sources.model.reference_archs)} reference "
                f"architectures, {len(outside)} of which are not in {pool_name} (e.g. {outside[0]!r}); pretrain it with the "
                "pool (--sources-csv/--sources-db with --pool) or drop --pool"
            )
    if has_refs or sources.table is None:
        chosen = suggest_archs(sources.model, k)  # without references this explains that a table is needed
    else:
        chosen = suggest_archs(sources.table, k, seed=seed, pool=pool_rows, method=select)
    how = "the model's reference architectures" if has_refs else select
    return Suggestion(tuple(chosen), sources.rows_of(chosen), how, len(sources.model.devices))


def choose_samples(sources: Sources, data: LatencyData, k: int, seed: int, select: str) -> tuple[np.ndarray, list[str]]:
    """Row indices into ``data`` of the K architectures to adapt from (the rest is held out), and notes.

    The model's references when all are measured; else chosen like
    :func:`suggest` among the measured architectures the source table holds;
    else a seeded random choice.
    """
    position = {a: i for i, a in enumerate(data.archs)}
    refs = sources.model.reference_archs if sources.model is not None else ()
    if refs and all(r in position for r in refs):
        return np.array(sorted(position[r] for r in refs)), []
    rows = sources.rows_of(data.archs)
    table = sources.choice_table()
    if table is not None and len(rows) >= k:
        picked = suggest_samples(k, table.latency_ms, seed, pool=sorted(rows.values()), method=select)
        by_row = {r: a for a, r in rows.items()}
        return np.array(sorted(position[by_row[int(r)]] for r in picked)), []
    note = f"the source table holds only {len(rows)} of the {len(data)} measured architectures; choosing {k} at random"
    return np.sort(np.random.default_rng(seed).choice(len(data), size=k, replace=False)), [note]


# --- adapting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptOptions:
    """The new device's measurements: a store (K of them adapt, the rest is held out) or a samples file."""

    device: str | None = None  # its name in ``db``; with ``samples`` a label (default: the file's stem)
    db: Path | None = None
    samples: Path | None = None
    # How many measurements adapt: a store's default is DEFAULT_K; a samples file's default is all of its rows.
    # Fewer than measured: K are chosen (``select``, seeded) and the rest is held out for metrics.
    k: int | None = None
    space: str | None = None
    select: str = "farthest"
    seed: int = 0
    # Describe architectures to the sources by what hwprof's export of them computes (dead operations dropped).
    # None: yes for a store (its measurements were made through hwprof), no for a samples file.
    live: bool | None = None

    def __post_init__(self) -> None:
        if (self.db is None) == (self.samples is None):
            raise ConfigError("give the new device's measurements with exactly one of --db STORE --device NAME or --samples FILE")
        if self.db is not None and self.device is None:
            raise ConfigError("--db needs --device, the new device's name in the store")
        if self.k is not None:
            check_k(self.k)

    @property
    def live_archs(self) -> bool:
        return self.db is not None if self.live is None else bool(self.live)


@dataclass(frozen=True, eq=False)
class AdaptResult:
    """An adapted predictor with its samples, held-out data, metrics and the metadata it is saved with."""

    predictor: Predictor
    method: str
    data: LatencyData
    fit_data: LatencyData
    test_data: LatencyData | None
    sample_metrics: LatencyMetrics | None  # on the K samples themselves (None below 2)
    held_out: LatencyMetrics | None
    source_weights: Mapping[str, float]
    extra: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def save(self, directory: str | Path) -> Path:
        return save(self.predictor, directory, device=self.data.device, metrics=self.held_out, extra=self.extra)


def load_new_device(options: AdaptOptions, sources: Sources) -> LatencyData:
    """The new device's measurements, in the sources' space."""
    space = sources.space or options.space
    if options.db is not None:
        assert options.device is not None
        data = from_store(options.db, options.device, space)
    else:
        assert options.samples is not None
        data = read_samples(options.samples, options.space, options.device or options.samples.stem)
    if sources.space and data.space != sources.space:
        raise DataError(
            f"space mismatch: the new device's architectures ({data.source}) are of space {data.space!r}, "
            f"the source devices' of {sources.space!r}; give sources of the same space"
        )
    return check_architectures(data)  # before any pretraining, naming a bad row by its line


def adapt_device(options: AdaptOptions, sources: Sources, *, progress: PhaseProgress | None = None) -> AdaptResult:
    """Adapt the sources' model to the new device from K of its measurements; measure it on the rest.

    The new device's data is read and checked before the sources are
    pretrained (when they are not yet), so a bad file fails fast. From a
    samples file every row adapts unless ``options.k`` asks for fewer: then K
    are chosen as from a store (``select``, seeded) and the others are held
    out, which a note says.
    """
    data = load_new_device(options, sources)
    k = options.k if options.k is not None else (DEFAULT_K if options.db is not None else len(data))
    if options.db is not None and k >= len(data):
        raise DataError(f"-k {k} leaves no test architectures: {data.device} has {len(data)} in {options.db}")
    if options.db is None and k > len(data):
        raise DataError(f"-k {k} asks for more samples than {data.source} holds ({len(data)}); give -k {len(data)} or fewer")
    check_samples(data.archs, data.latency_ms, sources.min_samples, sources.method)
    if sources.min_samples > k:
        raise DataError(f"few-shot method {sources.method!r} needs at least {sources.min_samples} measured architectures, -k is {k}")
    notes: list[str] = []
    if options.live_archs:
        before = len(sources.notes)
        sources = sources.live_equivalent()
        notes.extend(sources.notes[before:])
    sources = sources.pretrained(seed=options.seed, progress=progress)
    assert sources.model is not None
    test_data = None
    fit_data = data
    if k < len(data):
        chosen, more = choose_samples(sources, data, k, options.seed, options.select)
        notes.extend(more)
        fit_data, test_data = data.subset(chosen), data.subset(np.setdiff1d(np.arange(len(data)), chosen))
        if options.db is None:
            notes.append(f"adapting from {k} of the {len(data)} samples in {data.source} ({options.select}, seed {options.seed}); "
                         f"the other {len(data) - k} are held out for metrics (omit -k to adapt from all)")
    archs = list(fit_data.archs)
    y = check_latencies(archs, fit_data.latency_ms, fit_data.source)
    method = sources.model.method
    report = progress(f"adapting ({method}) from {len(y)} samples") if progress is not None else None
    if sources.live:
        adapted = adapt_live(sources.model, archs, y, progress=report)
    else:
        adapted = sources.model.adapt(archs, y, progress=report)
    sample_metrics = evaluate_predictions(y, adapted.predict_archs(archs)) if len(y) >= 2 else None
    held_out = None
    if test_data is not None and len(test_data) >= 2:
        held_out = evaluate_predictions(test_data.latency_ms, adapted.predict_archs(list(test_data.archs)))
    weights = dict(getattr(adapted, "source_weights_", None) or {})
    extra = {
        "space": data.space,
        "transfer": {
            "method": method,
            "sources": sources.description,
            "source_devices": list(sources.model.devices),
            "samples": archs,
            "select": "given" if fit_data is data else options.select,
            "live_equivalent": options.live_archs,
            "choice": getattr(adapted, "transfer_choice_", None),
            "source_weights": weights,
        },
    }
    return AdaptResult(adapted, method, data, fit_data, test_data, sample_metrics, held_out, weights, extra, tuple(notes))
