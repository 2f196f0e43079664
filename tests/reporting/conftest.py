"""Tiny, seeded inputs for report tests: a store filled through the Store API, a predictor trained on it
with ``train_predictor``, and a LayerNAS search with that predictor as its cost (``run_search``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwprof import __version__
from hwprof.store import Store
from hwprof.types import Architecture, DeviceInfo, InputSpec, LatencyStats, Measurement, ModelArtifact

N_ARCHS = 40
SETTINGS = {"intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": "all"}
PROTOCOL = {"rounds": 5, "visit_runs": 20, "target_rel_ci": 0.01, "stop_quantile": 0.1, "unstable_rel": 0.1}
HOST = {
    "hostname": "bench-1", "cpu_model": "Test CPU 3000", "cores_logical": 2, "cores_physical": 2, "loadavg": [0.1, 0.2, 0.3],
    "scaling_governor": "performance", "python": "3.11.7", "versions": {"onnxruntime": "1.18.0", "torch": "2.13.0"},
}  # fmt: skip
UNSTABLE_INDEX = 3


def nb201_sample(n: int = N_ARCHS) -> tuple[list[str], np.ndarray]:
    """``n`` seeded NB201 architectures with a latency made from their table latency on one device (ms)."""
    from nas.tabular import load_nb201

    table = load_nb201()
    idx = np.random.default_rng(0).choice(len(table.archs), size=n, replace=False)
    return [table.archs[i] for i in idx], np.asarray(table.latency_ms["gold_6240"])[idx] * 0.8


def measurement(arch: Architecture, ms: float, unstable: bool) -> Measurement:
    stats = LatencyStats(ms, ms * 1.01, ms * 1.1, ms * 0.02, ms * 0.97, ms * 1.3, ms * 0.005, 0.02, 100)
    return Measurement(
        arch_id=arch.arch_id, artifact_sha256=arch.arch_id.ljust(64, "0"), device="ort-cpu", stats=stats, n_warmup=5,
        unstable=unstable, settings=SETTINGS, host=HOST, timestamp="2026-01-01T12:00:00+00:00", hwprof_version=__version__,
        samples_ms=(ms * 0.97, ms, ms * 1.02), stop_reason="ci", estimator="min", estimates={"min": ms * 0.97, "median": ms},
    )  # fmt: skip


def make_store(path: Path, drift_exceeded: bool = True) -> Path:
    archs, latency = nb201_sample()
    info = DeviceInfo("ort-cpu", "onnxruntime", "1.18.0", "Test CPU 3000", 2, settings=SETTINGS)
    with Store(path) as store:
        device_id = store.upsert_device(info)
        run_id = store.start_run(device_id, SETTINGS, PROTOCOL, HOST, "hwprof profile -n 40")
        with store.transaction():
            for i, (spec, ms) in enumerate(zip(archs, latency)):
                arch = Architecture("nb201", spec)
                store.add_architecture(arch)
                store.add_artifact(ModelArtifact(
                    path=f"/cache/{arch.arch_id}.onnx", format="onnx", sha256=arch.arch_id.ljust(64, "0"), size_bytes=1,
                    arch_id=arch.arch_id, inputs=(InputSpec("x", (1, 3, 32, 32)),), exporter={"opset": 17},
                ))  # fmt: skip
                store.add_measurement(run_id, device_id, measurement(arch, float(ms), unstable=i == UNSTABLE_INDEX))
        ref = Architecture("nb201", archs[0]).arch_id
        store.add_drift_check(run_id, ref, 20, 1.0, 1.08 if drift_exceeded else 1.01, 0.08 if drift_exceeded else 0.01,
                              drift_exceeded)  # fmt: skip
        store.finish_run(run_id, "completed")
    return path


def train_into(db: Path, out: Path) -> Path:
    from predictors.data import load_latency_data
    from predictors.training import train_predictor

    data = load_latency_data(db, None, device="ort-cpu")
    train_predictor(data, "gbdt", {"n_estimators": 30}, seed=0).save(out)
    return out


def search_into(predictor_dir: Path, out: Path, budget: int = 40) -> Path:
    from nas.search import SearchRequest, run_search

    run_search(SearchRequest(
        algorithm="layernas", space="nb201", accuracy="tabular:cifar10", costs=(f"predictor:{predictor_dir}",),
        constraints=("latency_ms<=8",), budget=budget, seed=0, out=out,
    ))  # fmt: skip
    return out


@pytest.fixture(scope="package")
def tiny_inputs(tmp_path_factory) -> dict[str, Path]:
    """{"store", "predictor", "search"}: built once for the report tests."""
    root = tmp_path_factory.mktemp("report-inputs")
    db = make_store(root / "hwprof.db")
    predictor = train_into(db, root / "gbdt")
    return {"store": db, "predictor": predictor, "search": search_into(predictor, root / "search")}
