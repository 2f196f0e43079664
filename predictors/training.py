"""Train, evaluate and apply a latency predictor on measured data: what ``hwprof train/evaluate/predict`` do.

A notebook user calls the same functions as the commands::

    data = load_latency_data(csv_path=Path("nb201.csv.gz"), target="lat_titanx_1_ms")
    result = train_predictor(data, "gbdt", {"max_depth": 4}, n_train=1000)
    result.held_out.spearman, result.save("gbdt-titanx")

Every predictor is driven through ``fit_archs`` / ``predict_archs`` with an
:class:`~predictors.context.ArchContext`; what a predictor needs beyond spec
strings it declares with class attributes, checked here generically:
``fixed_features`` (a feature-set choice is refused) and ``needs_store`` (it
learns from a store's measurements and their device settings, which the
context carries and the saved metadata records).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwprof.errors import ConfigError, DataError, PersistenceError
from hwprof.outputs import write_atomic
from predictors.base import NonFinitePrediction, Predictor, ProgressCallback
from predictors.context import ArchContext
from predictors.data import (
    LatencyData,
    default_device,
    describe_bad_architecture,
    load_latency_data,
    open_store,
    split_indices,
    store_device_settings,
)
from predictors.features.encoding import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    ArchFeaturizer,
    space_of_kind,
)
from predictors.metrics import LatencyMetrics, evaluate_predictions
from predictors.persistence import HELD_OUT_FILE, PredictorInfo, load_predictor, read_info, save
from predictors.registry import get_predictor_class

# description of a phase -> report(done, total) for it (the CLI passes ProgressDisplay.reporter).
PhaseProgress = Callable[[str], ProgressCallback]
CACHE_DIR_NAME = ".hwprof-cache"
HELD_OUT_FORMAT = 1


def _reporter(progress: PhaseProgress | None, description: str) -> ProgressCallback | None:
    return progress(description) if progress is not None else None


def make_predictor(model: str, params: Mapping[str, Any] | None = None, random_state: int = 0) -> Predictor:
    """An unfitted predictor by registry name; ``random_state`` seeds it unless ``params`` sets it."""
    cls = get_predictor_class(model)
    params = dict(params or {})
    if "random_state" in cls._param_names():
        params.setdefault("random_state", random_state)
    return cls().set_params(**params)


def make_featurizer(space: str, features: str | None = None) -> ArchFeaturizer:
    """The architecture featurizer of a feature set (default ``onehot+counts``)."""
    feature_set = features or DEFAULT_FEATURE_SET
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown --features {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return ArchFeaturizer(space, feature_set)


def default_cache_dir(db: Path | None) -> Path:
    """Where exported networks are cached: beside the store, else in the working directory."""
    return (Path(db).parent if db is not None else Path.cwd()) / CACHE_DIR_NAME


def training_context(
    predictor: Predictor,
    data: LatencyData,
    train_archs: Sequence[str],
    *,
    cache_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> ArchContext:
    """What ``fit_archs`` gets besides the specs.

    A ``needs_store`` predictor re-runs the measured networks, so it gets the
    device settings the training architectures were measured with (one setting).
    """
    settings: dict[str, Any] = {}
    if predictor.needs_store:
        _check_from_store(predictor, data)
        assert data.db is not None
        settings = store_device_settings(data.db, data.device, data.space, train_archs)
    return ArchContext(
        space=data.space,
        device=data.device,
        device_settings=settings,
        cache_dir=str(cache_dir if cache_dir is not None else default_cache_dir(data.db)),
        options=dict(options or {}),
    )


def check_network_options(predictor: Predictor, *, cache_dir: Path | None = None, node_runs: int | None = None) -> None:
    """ConfigError for ``--cache-dir``/``--node-runs`` given to a predictor that would ignore them: only one that
    exports networks (``exports_networks``, e.g. ``ops``) uses an export cache, only one that re-profiles the
    measured networks (``needs_store``) profiled runs."""
    name = predictor.name or type(predictor).__name__
    if cache_dir is not None and not predictor.exports_networks:
        raise ConfigError(f"--cache-dir applies to predictors that export networks (ops); the {name} predictor exports none, drop it")
    if node_runs is not None and not predictor.needs_store:
        raise ConfigError(f"--node-runs applies to predictors that profile the networks again (ops); the {name} predictor does not, drop it")


def _check_from_store(predictor: Predictor, data: LatencyData) -> None:
    if predictor.needs_store and data.db is None:
        raise ConfigError(f"the {predictor.name} predictor learns from measurements in a store; train it with --db, not --csv")


def _check_archs(featurizer: ArchFeaturizer, data: LatencyData) -> None:
    try:
        featurizer.transform(list(data.archs))
    except DataError as exc:
        why = describe_bad_architecture(exc, data.lines)
        raise DataError(f"{data.source} does not hold {featurizer.space.name} architectures: {why}") from None


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """A fitted predictor with its split, metrics and the metadata it is saved with."""

    predictor: Predictor
    data: LatencyData
    train_idx: np.ndarray
    val_idx: np.ndarray
    train_metrics: LatencyMetrics
    held_out: LatencyMetrics | None  # None without a validation split of >= 2 architectures
    extra: Mapping[str, Any] = field(default_factory=dict)
    held_out_predicted_ms: np.ndarray | None = None  # in ``val_idx`` order; None when ``held_out`` is

    def save(self, directory: str | Path) -> Path:
        """Save the predictor with its device, held-out metrics and metadata; returns the metadata path.

        The held-out predictions go to ``held_out_predictions.json`` beside it (see
        :func:`read_held_out`). :func:`~predictors.persistence.save` removes the file of an
        earlier predictor in the directory first, so an interrupted save never pairs a new model with old points.
        """
        held_out_path = Path(directory) / HELD_OUT_FILE
        path = save(self.predictor, directory, device=self.data.device, metrics=self.held_out, extra=self.extra)
        if self.held_out_predicted_ms is not None:
            _write_held_out(held_out_path, self)
        return path


@dataclass(frozen=True)
class HeldOutPredictions:
    """The validation architectures of a saved predictor with their measured and predicted latency (ms)."""

    archs: tuple[str, ...]
    measured_ms: np.ndarray
    predicted_ms: np.ndarray
    device: str | None
    data: str


def _write_held_out(path: Path, result: TrainingResult) -> None:
    info: PredictorInfo = result.predictor.info_
    assert result.held_out_predicted_ms is not None
    doc = {
        "format_version": HELD_OUT_FORMAT,
        # which saved predictor these points belong to: read_held_out refuses them for any other
        "predictor": {"name": info.name, "train_sha256": info.train_hash, "created_at": info.created_at},
        "device": result.data.device,
        "data": result.data.source,
        "archs": [result.data.archs[i] for i in result.val_idx],
        "measured_ms": [float(x) for x in result.data.latency_ms[result.val_idx]],
        "predicted_ms": [float(x) for x in result.held_out_predicted_ms],
    }
    try:
        write_atomic(path, json.dumps(doc, allow_nan=False) + "\n")
    except ConfigError as exc:  # write_atomic's one line (disk full, permission denied), naming the path
        raise PersistenceError(str(exc)) from None


def read_held_out(directory: str | Path, info: PredictorInfo | None = None) -> HeldOutPredictions | None:
    """The held-out predictions saved beside a predictor, or None when it has none (older directories,
    or trained without a validation split).

    PersistenceError when the file is corrupt or belongs to another predictor than
    the one saved there now (``info``, read from the directory when not given).
    """
    directory = Path(directory)
    info = info if info is not None else read_info(directory)
    path = directory / HELD_OUT_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        owner = doc["predictor"]
        archs = tuple(str(a) for a in doc["archs"])
        measured = np.asarray(doc["measured_ms"], dtype=np.float64)
        predicted = np.asarray(doc["predicted_ms"], dtype=np.float64)
        version = doc["format_version"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise PersistenceError(f"{path} is corrupt: {type(exc).__name__}: {exc}") from None
    if version != HELD_OUT_FORMAT:
        raise PersistenceError(f"{path} has format version {version!r}; this hwprof reads {HELD_OUT_FORMAT}")
    if not (len(archs) == measured.size == predicted.size) or measured.ndim != 1 or predicted.ndim != 1:
        raise PersistenceError(
            f"{path} is corrupt: {len(archs)} architectures, {measured.size} measured and {predicted.size} predicted latencies"
        )
    if not (np.all(np.isfinite(measured)) and np.all(np.isfinite(predicted))):
        raise PersistenceError(f"{path} is corrupt: it holds non-finite latencies")
    mine = {"name": info.name, "train_sha256": info.train_hash, "created_at": info.created_at}
    if not isinstance(owner, dict) or any(owner.get(k) != v for k, v in mine.items()):
        raise PersistenceError(
            f"{path} belongs to another predictor than the one saved in {str(directory)!r} (retrain to refresh it)"
        )
    return HeldOutPredictions(archs, measured, predicted, doc.get("device"), str(doc.get("data", "")))


def train_predictor(
    data: LatencyData,
    model: str | Predictor = "gbdt",
    params: Mapping[str, Any] | None = None,
    *,
    features: str | None = None,
    val_fraction: float = 0.2,
    n_train: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
    progress: PhaseProgress | None = None,
) -> TrainingResult:
    """Split ``data`` (seeded), fit ``model`` on the training part, measure it on both parts.

    ``seed`` seeds the split and, unless ``params`` sets ``random_state``, the
    model. ``cache_dir`` and ``options`` (e.g. ``{"node_runs": 20}``) reach
    predictors that work on exported networks through their context.
    """
    predictor = model if isinstance(model, Predictor) else make_predictor(model, params, seed)
    name = predictor.name or type(predictor).__name__
    if predictor.fixed_features and features is not None:
        raise ConfigError(f"the {name} predictor has fixed features of its own; drop --features")
    _check_from_store(predictor, data)
    train_idx, val_idx = split_indices(len(data), val_fraction, seed, n_train)
    if len(val_idx) == 1:
        raise DataError(f"a validation set of 1 architecture gives no metrics; raise --val-fraction or use 0 (have {len(data)})")
    if len(train_idx) < predictor.min_training_archs():
        raise DataError(
            f"the {name} predictor needs at least {predictor.min_training_archs()} training architectures, "
            f"got {len(train_idx)} of {len(data)} from {data.source}"
        )
    featurizer = None if predictor.fixed_features else make_featurizer(data.space, features)
    if featurizer is not None:
        _check_archs(featurizer, data)
    train_archs = [data.archs[i] for i in train_idx]
    val_archs = [data.archs[i] for i in val_idx]
    y_train, y_val = data.latency_ms[train_idx], data.latency_ms[val_idx]
    context = training_context(predictor, data, train_archs, cache_dir=cache_dir, options=options)
    report = _reporter(progress, f"training {name} on {len(train_idx)} architectures")
    predictor.fit_archs(train_archs, y_train, featurizer=featurizer, context=context, progress=report)
    train_metrics = evaluate_predictions(y_train, predictor.predict_archs(train_archs, context=context))
    held_out = predicted_val = None
    if len(val_idx) >= 2:
        predicted_val = np.asarray(predictor.predict_archs(val_archs, context=context), dtype=np.float64)
        held_out = evaluate_predictions(y_val, predicted_val)
    extra: dict[str, Any] = {"space": data.space}
    if featurizer is not None:
        extra["features"] = featurizer.feature_set
    if predictor.needs_store:  # what it was trained from beyond the specs, to be reproduced when it predicts
        extra["device_settings"] = dict(context.device_settings)
        extra.update(context.options)
    extra["data"] = data.source
    extra["split"] = {"seed": seed, "val_fraction": val_fraction, "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}
    return TrainingResult(predictor, data, train_idx, val_idx, train_metrics, held_out, extra, predicted_val)


# --- applying a saved predictor ---------------------------------------------------------------------


def predictor_space(info: PredictorInfo) -> str | None:
    """The search space a saved predictor was trained on (None when it does not record one)."""
    return space_of_kind(info.schema.kind) or info.extra.get("space")


def saved_context(predictor: Predictor, cache_dir: Path | None = None) -> ArchContext | None:
    """The context a loaded predictor predicts with: its space, device and device settings, and an export cache.

    Without ``cache_dir`` the predictor uses its own default (the cache it was trained with, if it recorded one);
    a ``cache_dir`` for a predictor that exports no networks is a ConfigError rather than ignored.
    """
    check_network_options(predictor, cache_dir=cache_dir)
    info: PredictorInfo | None = getattr(predictor, "info_", None)
    space = predictor_space(info) if info is not None else space_of_kind(predictor.schema_.kind)
    if space is None:
        return None
    cache = str(cache_dir) if cache_dir is not None else None
    if info is None:
        return ArchContext(space=space, cache_dir=cache)
    settings = info.extra.get("device_settings") or {}
    return ArchContext(space=space, device=info.device, device_settings=dict(settings), cache_dir=cache)


def predict_latencies(
    predictor: Predictor,
    archs: Sequence[str],
    *,
    where: str = "the architectures",
    context: ArchContext | None = None,
    lines: Sequence[int] | None = None,
) -> np.ndarray:
    """Predicted ms of architecture specs; DataError saying ``where`` they came from when they do not fit
    (with ``lines``, the file line of each architecture, it names the bad one's line)."""
    context = context if context is not None else saved_context(predictor)
    try:
        return predictor.predict_archs(list(archs), context=context)
    except NonFinitePrediction:
        raise  # the model is at fault, not the architectures
    except DataError as exc:
        space = context.space if context is not None else "its"
        why = describe_bad_architecture(exc, lines)
        raise DataError(f"{where} does not hold architectures of the predictor's space {space!r}: {why}") from None


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A saved predictor's accuracy on measured data."""

    info: PredictorInfo
    data: LatencyData
    predicted_ms: np.ndarray
    metrics: LatencyMetrics


def _check_same_device(predictor_dir: str | Path, info: PredictorInfo, device: str, other_device: bool) -> None:
    if not other_device and info.device is not None and device != info.device:
        raise PersistenceError(
            f"predictor {str(predictor_dir)!r} was trained for device {info.device!r}, the data is of {device!r} "
            "(pass --other-device to evaluate across devices)"
        )


def _check_store_device(db: Path, device: str, info: PredictorInfo) -> None:
    """ConfigError naming the store's devices when it has none of ``device`` (the predictor's, unless -d chose one)."""
    store = open_store(db)
    try:
        stored = store.measured_devices()
    finally:
        store.close()
    if stored and device not in stored:
        whose = f"the predictor's device {device!r}" if device == info.device else f"device {device!r}"
        raise ConfigError(f"{db} holds no measurements of {whose}; it holds {', '.join(stored)}: choose one with -d/--device")


def evaluate_saved(
    predictor_dir: str | Path,
    *,
    db: Path | None = None,
    csv_path: Path | None = None,
    target: str | None = None,
    device: str | None = None,
    other_device: bool = False,
    cache_dir: Path | None = None,
    calibrated: bool = False,
) -> Evaluation:
    """Load a saved predictor and measure it on a device's latencies (by default the device it was trained for).

    Data of another device is refused unless ``other_device``; data of another
    space always is.
    """
    info = read_info(predictor_dir)
    space = predictor_space(info)
    if db is not None:
        device = device or info.device or default_device(db)
        _check_same_device(predictor_dir, info, device, other_device)
        _check_store_device(db, device, info)
        predictor = load_predictor(predictor_dir)
        data = load_latency_data(db, device=device, space=space, calibrated=calibrated)
    else:  # the device is the column's (a plain latency_ms column: -d, else the predictor's)
        data = load_latency_data(None, csv_path, device=device, target=target, space=space, calibrated=calibrated,
                                 label=info.device)  # fmt: skip
        _check_same_device(predictor_dir, info, data.device, other_device)
        predictor = load_predictor(predictor_dir)
    if space is not None and data.space != space:
        raise PersistenceError(f"predictor {str(predictor_dir)!r} was trained on space {space!r}, the data is of {data.space!r}")
    context = saved_context(predictor, cache_dir)
    predicted = predict_latencies(predictor, data.archs, where=data.source, context=context, lines=data.lines)
    return Evaluation(info, data, predicted, evaluate_predictions(data.latency_ms, predicted))
