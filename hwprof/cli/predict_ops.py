"""CLI wiring of the op-level predictor: export stored architectures, profile their kernels, fit, predict.

The ops predictor learns from onnxruntime's per-node timings, which the
store does not hold; training therefore re-runs each training network once
with the profiler on (same device settings as its stored measurement) and
fits the network-level overhead on the stored, protocol-measured latencies.
Predicting exports the architectures (cached) and sums predicted kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwprof import registry
from hwprof.errors import ConfigError, PersistenceError
from hwprof.types import Architecture

ORT_DEVICES = ("ort-cpu",)
NODE_WARMUP = 5


def _exporter(space_name: str, cache_dir: Path) -> Callable[[str], Any]:
    from devices.export import ArtifactCache
    from hwprof.profiling import WEIGHT_SEED

    space = registry.get_space(space_name)
    cache = ArtifactCache(cache_dir)

    def export(spec: str) -> Any:
        arch = space.parse(spec)
        return cache.get_or_export(
            arch.arch_id, arch.to_json(), lambda: space.build(arch, seed=WEIGHT_SEED), tuple(space.input_shape), seed=WEIGHT_SEED
        )

    return export


def _device_settings(db: Path, device: str, space: str, archs: Sequence[str]) -> dict[str, Any]:
    """Settings of the stored measurements (the newest one among ``archs``); several settings are refused."""
    from hwprof.cli.predict_data import open_store

    store = open_store(db)
    try:
        wanted = {Architecture(space, a).arch_id for a in archs}
        rows = [r for r in store.measurements(device=device, space=space, latest_only=True) if r["arch_id"] in wanted]
    finally:
        store.close()
    hashes = {r["settings_hash"] for r in rows}
    if len(hashes) > 1:
        raise ConfigError(
            f"{db} holds {device!r} measurements under {len(hashes)} different settings; "
            "the ops predictor needs one setting (profile again with one)"
        )
    return dict(rows[-1]["settings"]) if rows else {}


def train_ops(
    predictor: Any,
    data: Any,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    db: Path,
    cache_dir: Path | None,
    node_runs: int,
    with_progress: Callable[[str, Callable[[Callable[[int, int], None]], Any]], Any],
) -> tuple[Any, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Profile the training networks node by node, fit, and predict train and validation networks."""
    from devices.ort_profile import profile_nodes

    if data.device not in ORT_DEVICES:
        raise ConfigError(f"the ops predictor learns from onnxruntime node profiles; device {data.device!r} is not one of {', '.join(ORT_DEVICES)}")
    if node_runs < 1:
        raise ConfigError(f"--node-runs must be >= 1, got {node_runs}")
    if len(train_idx) < 3:
        raise ConfigError(f"the ops predictor needs at least 3 training networks, got {len(train_idx)}")
    cache = cache_dir if cache_dir is not None else db.parent / ".hwprof-cache"
    export = _exporter(data.space, cache)
    train_archs = [data.archs[i] for i in train_idx]
    settings = _device_settings(db, data.device, data.space, train_archs)
    device = registry.get_device(data.device, **settings)
    device.check()
    lowered, timings = [], []

    def profile_all(report: Callable[[int, int], None]) -> None:
        for n, spec in enumerate(train_archs, start=1):
            result = profile_nodes(export(spec), cache / "ort-optimized", n_runs=node_runs, n_warmup=NODE_WARMUP, device=device)
            lowered.append(result.optimized_model_path)
            timings.append(result.profile.node_latency_ms())
            report(n, len(train_archs))

    with_progress(f"profiling kernels of {len(train_archs)} networks", profile_all)
    if settings.get("graph_optimization_level"):
        predictor.set_params(optimization_level=settings["graph_optimization_level"])
    y_train = data.latency_ms[train_idx]
    with_progress(
        "training ops", lambda report: predictor.fit_graphs(lowered, timings, y_train, lowered=True, progress=report)
    )
    train_pred = predictor.predict_graphs(lowered, lowered=True)
    val_pred = None
    if len(val_idx):
        val_pred = predict_ops(predictor, [data.archs[i] for i in val_idx], cache, with_progress, space=data.space)
    extra = {"space": data.space, "device_settings": settings, "node_runs": node_runs}
    return predictor, train_pred, val_pred, extra


def predict_ops(
    predictor: Any,
    archs: Sequence[str],
    cache_dir: Path,
    with_progress: Callable[[str, Callable[[Callable[[int, int], None]], Any]], Any],
    space: str | None = None,
) -> np.ndarray:
    """Export (cached) and predict architecture specs with a fitted ops predictor."""
    if space is None:
        info = getattr(predictor, "info_", None)
        space = info.extra.get("space") if info is not None else None
        if not space:
            raise PersistenceError("this ops predictor does not record its search space; predict exported graphs from Python")
    export = _exporter(space, cache_dir)

    def run(report: Callable[[int, int], None]) -> np.ndarray:
        paths = []
        for n, spec in enumerate(archs, start=1):
            paths.append(export(spec).path)
            report(n, len(archs))
        return predictor.predict_graphs(paths)

    return with_progress(f"exporting {len(archs)} networks", run)

