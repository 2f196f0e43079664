"""CSV export stays byte-identical to what earlier hwprof versions wrote for the same database."""

from __future__ import annotations

import io
from pathlib import Path

from hwprof.store import Store
from hwprof.types import Architecture, DeviceInfo, InputSpec, LatencyStats, Measurement, ModelArtifact

EXPECTED = Path(__file__).parent / "data" / "store_export.csv"
HOST = {"hostname": "bench-2", "cpu_model": 'Test CPU "Zen", 3 GHz — ünïcode', "load_1m": 0.25}


def _measurement(arch: Architecture, median_ms: float, settings: dict, i: int, **kw) -> Measurement:
    stats = LatencyStats(
        median_ms=median_ms, mean_ms=median_ms / 3, p90_ms=median_ms * 1.1, std_ms=median_ms * 0.07,
        min_ms=median_ms * 0.9, max_ms=median_ms * 1.7, ci_half_width_ms=median_ms / 7, cv=0.1 / 3, n_runs=20 + i,
    )  # fmt: skip
    return Measurement(
        arch_id=arch.arch_id, artifact_sha256=arch.arch_id.ljust(64, "f"), device="dev", stats=stats, n_warmup=i,
        unstable=i % 2 == 1, settings=settings, host=HOST, timestamp=f"2024-06-0{1 + i % 9}T10:00:00.123+00:00",
        hwprof_version="0.9.0-test", samples_ms=(median_ms, median_ms * 1.01), **kw,
    )  # fmt: skip


def build_export_database(path: Path) -> None:
    """Two devices, two spaces, calibrated and raw rows, re-profiled rows, energy, quoting-hungry host fields."""
    with Store(path) as store:
        plan = [
            ("ort-cpu", {"threads": 1, "cores": [0, 1]}, [("toy", "w4-d1", 1.25, 2.0), ("toy", "w8-d2", 3.5, 2.2),
                                                          ("toy", "w4-d1", 1.5, 2.5), ("other", "w4-d1", 0.1 + 0.2, None)]),
            ("pi4", {"threads": 4}, [("toy", "w8-d2", 17.0, None), ("toy", "w4-d1", 11.0 / 3, 1.0)]),
        ]  # fmt: skip
        i = 0
        for name, settings, rows in plan:
            info = DeviceInfo(name, "onnxruntime", "1.18.0", "Test CPU", 4, settings=settings)
            device_id = store.upsert_device(info)
            run_id = store.start_run(device_id, settings, {"min_runs": 10}, HOST, "hwprof profile")
            for space, spec, ms, ref in rows:
                arch = Architecture(space, spec)
                energy = {"energy_mj": 2.0 / 3, "meter": "rapl"} if i % 3 == 0 else {}
                m = _measurement(arch, ms, settings, i, reference_ms=ref, stop_reason="ci" if i % 2 else "", **energy)
                with store.transaction():
                    store.add_architecture(arch)
                    store.add_artifact(
                        ModelArtifact(f"/c/{arch.arch_id}.onnx", "onnx", m.artifact_sha256, 10, arch.arch_id,
                                      (InputSpec("x", (1, 3, 8, 8)),))
                    )  # fmt: skip
                    store.add_measurement(run_id, device_id, m)
                i += 1


def test_export_csv_is_byte_identical_to_the_recorded_output(tmp_path):
    db = tmp_path / "export.db"
    build_export_database(db)
    with Store(db, create=False) as store:
        buf = io.StringIO(newline="")
        assert store.export_csv(buf) == 6
        out = tmp_path / "pi.csv"
        assert store.export_csv(out, device="pi4") == 2
    expected = EXPECTED.read_bytes()
    assert buf.getvalue().encode("utf-8") == expected
    header, *rows = expected.decode("utf-8").splitlines(keepends=True)
    assert out.read_bytes() == "".join([header, *rows[-2:]]).encode("utf-8")
