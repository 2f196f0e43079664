"""The store's read side: frozen records, filters applied in SQL, one indexed lookup per architecture."""

from __future__ import annotations

import dataclasses

import pytest

import hwprof.store as store_module
import hwprof.store_records as records_module
from hwprof.errors import StoreError
from hwprof.profiling import Profiler
from hwprof.store import Store
from hwprof.store_records import LatencyRecord, MeasurementRecord
from hwprof.types import Architecture
from nas.cost.measured import MeasuredCost

from .conftest import FAST, ScriptedDevice
from .test_store import Bench, artifact_for, device_info, measurement

A = Architecture("toy", "w4-d1")
B = Architecture("toy", "w8-d2")
C = Architecture("other", "w4-d1")
FAST_SETTINGS = {"threads": 4, "cores": [0, 1]}
H1 = measurement(A, 1.0).settings_hash


@pytest.fixture
def bench(tmp_path):
    with Store(tmp_path / "hw.db") as store:
        yield Bench(store)


def _fast_device(bench: Bench, median_ms: float) -> Bench:
    """The same device name under other settings (another fingerprint), with A measured once."""
    fast = Bench(bench.store, device_info(settings=FAST_SETTINGS))
    fast.add(A, median_ms, settings=FAST_SETTINGS)
    return fast


def _calibrated(bench: Bench, arch: Architecture, median_ms: float, reference_ms: float) -> int:
    m = dataclasses.replace(measurement(arch, median_ms, device=bench.info.name), reference_ms=reference_ms)
    with bench.store.transaction():
        bench.store.add_architecture(arch)
        bench.store.add_artifact(artifact_for(arch))
        return bench.store.add_measurement(bench.run_id, bench.device_id, m)


# --- records ------------------------------------------------------------------------


