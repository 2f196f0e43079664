"""Few-shot transfer of latency prediction to a new device from K measured architectures.

Two steps, so that the expensive one is done once:

1. ``model = pretrain(method, sources)`` learns from the source devices'
   latency table (a :class:`SourceLatencies`, e.g. from a CSV or a store) and
   can be saved (``model.save(dir)``) and reloaded (``load_transfer_model(dir)``);
2. ``predictor = model.adapt(archs, latency_ms)`` turns K measurements of the new
   device into an ordinary fitted :class:`~predictors.base.Predictor`
   (``linear`` or ``mlp``) that ``predictors.persistence.save`` stores.

``adapt(method, sources, archs, latency_ms)`` does both at once.

Methods (:func:`transfer_methods`; found by name through the one plugin
registry, kind ``"transfer"``, entry-point group ``hwprof.transfer``, so a
package can add its own :class:`TransferModel`):

- ``ridge``: the issue's reference, ridge (alpha = 1) over the source devices' latencies;
- ``auto`` (default): per new device, ``nnls`` or ridge over standardized source
  latencies, whichever predicts the K samples best leave-one-out;
- ``nnls``: non-negative combination of source devices (no penalty to tune);
- ``embedding``: a device-conditioned network on [features, device embedding],
  the embedding being the device's latencies on fixed reference architectures
  (``model.reference_archs``: measure exactly those for the best result);
- ``finetune``: a multi-output source network whose head is set from the K
  samples, then fine-tuned on them.

A device measured through hwprof (whose exports drop dead operations) adapts
with :func:`predictors.transfer.live.adapt_live`: the predictor is fitted on,
and predicts for, each network's live equivalent (feature kind
``live:<features>:<space>``).

Which K architectures to measure: :func:`suggest_archs` (farthest-point
sampling over the source devices' standardized log latencies; for
``embedding`` the model's references). The whole ``hwprof adapt`` workflow
(loading sources, choosing the K samples, held-out metrics) is
:mod:`predictors.transfer.workflow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from hwprof import registry
from hwprof.errors import ConfigError, DataError, PersistenceError, UnknownNameError
from predictors.base import Predictor, ProgressCallback
from predictors.transfer.base import TRANSFER_FILE, TransferModel, load_state, read_transfer_metadata
from predictors.transfer.combination import AutoCombination, NNLSCombination, RidgeCombination, combination_weights
from predictors.transfer.conditioned import DeviceConditionedModel, reference_embedding
from predictors.transfer.finetune import FineTuneModel
from predictors.transfer.selection import SELECTION_METHODS, suggest_samples
from predictors.transfer.sources import SourceBank, SourceLatencies, standardized_log

DEFAULT_METHOD = "auto"

__all__ = [
    "DEFAULT_METHOD",
    "AutoCombination",
    "SELECTION_METHODS",
    "TRANSFER_FILE",
    "DeviceConditionedModel",
    "FineTuneModel",
    "NNLSCombination",
    "RidgeCombination",
    "SourceBank",
    "SourceLatencies",
    "TransferModel",
    "adapt",
    "combination_weights",
    "get_transfer_method",
    "is_transfer_model",
    "load_transfer_model",
    "pretrain",
    "reference_embedding",
    "standardized_log",
    "suggest_archs",
    "suggest_samples",
    "transfer_methods",
]


def transfer_methods() -> list[str]:
    """Names of the registered few-shot methods."""
    return registry.names("transfer")


def get_transfer_method(method: str) -> type[TransferModel]:
    """The class of a few-shot method by name; UnknownNameError lists the known ones."""
    if not isinstance(method, str) or method not in transfer_methods():
        raise UnknownNameError(f"unknown few-shot method {method!r}; known: {', '.join(transfer_methods())}")
    cls = registry.load("transfer", method)
    if not (isinstance(cls, type) and issubclass(cls, TransferModel)):
        raise UnknownNameError(f"few-shot method {method!r} is registered as {cls!r}, which is not a TransferModel subclass")
    return cls


def pretrain(method: str, sources: SourceLatencies, *, exclude: Sequence[str] = (), **options: Any) -> TransferModel:
    """Learn ``method`` from the source devices (minus ``exclude``, e.g. the target device itself).

    ``options`` are those of :meth:`TransferModel.pretrain` (``feature_set``,
    ``space``, ``seed``, ``progress``) and the method's settings.
    """
    cls = get_transfer_method(method)
    if not isinstance(sources, SourceLatencies):
        raise ConfigError(f"sources must be a SourceLatencies table, got {type(sources).__name__}")
    if exclude:
        unknown = [d for d in exclude if d not in sources.devices]
        if unknown:
            raise DataError(f"unknown source device(s) {unknown} to exclude; available: {', '.join(sources.devices)}")
        sources = sources.without(exclude)
    return cls.pretrain(sources, **options)


def adapt(
    method: str,
    sources: "SourceLatencies | TransferModel | str | Path",
    archs: Sequence[Any],
    latency_ms: Any,
    *,
    exclude: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    **options: Any,
) -> Predictor:
    """A fitted predictor of a new device from K measured architectures and their latencies (ms).

    ``sources`` is a source latency table (pretrained here with ``options``, see
    :func:`pretrain`), an already pretrained :class:`TransferModel`, or the
    directory of a saved one (then ``method`` must match the saved method).
    ``progress(done, total)`` follows the adaptation. Errors: DataError for too
    few samples, NaN/non-positive latencies, architectures of another space;
    ConfigError for a method/model mismatch or bad settings.
    """
    get_transfer_method(method)
    if isinstance(sources, (str, Path)):
        sources = load_transfer_model(sources)
    if isinstance(sources, TransferModel):
        if sources.method != method:
            raise ConfigError(f"the pretrained transfer model uses method {sources.method!r}, not {method!r}")
        if options or exclude:
            raise ConfigError("settings and exclusions apply when pretraining; this transfer model is already pretrained")
        model = sources
    else:
        model = pretrain(method, sources, exclude=exclude, **options)
    return model.adapt(archs, latency_ms, progress=progress)


def is_transfer_model(directory: str | Path) -> bool:
    """True when ``directory`` holds a saved transfer model (as opposed to a single-device predictor)."""
    return (Path(directory) / TRANSFER_FILE).is_file()


def load_transfer_model(directory: str | Path) -> TransferModel:
    """A pretrained transfer model saved with ``model.save(directory)``; PersistenceError when unusable."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PersistenceError(f"no transfer model at {str(directory)!r}: not a directory")
    meta = read_transfer_metadata(directory)
    method = meta.get("method")
    try:
        cls = get_transfer_method(method)
    except UnknownNameError as exc:
        raise PersistenceError(f"{directory / TRANSFER_FILE} names an unusable few-shot method: {exc}") from None
    return load_state(cls, directory, meta)


def suggest_archs(
    sources: "SourceLatencies | TransferModel",
    k: int,
    *,
    seed: int = 0,
    pool: Sequence[int] | None = None,
    method: str = "farthest",
) -> list[str]:
    """Which K architectures to measure on a new device.

    For a source table: farthest-point sampling over the source devices'
    standardized log latencies (``pool`` restricts to those rows). For a
    pretrained ``embedding`` model: its reference architectures (k must equal
    their number). Other pretrained models hold no table; pass the table.
    """
    if isinstance(sources, TransferModel):
        refs = sources.reference_archs
        if not refs:
            raise ConfigError(f"a pretrained {sources.method!r} model keeps no latency table to choose from; pass the source table")
        if k != len(refs):
            raise DataError(f"this {sources.method!r} model was pretrained with {len(refs)} reference architectures; k must be {len(refs)}, got {k}")
        return list(refs)
    if not isinstance(sources, SourceLatencies):
        raise ConfigError(f"sources must be a SourceLatencies table or a TransferModel, got {type(sources).__name__}")
    rows = suggest_samples(k, sources.latency_ms, seed, pool=pool, method=method)
    return [sources.archs[int(i)] for i in rows]
