"""The SQLite measurement store: schema, append-only history, migrations, refusals, exports."""

from __future__ import annotations

import csv
import io
import os
import random
import sqlite3

import pytest

from hwprof import __version__
from hwprof.errors import ConfigError, StoreError
from hwprof.store import APPLICATION_ID, CSV_COLUMNS, MIGRATIONS, SCHEMA_VERSION, Store, apply_migrations
from hwprof.types import Architecture, DeviceInfo, InputSpec, LatencyStats, Measurement, ModelArtifact

SETTINGS = {"threads": 1}
HOST = {"hostname": "bench-1", "cpu_model": "Test CPU 3000", "load_1m": 0.1}


def device_info(name: str = "ort-cpu", settings: dict | None = None, extra: dict | None = None) -> DeviceInfo:
    return DeviceInfo(name, "onnxruntime", "1.18.0", "Test CPU 3000", 4, settings=settings or SETTINGS, extra=extra or {})


def artifact_for(arch: Architecture, tag: str = "") -> ModelArtifact:
    return ModelArtifact(
        path=f"/cache/{arch.arch_id}{tag}.onnx",
        format="onnx",
        sha256=(arch.arch_id + tag).ljust(64, "0"),
        size_bytes=1234,
        arch_id=arch.arch_id,
        inputs=(InputSpec("x", (1, 3, 32, 32)),),
        exporter={"opset": 17, "torch": "2.13.0"},
    )


def measurement(
    arch: Architecture,
    median_ms: float,
    settings: dict | None = None,
    unstable: bool = False,
    energy_mj: float | None = None,
    device: str = "ort-cpu",
) -> Measurement:
    stats = LatencyStats(
        median_ms=median_ms,
        mean_ms=median_ms * 1.01,
        p90_ms=median_ms * 1.1,
        std_ms=median_ms * 0.02,
        min_ms=median_ms * 0.95,
        max_ms=median_ms * 1.3,
        ci_half_width_ms=median_ms * 0.005,
        cv=0.0198,
        n_runs=30,
    )
    return Measurement(
        arch_id=arch.arch_id,
        artifact_sha256=artifact_for(arch).sha256,
        device=device,
        stats=stats,
        n_warmup=7,
        unstable=unstable,
        settings=settings or SETTINGS,
        host=HOST,
        timestamp="2024-05-01T12:00:00+00:00",
        hwprof_version=__version__,
        samples_ms=(median_ms * 0.99, median_ms, median_ms * 1.02),
        energy_mj=energy_mj,
        energy_ci_mj=None if energy_mj is None else energy_mj * 0.04,
        meter="rapl" if energy_mj is not None else None,
        stop_reason="ci",
    )


class Bench:
    """A store with one device and one open run, plus helpers to store whole models."""

    def __init__(self, store: Store, info: DeviceInfo | None = None) -> None:
        self.store = store
        self.info = info or device_info()
        self.device_id = store.upsert_device(self.info)
        self.run_id = store.start_run(self.device_id, dict(self.info.settings), {"min_runs": 10}, HOST, "hwprof profile")

    def add(self, arch: Architecture, median_ms: float, **kw) -> int:
        with self.store.transaction():
            self.store.add_architecture(arch)
            self.store.add_artifact(artifact_for(arch))
            return self.store.add_measurement(self.run_id, self.device_id, measurement(arch, median_ms, device=self.info.name, **kw))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "hw.db")
    yield s
    s.close()


@pytest.fixture
def bench(store):
    return Bench(store)


A = Architecture("toy", "w4-d1")
B = Architecture("toy", "w8-d2")
C = Architecture("other", "w4-d1")


def raw(path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


# --- schema --------------------------------------------------------------------


def test_new_store_has_current_schema_in_wal_mode_with_hwprof_marks(store):
    assert SCHEMA_VERSION == len(MIGRATIONS) == 5
    assert store.schema_version == SCHEMA_VERSION
    conn = raw(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta["application"] == "hwprof" and meta["created_by"] == __version__
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"devices", "runs", "architectures", "artifacts", "measurements", "drift_checks", "meta"} <= tables
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3, 4, 5]
    finally:
        conn.close()


def test_foreign_keys_are_enforced(bench):
    # No architecture or artifact stored for A: the measurement must be refused, not dangle.
    with pytest.raises(StoreError, match="add its architecture and artifact first"):
        bench.store.add_measurement(bench.run_id, bench.device_id, measurement(A, 1.0))
    with pytest.raises(StoreError, match="add the architecture first"):
        bench.store.add_artifact(artifact_for(A))
    assert bench.store.measurements() == []


