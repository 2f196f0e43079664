"""What every few-shot method shares: a model *pretrained* once on source devices, then *adapted* per device.

``TransferModel.pretrain(sources)`` does the expensive part (minutes at most)
and can be saved as a directory (``transfer.json`` plus portable arrays or a
torch ``state_dict``; no pickles); ``adapt(archs, latency_ms)`` turns the K
measurements of a new device into an ordinary fitted
:class:`~predictors.base.Predictor` (a ``linear`` or ``mlp`` predictor), which
saves, loads and differentiates like any other.
"""

from __future__ import annotations

import datetime as _dt
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np

from hwprof import __version__
from hwprof.errors import ConfigError, DataError, HwprofError, PersistenceError
from hwprof.outputs import write_atomic
from predictors.base import Predictor, ProgressCallback, arch_specs, check_y
from predictors.features.encoding import DEFAULT_FEATURE_SET, ArchFeaturizer, infer_space
from predictors.schema import FeatureSchema, featurizer_for_schema

if TYPE_CHECKING:
    from predictors.transfer.sources import SourceLatencies

TRANSFER_FORMAT_VERSION = 1
TRANSFER_FILE = "transfer.json"


def check_samples(archs: Sequence[Any], latency_ms: Any, minimum: int, method: str) -> tuple[list[str], np.ndarray]:
    """The K measured samples of a new device, validated: specs, finite positive ms, distinct, enough of them."""
    specs = arch_specs(archs)
    y = check_y(latency_ms, len(specs))
    if len(specs) < minimum:
        raise DataError(f"few-shot method {method!r} needs at least {minimum} measured architectures on the new device, got {len(specs)}")
    if len(set(specs)) != len(specs):
        dup = next(s for s in specs if specs.count(s) > 1)
        raise DataError(f"architecture {dup!r} is given twice; expected each measured architecture once")
    return specs, y


def featurizer_for_sources(sources: "SourceLatencies", feature_set: str, space: str | None) -> ArchFeaturizer:
    return ArchFeaturizer(space if space is not None else infer_space(list(sources.archs)), feature_set)


