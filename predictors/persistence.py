"""Save and load fitted predictors as a directory: ``predictor.json`` plus portable model files.

No pickle anywhere: xgboost models are its JSON format, torch weights a
``state_dict`` read back with ``weights_only=True``, arrays ``.npz`` read with
``allow_pickle=False``. The metadata says which predictor class (by registry
name) and parameters, the feature schema, the device, a hash of the training
data and held-out metrics, so a directory found on disk explains itself.
Loading checks the saved parameters as ``fit`` checks them and refuses model
files holding NaN or infinity. Every way loading can fail raises
:class:`PersistenceError` with one line.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hwprof import __version__
from hwprof.errors import ConfigError, DataError, HwprofError, PersistenceError
from hwprof.outputs import write_atomic
from predictors.base import Predictor
from predictors.metrics import LatencyMetrics
from predictors.registry import get_predictor_class
from predictors.schema import FeatureSchema, featurizer_for_schema

FORMAT_VERSION = 1
METADATA_FILE = "predictor.json"
TRANSFER_FILE = "transfer.json"  # a pretrained transfer model's metadata (predictors.transfer.base)
# Beside predictor.json: the held-out architectures with their measured and predicted latency (predictors.training).
HELD_OUT_FILE = "held_out_predictions.json"
# Keys of a predictor's saved state whose values name its model files in the directory (at any depth, e.g.
# ops' ``kinds.<k>.xgboost``): checked to stay inside the directory, and removed when another predictor
# replaces this one without writing them again.
STATE_FILE_KEYS = frozenset({"file", "model", "base", "weights", "scaling", "arrays", "xgboost"})
# Parameters renamed after predictors were saved with the old name (old -> new): such directories still load.
RENAMED_PARAMS: dict[str, str] = {"seed": "random_state"}


@dataclass(frozen=True)
class PredictorInfo:
    """The metadata of a saved predictor."""

    name: str
    params: Mapping[str, Any]
    schema: FeatureSchema
    device: str | None
    train_hash: str
    n_train: int
    metrics: LatencyMetrics | None
    created_at: str
    hwprof_version: str
    format_version: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    floor_ms: float = 0.0  # predictions never go below it; 0 in files written before floors

    def to_json(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "hwprof_version": self.hwprof_version,
            "predictor": self.name,
            "params": _jsonable(dict(self.params)),
            "feature_schema": self.schema.to_json(),
            "device": self.device,
            # no floor (a predictor built from coefficients without one) is written as none, as before floors
            "training_data": {"sha256": self.train_hash, "n_samples": self.n_train,
                              **({"floor_ms": self.floor_ms} if self.floor_ms > 0 else {})},
            "metrics": self.metrics.to_json() if self.metrics is not None else None,
            "created_at": self.created_at,
            "extra": _jsonable(dict(self.extra)),
            "state": _jsonable(dict(state)),
        }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise PersistenceError(f"cannot store {type(obj).__name__} value {obj!r} as JSON metadata")


def save(
    predictor: Predictor,
    directory: str | Path,
    *,
    device: str | None = None,
    metrics: LatencyMetrics | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted predictor into ``directory`` (created if needed); returns the metadata path.

    ``device``/``metrics`` default to those the predictor was loaded with, if any.
    Model files are written first and ``predictor.json`` last (atomically), so an
    interrupted save never leaves a directory that looks complete.
    """
    predictor._check_fitted()
    if not predictor.name:
        raise PersistenceError(f"{type(predictor).__name__} has no registry name; set the class attribute 'name'")
    previous: PredictorInfo | None = getattr(predictor, "info_", None)
    directory = check_save_target(directory)
    old_files = _replaced_files(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / HELD_OUT_FILE).unlink(missing_ok=True)  # belongs to the predictor saved there before
    except OSError as exc:
        raise PersistenceError(f"cannot create predictor directory {str(directory)!r}: {exc.strerror or exc}") from None
    info = PredictorInfo(
        name=predictor.name,
        params=predictor.get_params(),
        schema=predictor.schema_,
        device=device if device is not None else (previous.device if previous else None),
        train_hash=predictor.train_hash_,
        n_train=int(predictor.n_train_),
        metrics=metrics if metrics is not None else (previous.metrics if previous else None),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        hwprof_version=__version__,
        format_version=FORMAT_VERSION,
        extra=dict(extra) if extra is not None else (dict(previous.extra) if previous else {}),
        floor_ms=float(predictor.floor_ms_),
    )
    try:
        state = predictor._save_state(directory)
        text = json.dumps(info.to_json(state), indent=2, sort_keys=False, allow_nan=False)
        write_atomic(directory / METADATA_FILE, text + "\n")  # the usual permissions; no temporary left on failure
    except ConfigError as exc:  # write_atomic's one line (disk full, permission denied)
        raise PersistenceError(str(exc)) from None
    except OSError as exc:
        raise PersistenceError(f"cannot write predictor to {str(directory)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # NaN/inf in metadata
        raise PersistenceError(f"predictor metadata is not valid JSON: {exc}") from None
    for name in sorted(old_files - set(state_files(state))):  # the old predictor's files the new one does not use
        try:
            if (directory / name).is_file():
                (directory / name).unlink()
        except OSError as exc:
            raise PersistenceError(f"cannot remove the replaced model file {str(directory / name)!r}: {exc.strerror or exc}") from None
    predictor.info_ = info
    return directory / METADATA_FILE


def state_files(state: Any) -> list[str]:
    """The model file names a predictor's saved state holds (values of :data:`STATE_FILE_KEYS`, at any depth)."""
    found: list[str] = []
    if isinstance(state, dict):
        for key, value in state.items():
            if key in STATE_FILE_KEYS and isinstance(value, str):
                found.append(value)
            else:
                found.extend(state_files(value))
    elif isinstance(state, list):
        for value in state:
            found.extend(state_files(value))
    return found


def _check_state_files(directory: Path, state: Any, path: Path) -> None:
    """PersistenceError unless every model file the state names is a plain name inside ``directory``."""
    root = os.path.realpath(directory)
    for name in state_files(state):
        if not name or os.path.isabs(name) or ".." in Path(name).parts:
            raise PersistenceError(f"{path} is corrupt: the state names the model file {name!r}; expected a file name inside {str(directory)!r}")
        if os.path.commonpath([root, os.path.realpath(directory / name)]) != root:
            raise PersistenceError(f"{path} is corrupt: the model file {name!r} leads outside {str(directory)!r}")


def _replaced_files(directory: Path) -> set[str]:
    """The model files of the predictor saved in ``directory`` now (none when there is none, or it is unreadable)."""
    try:
        data = _read_metadata(directory)
        state = data.get("state") or {}
        _check_state_files(directory, state, directory / METADATA_FILE)
    except PersistenceError:
        return set()
    return set(state_files(state))


def check_save_target(directory: str | Path, *, what: str = "predictor", marker: str = METADATA_FILE,
                      replace: bool = True) -> Path:
    """PersistenceError unless :func:`save` can write into ``directory``: checked before a long training, not after.

    ``directory`` may be new (its nearest existing parent must be a writable
    directory), empty, or hold a predictor (its ``marker`` file) to replace: model
    files first, ``predictor.json`` last, then the old model files the new one
    does not use are removed. An existing file, and a non-empty directory holding
    no predictor (its files would mix with the model's), are refused. ``what`` and
    ``marker`` name another kind of saved model (a pretrained transfer model,
    ``transfer.json``) checked the same way. ``replace=False`` (a command without
    ``--overwrite``) refuses a directory that already holds one: the work saved there is kept.
    """
    directory = Path(directory)
    where = f"cannot save a {what} to {str(directory)!r}"
    expected = f"expected a directory (new, or holding a {what} to replace)"
    if directory.exists() and not directory.is_dir():
        raise PersistenceError(f"{where}: it is a file; {expected}")
    if not replace and (directory / marker).is_file():
        raise PersistenceError(f"{where}: it holds a {what} already; pass --overwrite to replace it, or give another directory")
    if directory.is_dir() and not (directory / marker).is_file():
        try:
            entries = sorted(p.name for p in directory.iterdir())
        except OSError as exc:
            raise PersistenceError(f"{where}: cannot list it ({exc.strerror or exc})") from None
        if entries:
            other = next((m for m in (METADATA_FILE, TRANSFER_FILE) if m != marker and m in entries), None)
            held = f"a saved model ({other})" if other else f"{len(entries)} file(s) (e.g. {entries[0]!r})"
            raise PersistenceError(f"{where}: it holds {held} but no {marker}; {expected}")
    parent = directory
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise PersistenceError(f"{where}: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PersistenceError(f"{where}: directory {str(parent)!r} is not writable")
    return directory


def read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a model's ``.npz`` file; PersistenceError "PATH is corrupt" for anything else
    (text, a pickle, a truncated zip, a missing array). A missing file stays FileNotFoundError (an incomplete predictor)."""
    corrupt = f"{path} is corrupt (not a numpy .npz of arrays)"
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise PersistenceError(corrupt) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise PersistenceError(corrupt)
    with data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise PersistenceError(f"{path} is corrupt: it lacks the array(s) {', '.join(missing)}")
        try:
            return {k: np.asarray(data[k]) for k in keys}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            raise PersistenceError(corrupt) from None


def _read_metadata(directory: Path) -> dict[str, Any]:
    if not directory.exists():
        raise PersistenceError(f"no predictor at {str(directory)!r}: the directory does not exist")
    if not directory.is_dir():
        raise PersistenceError(f"no predictor at {str(directory)!r}: it is a file, expected a directory with {METADATA_FILE}")
    path = directory / METADATA_FILE
    if not path.is_file():
        raise PersistenceError(f"no predictor at {str(directory)!r}: {METADATA_FILE} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PersistenceError(f"{path} is corrupt: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PersistenceError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise PersistenceError(f"{path} is corrupt: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise PersistenceError(f"{path} is corrupt: format_version is {version!r}, expected an integer")
    if version > FORMAT_VERSION:
        raise PersistenceError(
            f"{path} has format version {version}, newer than this hwprof supports ({FORMAT_VERSION}); "
            f"it was written by hwprof {data.get('hwprof_version', '?')}, upgrade hwprof to load it"
        )
    return data


def read_info(directory: str | Path) -> PredictorInfo:
    """The metadata of a saved predictor, without loading its model."""
    directory = Path(directory)
    return _info(_read_metadata(directory), directory / METADATA_FILE)


MAX_FLOOR_MS = 1e6  # a tenth of a fastest training latency above 1,000 s is no floor this code wrote


def _floor(value: Any, path: Path) -> float:
    """The saved prediction floor: a number in (0, MAX_FLOOR_MS] (a string, NaN, 0 or 1e308 there is a corrupt
    file, not a floor; a file written before floors has none and loads with 0)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
            or value > MAX_FLOOR_MS):
        raise PersistenceError(
            f"{path} is corrupt: training_data.floor_ms must be a number of milliseconds in (0, {MAX_FLOOR_MS:g}], got {value!r}"
        )
    return float(value)


def _device(value: Any, path: Path) -> str | None:
    if value is not None and not isinstance(value, str):
        raise PersistenceError(f"{path} is corrupt: device must be a string or null, got {value!r}")
    return value


def _extra(value: Any, path: Path) -> dict[str, Any]:
    if value is not None and not isinstance(value, dict):
        raise PersistenceError(f"{path} is corrupt: extra must be a JSON object, got {type(value).__name__} {value!r}")
    return dict(value or {})


def _info(data: Mapping[str, Any], path: Path) -> PredictorInfo:
    try:
        schema = FeatureSchema.from_json(data["feature_schema"])
        metrics = LatencyMetrics.from_json(data["metrics"]) if data.get("metrics") is not None else None
        training = data["training_data"]
        return PredictorInfo(
            name=str(data["predictor"]),
            params=dict(data["params"]),
            schema=schema,
            device=_device(data.get("device"), path),
            train_hash=str(training["sha256"]),
            n_train=int(training["n_samples"]),
            metrics=metrics,
            created_at=str(data.get("created_at", "")),
            hwprof_version=str(data.get("hwprof_version", "")),
            format_version=int(data["format_version"]),
            extra=_extra(data.get("extra"), path),
            floor_ms=_floor(training["floor_ms"], path) if "floor_ms" in training else 0.0,
        )
    except KeyError as exc:
        raise PersistenceError(f"{path} is corrupt: missing field {exc}") from None
    except (TypeError, ValueError, AttributeError, DataError) as exc:
        raise PersistenceError(f"{path} is corrupt: {exc}") from None


def _constructor_params(cls: type[Predictor], params: Mapping[str, Any]) -> dict[str, Any]:
    """Saved params back to constructor arguments (renamed ones mapped; JSON lists -> tuples where the default is a tuple)."""
    sig = inspect.signature(cls.__init__)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in sig.parameters and RENAMED_PARAMS.get(key) in sig.parameters and RENAMED_PARAMS[key] not in params:
            key = RENAMED_PARAMS[key]
        if key not in sig.parameters:
            raise PersistenceError(f"saved parameter {key!r} is unknown to {cls.__name__}; the predictor is stale, retrain it")
        default = sig.parameters[key].default
        out[key] = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
    return out


def check_schema(info: PredictorInfo, expected_schema: FeatureSchema, where: str) -> None:
    if info.schema != expected_schema:
        raise PersistenceError(
            f"feature schema mismatch for {where}: the predictor was trained on {info.schema.describe()}, "
            f"the caller expects {expected_schema.describe()}"
        )


def load_predictor(
    directory: str | Path,
    *,
    expected_schema: FeatureSchema | None = None,
    expected_device: str | None = None,
) -> Predictor:
    """Rebuild a saved predictor; it carries its metadata as ``predictor.info_``."""
    directory = Path(directory)
    data = _read_metadata(directory)
    info = _info(data, directory / METADATA_FILE)
    if expected_schema is not None:
        check_schema(info, expected_schema, str(directory))
    if expected_device is not None and info.device is not None and info.device != expected_device:
        raise PersistenceError(
            f"predictor {str(directory)!r} was trained for device {info.device!r}, not {expected_device!r}"
        )
    try:
        cls = get_predictor_class(info.name)
    except HwprofError as exc:
        raise PersistenceError(f"cannot load predictor {str(directory)!r}: {exc}") from None
    if info.schema.kind != "raw":
        try:
            featurizer_for_schema(info.schema)
        except HwprofError as exc:
            raise PersistenceError(f"predictor {str(directory)!r} is stale: {exc}") from None
    predictor = cls(**_constructor_params(cls, info.params))
    try:  # the saved values, checked as fit() checks them: "false" is not a bool, "0.1" not a number
        predictor._check_params()
    except ConfigError as exc:
        raise PersistenceError(f"{directory / METADATA_FILE} is corrupt: saved parameter {exc}") from None
    predictor._restore_common(info.schema, info.n_train, info.train_hash, info.floor_ms)
    state = data.get("state") or {}
    if not isinstance(state, dict):
        raise PersistenceError(f"{directory / METADATA_FILE} is corrupt: state must be a JSON object, got {type(state).__name__}")
    _check_state_files(directory, state, directory / METADATA_FILE)
    try:
        predictor._load_state(directory, state)
    except PersistenceError:
        raise
    except FileNotFoundError as exc:
        raise PersistenceError(f"predictor {str(directory)!r} is incomplete: {Path(exc.filename or '?').name} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, DataError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PersistenceError(f"predictor {str(directory)!r} has a corrupt model file: {line}") from None
    except Exception as exc:  # xgboost.core.XGBoostError and other backend errors
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PersistenceError(f"predictor {str(directory)!r} has an unreadable model file: {line}") from None
    predictor.info_ = info
    return predictor