# --- round trip ----------------------------------------------------------------


def test_measurement_round_trip_keeps_every_field(bench):
    m = measurement(A, 2.5, unstable=True, energy_mj=12.5)
    bench.store.add_architecture(A, extra={"flops": 1000})
    bench.store.add_artifact(artifact_for(A))
    mid = bench.store.add_measurement(bench.run_id, bench.device_id, m)
    (row,) = bench.store.measurements(with_samples=True)
    assert row.id == mid and row.run_id == bench.run_id and row.device_id == bench.device_id
    assert (row.device, row.space, row.spec, row.arch_id) == ("ort-cpu", "toy", "w4-d1", A.arch_id)
    assert row.artifact_sha256 == m.artifact_sha256
    for field in ("median_ms", "mean_ms", "p90_ms", "std_ms", "min_ms", "max_ms", "ci_half_width_ms", "cv", "n_runs"):
        assert getattr(row, field) == getattr(m.stats, field), field
    assert row.stats == m.stats
    assert row.n_warmup == 7 and row.unstable is True and row.stop_reason == "ci"
    assert row.settings == SETTINGS and row.settings_hash == m.settings_hash
    assert row.host == HOST
    assert row.samples_ms == tuple(m.samples_ms)  # sequences come back as tuples: a record is a value
    assert bench.store.measurements()[0].samples_ms is None  # not parsed unless asked for
    assert (row.energy_mj, row.energy_ci_mj, row.meter) == (12.5, 0.5, "rapl")
    assert row.created_at == m.timestamp and row.hwprof_version == __version__
    extra = raw(bench.store.path).execute("SELECT extra_json FROM architectures").fetchone()[0]
    assert extra == '{"flops": 1000}'


def test_architectures_and_artifacts_are_idempotent(bench):
    bench.add(A, 1.0)
    bench.add(A, 1.1)
    counts = bench.store.summary().counts
    assert (counts["architectures"], counts["artifacts"], counts["measurements"]) == (1, 1, 2)


# --- append-only and latest ----------------------------------------------------


def test_measurements_are_append_only_and_latest_only_picks_newest(bench):
    first = bench.add(A, 1.0)
    conn = raw(bench.store.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE measurements SET median_ms = 99 WHERE id = ?", (first,))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM measurements")
    finally:
        conn.close()
    second = bench.add(A, 2.0)
    bench.add(B, 5.0)
    assert [r.id for r in bench.store.measurements()] == [first, second, second + 1]
    latest = bench.store.measurements(latest_only=True)
    assert [(r.spec, r.median_ms) for r in latest] == [("w4-d1", 2.0), ("w8-d2", 5.0)]
    assert bench.store.latencies("ort-cpu") == {"w4-d1": 2.0, "w8-d2": 5.0}


def test_latest_only_is_per_settings_and_filters_apply(bench):
    bench.add(A, 1.0)
    fast = Bench(bench.store, device_info(settings={"threads": 4}))
    fast.add(A, 0.4, settings={"threads": 4})
    bench.add(C, 3.0)
    latest = bench.store.measurements(latest_only=True)
    assert sorted(r.median_ms for r in latest) == [0.4, 1.0, 3.0]  # threads=4 does not hide threads=1
    assert [r.median_ms for r in bench.store.measurements(space="other")] == [3.0]
    h1 = measurement(A, 1, settings=SETTINGS).settings_hash
    assert bench.store.latencies("ort-cpu", space="toy", settings_hash=h1) == {"w4-d1": 1.0}
    assert bench.store.latencies("ort-cpu", space="other") == {"w4-d1": 3.0}


def test_latencies_of_unknown_device_lists_stored_devices(bench):
    bench.add(A, 1.0)
    with pytest.raises(StoreError, match="no measurements on device 'jetson'.*ort-cpu"):
        bench.store.latencies("jetson")


def test_resume_set_is_per_device_and_settings(bench):
    bench.add(A, 1.0)
    bench.add(B, 2.0)
    h = measurement(A, 1.0).settings_hash
    assert bench.store.measured_arch_ids(bench.device_id, h) == {A.arch_id, B.arch_id}
    assert bench.store.measured_arch_ids(bench.device_id, "0" * 16) == set()
    other = bench.store.upsert_device(device_info(name="other-dev"))
    assert bench.store.measured_arch_ids(other, h) == set()


# --- transactions --------------------------------------------------------------