def test_records_are_frozen_values_with_parsed_json(bench):
    bench.add(A, 1.0)
    fast = _fast_device(bench, 0.5)
    first, second = bench.store.measurements()
    assert isinstance(first, MeasurementRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.median_ms = 2.0  # type: ignore[misc]
    assert second.settings == {"threads": 4, "cores": (0, 1)}  # JSON arrays come back as tuples
    (device,) = [d for d in bench.store.devices() if d.id == fast.device_id]
    assert device.info["settings"]["cores"] == (0, 1)
    run = bench.store.runs()[-1]
    assert (run.device, run.settings["cores"], run.n_measurements) == ("ort-cpu", (0, 1), 1)
    for record in (device, run, bench.store.summary(), bench.store.summary().per_device[0]):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.id = 0  # type: ignore[misc, union-attr]


def test_samples_are_parsed_only_when_asked(bench, monkeypatch):
    bench.add(A, 1.0)
    bench.add(B, 2.0)
    calls = []
    real = records_module.json.loads
    monkeypatch.setattr(records_module.json, "loads", lambda text, **kw: calls.append(text) or real(text, **kw))
    assert [r.samples_ms for r in bench.store.measurements()] == [None, None]
    assert not any(text.startswith("[") for text in calls)  # no sample array was decoded
    assert [len(r.samples_ms or ()) for r in bench.store.measurements(with_samples=True)] == [3, 3]


# --- filters in SQL ---------------------------------------------------------------------


def test_filters_by_architectures_settings_and_run(bench):
    bench.add(A, 1.0)
    bench.add(B, 2.0)
    bench.add(C, 3.0)
    fast = _fast_device(bench, 0.5)
    s = bench.store
    assert [r.median_ms for r in s.measurements(arch_ids=[A.arch_id, C.arch_id])] == [1.0, 3.0, 0.5]
    assert s.measurements(arch_ids=[]) == []  # an empty selection selects nothing, not everything
    assert [r.median_ms for r in s.measurements(arch_ids=iter([A.arch_id]), settings_hash=H1)] == [1.0]
    assert [r.median_ms for r in s.measurements(run_id=fast.run_id)] == [0.5]
    assert [r.median_ms for r in s.measurements(device="ort-cpu", space="toy", arch_ids=[B.arch_id])] == [2.0]
    assert s.spaces() == ["other", "toy"] and s.spaces("ort-cpu") == ["other", "toy"] and s.spaces("pi4") == []


def test_many_architecture_ids_do_not_hit_the_sqlite_variable_limit(bench):
    bench.add(A, 1.0)
    ids = [f"{i:016x}" for i in range(40_000)] + [A.arch_id]
    assert [r.spec for r in bench.store.measurements(arch_ids=ids)] == ["w4-d1"]


def test_latency_records_are_the_newest_per_architecture_and_setting(bench):
    bench.add(A, 1.0)
    bench.add(A, 1.5)
    bench.add(B, 2.0)
    _fast_device(bench, 0.5)
    records = bench.store.latency_records("ort-cpu")
    assert all(isinstance(r, LatencyRecord) for r in records)
    assert records[-1].settings_hash == measurement(A, 1.0, settings=FAST_SETTINGS).settings_hash != H1
    assert [(r.spec, r.median_ms) for r in records] == [("w4-d1", 1.5), ("w8-d2", 2.0), ("w4-d1", 0.5)]
    assert [r.median_ms for r in bench.store.latency_records("ort-cpu", settings_hash=H1)] == [1.5, 2.0]
    assert bench.store.latencies("ort-cpu") == {"w4-d1": 0.5, "w8-d2": 2.0}  # newest per spec over all settings


def test_device_names_are_listed_once_and_only_when_measured(bench):
    _fast_device(bench, 0.5)  # same name, other fingerprint
    bench.add(B, 2.0)
    Bench(bench.store, device_info(name="pi4"))  # no measurements
    assert bench.store.measured_devices() == ["ort-cpu"]
    with pytest.raises(StoreError, match="no measurements on device 'pi4'.*holds measurements on ort-cpu"):
        bench.store.latencies("pi4")
    assert bench.store.latencies("ort-cpu", space="other") == {}  # measured device, nothing in that space


# --- one architecture -------------------------------------------------------------------


def test_latest_latency_of_one_architecture(bench):
    assert bench.store.latest_latency("ort-cpu", A.arch_id, H1) is None
    bench.add(A, 1.0)
    bench.add(B, 9.0)
    bench.add(A, 1.25)
    _fast_device(bench, 0.5)
    record = bench.store.latest_latency("ort-cpu", A.arch_id, H1)
    assert (record.spec, record.space, record.median_ms, record.corrected_ms) == ("w4-d1", "toy", 1.25, None)
    assert record.latency_ms(corrected=True) == 1.25  # uncalibrated rows stay raw
    h_fast = measurement(A, 1.0, settings=FAST_SETTINGS).settings_hash
    assert bench.store.latest_latency("ort-cpu", A.arch_id, h_fast).median_ms == 0.5
    assert bench.store.latest_latency("pi4", A.arch_id, H1) is None
    assert bench.store.latest_latency("ort-cpu", C.arch_id, H1) is None


def test_latest_latency_agrees_with_the_full_read_on_calibrated_rows(bench):
    _calibrated(bench, A, 2.0, reference_ms=4.0)  # the baseline: first reference of (device, settings, space)
    _calibrated(bench, B, 3.0, reference_ms=5.0)
    _calibrated(bench, A, 2.2, reference_ms=4.4)
    rows = {r.arch_id: r for r in bench.store.measurements(latest_only=True)}
    for arch in (A, B):
        record = bench.store.latest_latency("ort-cpu", arch.arch_id, H1)
        assert record.corrected_ms == pytest.approx(rows[arch.arch_id].corrected_ms)
    assert bench.store.latest_latency("ort-cpu", B.arch_id, H1).corrected_ms == pytest.approx(3.0 * 4.0 / 5.0)
    assert bench.store.latencies("ort-cpu", corrected=True) == pytest.approx({"w4-d1": 2.0, "w8-d2": 2.4})


def _vm_steps(store: Store, fn) -> int:
    """SQLite virtual-machine steps (in units of 10) spent by ``fn``: grows with the rows a query visits."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(tick, 10)
    try:
        fn()
    finally:
        store._conn.set_progress_handler(None, 10)
    return steps[0]


def test_one_architecture_lookup_does_not_read_other_architectures_rows(tmp_path, monkeypatch):
    def lookup_cost(n_others: int) -> tuple[int, int]:
        with Store(tmp_path / f"n{n_others}.db") as store:
            bench = Bench(store)
            bench.add(A, 1.0)
            with store.transaction():
                for i in range(n_others):
                    bench.add(Architecture("toy", f"w{i}-d9"), 5.0)
            parsed: list[int] = []
            real = LatencyRecord.from_row
            monkeypatch.setattr(LatencyRecord, "from_row", lambda row, c: parsed.append(row["id"]) or real(row, c))
            steps = _vm_steps(store, lambda: store.latest_latency("ort-cpu", A.arch_id, H1))
            monkeypatch.setattr(LatencyRecord, "from_row", real)
            plan = " ".join(r[3] for r in store._conn.execute(
                f"EXPLAIN QUERY PLAN SELECT {store_module._LATENCY_COLUMNS}{store_module._JOINED}"
                " WHERE m.device_id IN (SELECT id FROM devices WHERE name = ?) AND m.settings_hash = ?"
                " AND m.arch_id = ? ORDER BY m.id DESC LIMIT 1", ("ort-cpu", H1, A.arch_id)))  # fmt: skip
            assert "USING INDEX measurements_lookup" in plan and "SCAN m" not in plan
            return steps, len(parsed)

    few, parsed_few = lookup_cost(2)
    many, parsed_many = lookup_cost(400)
    assert parsed_few == parsed_many == 1  # one row turned into a record
    assert many <= few + 2  # the SQLite work does not grow with the other 400 architectures


# --- the profiler and the measured cost use the lookup ---------------------------------------


def test_profiler_and_measured_cost_look_up_one_architecture(tmp_path, toy_space, monkeypatch):
    store = Store(tmp_path / "p.db")
    profiler = Profiler(ScriptedDevice(base_ms=2.0), toy_space, store, protocol=FAST, cache_dir=tmp_path / "c", drift_every=0)
    archs = list(toy_space.enumerate())
    profiler.profile(archs[:4])

    def refuse(*args, **kwargs):
        raise AssertionError("a cost lookup must not read every measurement")

    monkeypatch.setattr(Store, "measurements", refuse)
    monkeypatch.setattr(Store, "latency_records", refuse)
    asked: list[str] = []
    real = Store.latest_latency
    monkeypatch.setattr(Store, "latest_latency", lambda self, *a: asked.append(a[1]) or real(self, *a))
    cost = MeasuredCost(profiler)
    values = cost.costs(archs[:4] + archs[:1])
    assert values.tolist() == pytest.approx([2.0] * 5)
    assert (cost.n_from_store, cost.n_measured) == (4, 0)
    assert asked == [a.arch_id for a in archs[:4]]  # once per candidate; the repeat came from the memory cache
    assert profiler.cached_latency_ms(archs[5]) is None
    profiler.close()


def test_cached_latency_is_per_settings(tmp_path, toy_space):
    store = Store(tmp_path / "p.db")
    slow = Profiler(ScriptedDevice(base_ms=2.0), toy_space, store, protocol=FAST, cache_dir=tmp_path / "c", drift_every=0)
    arch = toy_space.parse("w8-d2")
    slow.measure(arch)
    slow.close()
    with Store(tmp_path / "p.db") as again:
        other = Profiler(ScriptedDevice(base_ms=3.0), toy_space, again, protocol=FAST, cache_dir=tmp_path / "c", drift_every=0)
        assert other.cached_latency_ms(arch) is None  # measured with other settings only
        other.measure(arch)
        assert other.cached_latency_ms(arch) == pytest.approx(3.0)
        other.close()