class TransferModel(ABC):
    """A few-shot method's source knowledge: ``pretrain`` on source devices, ``adapt`` to a new one."""

    method: ClassVar[str] = ""
    min_samples: ClassVar[int] = 2
    PARAMS: ClassVar[tuple[str, ...]] = ()  # the settings pretrain() accepts
    DEFAULTS: ClassVar[Mapping[str, Any]] = {}  # their defaults
    # True when pretraining chooses reference architectures (from the setting ``reference_pool``, candidate rows).
    uses_references: ClassVar[bool] = False

    schema: FeatureSchema
    devices: tuple[str, ...]

    @classmethod
    def pretrain(
        cls,
        sources: "SourceLatencies",
        *,
        feature_set: str = DEFAULT_FEATURE_SET,
        space: str | None = None,
        seed: int = 0,
        progress: ProgressCallback | None = None,
        **params: Any,
    ) -> "TransferModel":
        """Learn from the source devices' latency table (the space is inferred from the specs unless given).

        ``params`` are the method's settings (``PARAMS``); ConfigError names unknown or invalid ones.
        """
        check_method_params(cls.method, params, cls.PARAMS)
        settings = cls._settings(dict(params))
        featurizer = featurizer_for_sources(sources, feature_set, space)
        return cls._pretrain(sources, featurizer, settings, seed, progress)

    @classmethod
    def _settings(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The validated settings of a pretraining (``DEFAULTS`` filled in), before any data is touched."""
        settings = {**cls.DEFAULTS, **params}
        cls.check_settings(settings)
        return settings

    @staticmethod
    def check_settings(settings: Mapping[str, Any]) -> None:
        """Raise ConfigError/DataError for an invalid setting."""

    @classmethod
    @abstractmethod
    def _pretrain(
        cls,
        sources: "SourceLatencies",
        featurizer: ArchFeaturizer,
        settings: dict[str, Any],
        seed: int,
        progress: ProgressCallback | None,
    ) -> "TransferModel":
        """The method's pretraining on the featurized source table."""

    @abstractmethod
    def _adapt(self, specs: list[str], X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> Predictor:
        """A fitted predictor for the new device from the samples (specs, features X, latencies y; validated)."""

    def adapt(self, archs: Sequence[Any], latency_ms: Any, *, progress: ProgressCallback | None = None) -> Predictor:
        """A fitted predictor of the new device from K measured architectures (specs) and their latencies (ms)."""
        specs, y = check_samples(archs, latency_ms, self.min_samples, self.method)
        X = self.featurizer.transform(specs)
        predictor = self._adapt(specs, X, y, progress)
        predictor.transfer_method_ = self.method
        predictor.source_devices_ = self.devices
        return predictor

    @property
    def featurizer(self) -> ArchFeaturizer:
        return featurizer_for_schema(self.schema)  # type: ignore[return-value]

    @property
    def reference_archs(self) -> tuple[str, ...]:
        """Architectures this model wants measured on a new device (empty: any K will do)."""
        return ()

    # --- persistence -------------------------------------------------------------------------
    @abstractmethod
    def _save_state(self, directory: Path) -> dict[str, Any]:
        """Write arrays/weights into ``directory``; return JSON-able state."""

    @classmethod
    @abstractmethod
    def _load_state(cls, directory: Path, schema: FeatureSchema, devices: tuple[str, ...], state: Mapping[str, Any]) -> "TransferModel":
        """Rebuild from what ``_save_state`` wrote."""

    def save(self, directory: str | Path) -> Path:
        """Write the pretrained model into ``directory``; returns the metadata path."""
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            state = self._save_state(directory)
            meta = {
                "format_version": TRANSFER_FORMAT_VERSION,
                "kind": "transfer-model",
                "method": self.method,
                "hwprof_version": __version__,
                "feature_schema": self.schema.to_json(),
                "devices": list(self.devices),
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "state": state,
            }
            write_atomic(directory / TRANSFER_FILE, json.dumps(meta, indent=2, allow_nan=False) + "\n")  # whole or not at all
        except ConfigError as exc:  # write_atomic's one line (disk full, permission denied)
            raise PersistenceError(str(exc)) from None
        except OSError as exc:
            raise PersistenceError(f"cannot write transfer model to {str(directory)!r}: {exc.strerror or exc}") from None
        return directory / TRANSFER_FILE


def read_transfer_metadata(directory: Path) -> dict[str, Any]:
    path = directory / TRANSFER_FILE
    if not path.is_file():
        raise PersistenceError(f"no transfer model at {str(directory)!r}: {TRANSFER_FILE} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise PersistenceError(f"{path} is corrupt: not valid JSON ({exc})") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise PersistenceError(f"{path} is corrupt: format_version is {version!r}, expected an integer")
    if version > TRANSFER_FORMAT_VERSION:
        raise PersistenceError(
            f"{path} has format version {version}, newer than this hwprof supports ({TRANSFER_FORMAT_VERSION}); upgrade hwprof"
        )
    return meta


def load_state(cls: type[TransferModel], directory: Path, meta: Mapping[str, Any]) -> TransferModel:
    """Rebuild a transfer model of class ``cls`` from its metadata; PersistenceError on any problem."""
    try:
        schema = FeatureSchema.from_json(meta["feature_schema"])
        featurizer_for_schema(schema)
        devices = tuple(str(d) for d in meta["devices"])
        return cls._load_state(directory, schema, devices, dict(meta.get("state") or {}))
    except KeyError as exc:
        raise PersistenceError(f"transfer model {str(directory)!r} is corrupt: missing {exc}") from None
    except PersistenceError:
        raise
    except (OSError, ValueError, TypeError, RuntimeError, HwprofError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PersistenceError(f"transfer model {str(directory)!r} is unusable: {line}") from None


def check_method_params(method: str, params: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"few-shot method {method!r} has no parameter(s) {unknown}; known: {', '.join(allowed) or 'none'}")