def test_failed_transaction_leaves_no_partial_rows(bench):
    with pytest.raises(RuntimeError, match="export crashed"):
        with bench.store.transaction():
            bench.store.add_architecture(A)
            bench.store.add_artifact(artifact_for(A))
            raise RuntimeError("export crashed")
    counts = bench.store.summary().counts
    assert counts["architectures"] == counts["artifacts"] == counts["measurements"] == 0
    bench.add(A, 1.0)  # the store is still usable afterwards
    assert len(bench.store.measurements()) == 1


def test_nested_transaction_failure_undoes_only_the_inner_block(bench):
    with bench.store.transaction():
        bench.store.add_architecture(A)
        with pytest.raises(StoreError):
            with bench.store.transaction():
                bench.store.add_architecture(B)
                bench.store.add_measurement(bench.run_id, bench.device_id, measurement(B, 1.0))  # no artifact
    conn = raw(bench.store.path)
    assert [r[0] for r in conn.execute("SELECT spec FROM architectures")] == [A.spec]
    conn.close()


# --- runs, devices, drift --------------------------------------------------------


def test_devices_upsert_is_idempotent_by_fingerprint(store):
    first = store.upsert_device(device_info(extra={"note": "a"}))
    again = store.upsert_device(device_info(extra={"note": "b"}))
    other = store.upsert_device(device_info(settings={"threads": 4}))
    assert first == again != other
    devices = store.devices()
    assert [d.fingerprint for d in devices] == [device_info().fingerprint, device_info(settings={"threads": 4}).fingerprint]
    assert devices[0].info["extra"] == {"note": "b"}  # refreshed info, same row
    assert devices[0].name == "ort-cpu" and devices[0].n_measurements == 0


def test_runs_start_finish_and_status_validation(bench):
    bench.add(A, 1.0)
    bench.store.finish_run(bench.run_id, "interrupted")
    (run,) = bench.store.runs()
    assert run.status == "interrupted" and run.finished_at is not None
    assert run.device == "ort-cpu" and run.n_measurements == 1
    assert run.settings == SETTINGS and run.protocol == {"min_runs": 10} and run.host == HOST
    assert run.command == "hwprof profile" and run.hwprof_version == __version__
    with pytest.raises(StoreError, match="expected one of completed, interrupted, failed"):
        bench.store.finish_run(bench.run_id, "done")
    with pytest.raises(StoreError, match="no run 999"):
        bench.store.finish_run(999, "completed")


def test_measurement_must_belong_to_its_runs_device(bench):
    bench.store.add_architecture(A)
    bench.store.add_artifact(artifact_for(A))
    other = bench.store.upsert_device(device_info(name="other-dev"))
    with pytest.raises(StoreError, match="belongs to device id"):
        bench.store.add_measurement(bench.run_id, other, measurement(A, 1.0))
    with pytest.raises(StoreError, match="no run 42"):
        bench.store.add_measurement(42, bench.device_id, measurement(A, 1.0))


def test_drift_checks_round_trip(bench):
    second_run = bench.store.start_run(bench.device_id, SETTINGS, {}, HOST, "")
    bench.store.add_drift_check(bench.run_id, A.arch_id, 50, 1.0, 1.02, 0.02, False)
    bench.store.add_drift_check(second_run, A.arch_id, 100, 1.0, 1.2, 0.2, True)
    assert [(d.n_done, d.exceeded) for d in bench.store.drift_checks()] == [(50, False), (100, True)]
    (check,) = bench.store.drift_checks(run_id=second_run)
    assert (check.ref_arch_id, check.baseline_ms, check.median_ms, check.drift_rel) == (A.arch_id, 1.0, 1.2, 0.2)


# --- summary and export ----------------------------------------------------------


def test_summary_counts_and_per_device_numbers(bench):
    bench.add(A, 1.0)
    bench.add(A, 3.0)  # re-profiled: the newest (3.0) counts for the median of medians
    bench.add(B, 2.0, unstable=True)
    bench.add(C, 6.0)
    other = Bench(bench.store, device_info(name="pi4"))
    summary = bench.store.summary()
    assert summary.schema_version == SCHEMA_VERSION and summary.path == str(bench.store.path)
    assert summary.counts == {
        "devices": 2, "runs": 2, "architectures": 3, "artifacts": 3, "measurements": 4, "drift_checks": 0,
    }  # fmt: skip
    cpu, pi = summary.per_device
    assert (cpu.device, cpu.n_architectures, cpu.n_measurements, cpu.n_unstable) == ("ort-cpu", 3, 4, 1)
    assert cpu.median_of_medians_ms == 3.0  # median of 3.0, 2.0, 6.0
    assert (pi.device, pi.n_measurements, pi.median_of_medians_ms) == ("pi4", 0, None)
    assert other.device_id != bench.device_id


def test_export_csv_writes_header_and_one_row_per_measurement(bench, tmp_path):
    bench.add(A, 1.0)
    bench.add(A, 1.5)
    Bench(bench.store, device_info(name="pi4")).add(B, 9.0)
    buf = io.StringIO()
    assert bench.store.export_csv(buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert len(rows) == 3
    first = rows[0]
    assert (first["device"], first["space"], first["spec"], first["median_ms"]) == ("ort-cpu", "toy", "w4-d1", "1.0")
    assert (first["hostname"], first["cpu_model"], first["unstable"], first["energy_mj"]) == ("bench-1", "Test CPU 3000", "False", "")
    assert first["settings_json"] == '{"threads": 1}'
    out = tmp_path / "pi.csv"
    assert bench.store.export_csv(out, device="pi4") == 1
    with open(out, newline="") as f:
        (only,) = list(csv.DictReader(f))
    assert only["device"] == "pi4" and only["spec"] == "w8-d2"
    with pytest.raises(ConfigError, match="cannot write"):  # hwprof.outputs.write_atomic: a bad output path
        bench.store.export_csv(tmp_path / "missing" / "x.csv")


# --- migrations ----------------------------------------------------------------


def _v1_database(path):
    """A database as hwprof v1 wrote it, with one measurement, built by the v1 migration alone."""
    conn = raw(path)
    assert apply_migrations(conn, target=1) == 1
    conn.execute("PRAGMA foreign_keys = ON")
    info = device_info()
    conn.execute("INSERT INTO devices VALUES (1, 'ort-cpu', ?, '{}', '2024-01-01T00:00:00+00:00')", (info.fingerprint,))
    conn.execute(
        "INSERT INTO runs VALUES (1, 1, '2024-01-01T00:00:00+00:00', NULL, 'completed', '{}', '{}', '{}', 'cmd', '0.0.1')"
    )
    conn.execute("INSERT INTO architectures VALUES (?, 'toy', 'w4-d1', '{}')", (A.arch_id,))
    sha = artifact_for(A).sha256
    conn.execute("INSERT INTO artifacts VALUES (?, ?, 'onnx', '/a.onnx', 10, '[]', '{}', 't')", (sha, A.arch_id))
    conn.execute(
        "INSERT INTO measurements (run_id, device_id, arch_id, artifact_sha256, settings_hash, settings_json, host_json,"
        " median_ms, mean_ms, p90_ms, std_ms, min_ms, max_ms, ci_half_width_ms, cv, n_runs, n_warmup, unstable,"
        " samples_json, created_at, hwprof_version) VALUES (1, 1, ?, ?, 'h', '{}', '{}', 4.2, 4.3, 4.8, 0.1, 4.0,"
        " 5.0, 0.05, 0.02, 20, 5, 0, '[]', 't', '0.0.1')",
        (A.arch_id, sha),
    )
    conn.close()


def test_v1_database_is_backed_up_and_migrated_with_data_intact(tmp_path):
    path = tmp_path / "old.db"
    _v1_database(path)
    earlier = tmp_path / "old.db.bak-v1"
    earlier.write_bytes(b"an earlier backup")  # must survive: backups are never overwritten
    conn = raw(path)
    assert "drift_checks" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.migrated_from == 1
        (row,) = store.measurements()
        assert (row.spec, row.median_ms, row.n_runs, row.hwprof_version) == ("w4-d1", 4.2, 20, "0.0.1")
        # v4: a row measured before estimators existed reads as its median, in fp32
        assert (row.latency_ms, row.estimator, row.precision, dict(row.estimates)) == (4.2, "median", "fp32", {})
        (lat,) = store.latency_records()
        assert (lat.latency_ms(), lat.estimator, lat.precision) == (4.2, "median", "fp32")
        run_id = store.runs()[0].id
        store.add_drift_check(run_id, A.arch_id, 10, 4.2, 4.3, 0.024, False)  # v2 table usable
        assert len(store.drift_checks()) == 1
        indexes = {r[0] for r in raw(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "measurements_lookup" in indexes

    backup = tmp_path / "old.db.bak-v1.2"
    assert store.backup_path == backup and backup.is_file()
    assert earlier.read_bytes() == b"an earlier backup"
    bconn = raw(backup)
    assert bconn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    assert bconn.execute("SELECT median_ms FROM measurements").fetchall() == [(4.2,)]
    bconn.close()

    with Store(path) as again:  # already current: no second migration, no second backup
        assert again.migrated_from is None and again.backup_path is None
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == ["old.db.bak-v1", "old.db.bak-v1.2"]


def test_newer_schema_is_rejected(tmp_path):
    path = tmp_path / "new.db"
    Store(path).close()
    conn = raw(path)
    conn.execute(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, 't', '9.9')")
    conn.close()
    newer, ours = SCHEMA_VERSION + 1, SCHEMA_VERSION
    with pytest.raises(StoreError, match=rf"new\.db has schema v{newer}; this hwprof reads up to v{ours} — upgrade hwprof"):
        Store(path)


# --- refusals --------------------------------------------------------------------


def test_random_bytes_are_not_a_database_and_stay_untouched(tmp_path):
    path = tmp_path / "junk.db"
    blob = random.Random(0).randbytes(4096)
    path.write_bytes(blob)
    with pytest.raises(StoreError, match=r"junk\.db is not an hwprof database \(not SQLite: file is corrupt"):
        Store(path)
    assert path.read_bytes() == blob


def test_sqlite_header_with_garbage_pages_is_rejected(tmp_path):
    path = tmp_path / "broken.db"
    path.write_bytes(b"SQLite format 3\x00" + random.Random(1).randbytes(4096))
    with pytest.raises(StoreError, match=r"broken\.db is not an hwprof database"):
        Store(path)


def test_foreign_sqlite_database_is_rejected_and_not_modified(tmp_path):
    path = tmp_path / "app.db"
    conn = raw(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match=r"foreign database: .*app\.db has tables orders, users but no hwprof schema"):
        Store(path)
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # we did not switch it to WAL
    conn.close()


def test_foreign_meta_table_is_still_foreign(tmp_path):
    path = tmp_path / "meta.db"
    conn = raw(path)
    conn.execute("CREATE TABLE meta (a INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="foreign database: .* has tables meta but no hwprof schema"):
        Store(path)


def test_missing_database_without_create(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(StoreError, match=r"no such database: .*absent\.db"):
        Store(path, create=False)
    assert not path.exists()


def test_directory_and_missing_parent_are_rejected(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match=r"cannot create .*: directory .*nowhere does not exist"):
        Store(tmp_path / "nowhere" / "hw.db")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_unwritable_directory_is_rejected(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store(locked / "hw.db")
    finally:
        locked.chmod(0o700)


def test_an_empty_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    for kwargs in ({"create": False}, {}, {"readonly": True}):
        with pytest.raises(StoreError, match=r"empty\.db is an empty file, not an hwprof store; remove it or give another --db"):
            Store(path, **kwargs)
        assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_fresh_store_is_linked_into_place_whole(tmp_path):
    path = tmp_path / "new.db"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    with open(path, "rb") as f:
        assert f.read(16) == b"SQLite format 3\x00"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.db")) == []  # no temporary left


def test_sqlite_file_without_tables_is_initialised_only_when_create(tmp_path):
    path = tmp_path / "bare.db"
    conn = raw(path)
    conn.execute("PRAGMA user_version = 7")  # a valid SQLite file with a header but no tables
    conn.close()
    assert path.stat().st_size > 0
    with pytest.raises(StoreError, match="holds no tables"):
        Store(path, create=False)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_precision_is_part_of_a_measurements_identity_and_estimates_round_trip(bench):
    from dataclasses import replace as _replace

    m = measurement(A, 2.0)
    int8 = _replace(m, precision="int8", estimator="p10", estimates={"p10": 1.5, "min": 1.25}, visit_sizes=(1, 2))
    assert int8.settings_hash != m.settings_hash  # an int8 row never answers for the fp32 one (resume, lookups)
    assert m.settings_hash == _replace(m, precision="fp32").settings_hash
    assert int8.latency_ms == 1.5 and m.latency_ms == 2.0
    for row in (m, int8):
        with bench.store.transaction():
            bench.store.add_architecture(A)
            bench.store.add_artifact(artifact_for(A))
            bench.store.add_measurement(bench.run_id, bench.device_id, row)
    rows = bench.store.measurements(with_samples=True)
    assert [(r.precision, r.latency_ms, r.estimator) for r in rows] == [("fp32", 2.0, "median"), ("int8", 1.5, "p10")]
    assert dict(rows[1].estimates) == {"p10": 1.5, "min": 1.25} and rows[1].visit_sizes == (1, 2)
    latest = bench.store.latency_records()
    assert sorted((r.precision, r.latency_ms()) for r in latest) == [("fp32", 2.0), ("int8", 1.5)]
