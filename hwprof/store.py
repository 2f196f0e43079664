"""The SQLite measurement store: devices, runs, architectures, artifacts, measurements.

Why SQLite: one file that travels with the results, readable by any tool,
safe against a crash mid-write. Measurements are append-only (enforced by
triggers in the database, not just by this class): re-profiling adds rows and
readers choose the newest with ``latest_only``. The schema is versioned; an
older database is copied to ``<path>.bak-v<old>`` and migrated forward on open.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import os
import sqlite3
import statistics
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from hwprof import __version__
from hwprof.errors import StoreError
from hwprof.types import Architecture, DeviceInfo, Measurement, ModelArtifact

APPLICATION_ID = 0x48575046  # "HWPF": marks the file as hwprof's in the SQLite header
BUSY_TIMEOUT_S = 5.0
RUN_STATUSES = ("running", "completed", "interrupted", "failed")
_SQLITE_MAGIC = b"SQLite format 3\x00"

_STAT_COLUMNS = ("median_ms", "mean_ms", "p90_ms", "std_ms", "min_ms", "max_ms", "ci_half_width_ms", "cv", "n_runs")
_TABLES = ("devices", "runs", "architectures", "artifacts", "measurements", "drift_checks")
CSV_COLUMNS = (
    "id", "run_id", "device", "space", "spec", "arch_id", "artifact_sha256", "settings_hash",
    *_STAT_COLUMNS, "n_warmup", "unstable", "stop_reason", "energy_mj", "meter",
    "reference_ms", "corrected_ms", "settings_json", "cpu_model", "hostname", "created_at", "hwprof_version",
)  # fmt: skip


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _execute_all(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    # Not executescript(): it commits first, which would break the one-transaction-per-migration rule.
    for sql in statements:
        conn.execute(sql)


# --- migrations ----------------------------------------------------------------
# MIGRATIONS[i] takes the schema from version i to i+1 and runs inside one transaction.


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Base tables, application id, append-only triggers."""
    _execute_all(
        conn,
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL,"
            " hwprof_version TEXT NOT NULL)",
            """CREATE TABLE devices (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                fingerprint TEXT NOT NULL UNIQUE,
                info_json TEXT NOT NULL,
                first_seen TEXT NOT NULL)""",
            f"""CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                device_id INTEGER NOT NULL REFERENCES devices(id),
                started_at TEXT NOT NULL,
                finished_at TEXT,
                status TEXT NOT NULL CHECK (status IN {RUN_STATUSES!r}),
                settings_json TEXT NOT NULL,
                protocol_json TEXT NOT NULL,
                host_json TEXT NOT NULL,
                command TEXT NOT NULL DEFAULT '',
                hwprof_version TEXT NOT NULL)""",
            """CREATE TABLE architectures (
                arch_id TEXT PRIMARY KEY,
                space TEXT NOT NULL,
                spec TEXT NOT NULL,
                extra_json TEXT NOT NULL DEFAULT '{}',
                UNIQUE (space, spec))""",
            """CREATE TABLE artifacts (
                sha256 TEXT PRIMARY KEY,
                arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
                format TEXT NOT NULL,
                path TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                inputs_json TEXT NOT NULL,
                exporter_json TEXT NOT NULL,
                created_at TEXT NOT NULL)""",
            """CREATE TABLE measurements (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id),
                device_id INTEGER NOT NULL REFERENCES devices(id),
                arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
                artifact_sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
                settings_hash TEXT NOT NULL,
                settings_json TEXT NOT NULL,
                host_json TEXT NOT NULL,
                median_ms REAL NOT NULL,
                mean_ms REAL NOT NULL,
                p90_ms REAL NOT NULL,
                std_ms REAL NOT NULL,
                min_ms REAL NOT NULL,
                max_ms REAL NOT NULL,
                ci_half_width_ms REAL NOT NULL,
                cv REAL NOT NULL,
                n_runs INTEGER NOT NULL,
                n_warmup INTEGER NOT NULL,
                unstable INTEGER NOT NULL CHECK (unstable IN (0, 1)),
                stop_reason TEXT NOT NULL DEFAULT '',
                samples_json TEXT NOT NULL,
                energy_mj REAL,
                meter TEXT,
                created_at TEXT NOT NULL,
                hwprof_version TEXT NOT NULL)""",
            """CREATE TRIGGER measurements_no_update BEFORE UPDATE ON measurements
                BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END""",
            """CREATE TRIGGER measurements_no_delete BEFORE DELETE ON measurements
                BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END""",
        ),
    )
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("application", "hwprof"), ("created_by", __version__), ("created_at", _now())],
    )


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Drift checks of a reference model during long runs; index for resume and latest-row lookups."""
    _execute_all(
        conn,
        (
            """CREATE TABLE drift_checks (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id),
                ref_arch_id TEXT NOT NULL,
                n_done INTEGER NOT NULL,
                baseline_ms REAL NOT NULL,
                median_ms REAL NOT NULL,
                drift_rel REAL NOT NULL,
                exceeded INTEGER NOT NULL CHECK (exceeded IN (0, 1)),
                created_at TEXT NOT NULL)""",
            "CREATE INDEX measurements_lookup ON measurements (device_id, settings_hash, arch_id)",
        ),
    )


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """Reference-model latency measured in the same interleaved group (calibration)."""
    _execute_all(conn, ("ALTER TABLE measurements ADD COLUMN reference_ms REAL",))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1, _migrate_v2, _migrate_v3]
SCHEMA_VERSION = len(MIGRATIONS)


def _table_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [r[0] for r in rows]


def read_schema_version(conn: sqlite3.Connection) -> int:
    """Version recorded in ``schema_version`` (0 for a database without one)."""
    if "schema_version" not in _table_names(conn):
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def apply_migrations(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``conn`` (autocommit mode) forward to ``target``, one transaction per migration.

    The version is re-read inside each write transaction, so two processes
    opening the same old file never apply a migration twice. Returns the
    version reached.
    """
    version = read_schema_version(conn)
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = read_schema_version(conn)
            if version < target:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at, hwprof_version) VALUES (?, ?, ?)",
                    (version, _now(), __version__),
                )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return version


# --- opening -------------------------------------------------------------------


def _check_path(path: Path, create: bool) -> bool:
    """Raise for paths that cannot hold a store; return whether the file exists."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a database file; pass a file such as {path / 'hwprof.db'}")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"cannot open {path} for reading and writing: permission denied")
        if not os.access(path.parent, os.W_OK):
            raise StoreError(f"cannot use {path}: directory {path.parent} is not writable (SQLite keeps its WAL there)")
        return True
    if not create:
        raise StoreError(f"no such database: {path}")
    if not path.parent.is_dir():
        raise StoreError(f"cannot create {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise StoreError(f"cannot create {path}: directory {path.parent} is not writable")
    return False


def _check_header(path: Path) -> bool:
    """True when the file is empty (to be initialised); raise when it is not SQLite."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if not head:
        return True
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not an hwprof database (not SQLite: file is corrupt or of another format)")
    return False


def _is_hwprof(conn: sqlite3.Connection, tables: list[str]) -> bool:
    if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
        return True
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        return row is not None and row[0] == "hwprof"
    return False


class Store:
    """One SQLite file of measurements. One writer at a time; readers never block it (WAL)."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self.backup_path: Path | None = None  # set when opening migrated an older file
        self.migrated_from: int | None = None
        self._depth = 0
        if _check_path(self.path, create) and _check_header(self.path) and not create:
            raise StoreError(f"{self.path} is empty, not an hwprof database (open with create=True to initialise it)")
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            version = self._identify(create)
            self._configure()
            self._migrate(version)
        except BaseException:
            self._conn.close()
            raise

    def _identify(self, create: bool) -> int:
        """Schema version of an hwprof file (0: empty, to initialise); raise for anything else."""
        try:
            tables = _table_names(self._conn)
            if not tables and not create:
                raise StoreError(f"{self.path} holds no tables, not an hwprof database (create=True initialises it)")
            try:
                ours = not tables or _is_hwprof(self._conn, tables)
            except sqlite3.OperationalError:  # e.g. someone else's "meta" table with other columns
                ours = False
            if not ours:
                raise StoreError(f"foreign database: {self.path} has tables {', '.join(tables)} but no hwprof schema")
            version = read_schema_version(self._conn)
        except sqlite3.OperationalError as exc:  # locked by another process past the busy timeout
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not an hwprof database (corrupt SQLite file: {exc})") from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema v{version}; this hwprof reads up to v{SCHEMA_VERSION} — upgrade hwprof"
            )
        return version

    def _configure(self) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from exc

    def _migrate(self, version: int) -> None:
        if version == SCHEMA_VERSION:
            return
        try:
            if version > 0:
                self.backup_path = self._backup(version)
                self.migrated_from = version
            apply_migrations(self._conn)
        except sqlite3.Error as exc:
            kept = f"; the file before migrating is at {self.backup_path}" if self.backup_path else ""
            raise StoreError(
                f"cannot bring {self.path} from schema v{version} to v{SCHEMA_VERSION}: {exc}{kept}"
            ) from exc

    def _backup(self, version: int) -> Path:
        target = self.path.with_name(f"{self.path.name}.bak-v{version}")
        n = 1
        while target.exists():  # never overwrite an earlier backup
            n += 1
            target = self.path.with_name(f"{self.path.name}.bak-v{version}.{n}")
        dst = sqlite3.connect(str(target))
        try:
            self._conn.backup(dst)  # consistent copy, including pages still in the WAL
        finally:
            dst.close()
        return target

    # --- lifecycle -------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return read_schema_version(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Store"]:
        """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception.

        Nested use joins the outer transaction through a savepoint: a failure
        inside undoes only the inner block, and nothing is durable before the
        outermost block commits.
        """
        outer = self._depth == 0
        name = f"hwprof_{self._depth}"
        try:
            self._conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write {self.path}: {exc} (another process holds the write lock?)") from exc
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            if outer:
                self._conn.execute("ROLLBACK")
            else:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
            raise
        self._depth -= 1
        self._conn.execute("COMMIT" if outer else f"RELEASE {name}")

    def _insert(self, what: str, sql: str, params: tuple[Any, ...]) -> int:
        try:
            with self.transaction():
                return int(self._conn.execute(sql, params).lastrowid)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot add {what} to {self.path}: {exc}") from exc

    # --- writes ----------------------------------------------------------------
    def upsert_device(self, info: DeviceInfo) -> int:
        """Id of the device with this fingerprint, adding it (or refreshing its info) as needed."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO devices (name, fingerprint, info_json, first_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (fingerprint) DO UPDATE SET info_json = excluded.info_json",
                (info.name, info.fingerprint, _dumps(info.to_json()), _now()),
            )
            row = self._conn.execute("SELECT id FROM devices WHERE fingerprint = ?", (info.fingerprint,)).fetchone()
        return int(row["id"])

    def start_run(self, device_id: int, settings: dict, protocol: dict, host: dict, command: str) -> int:
        return self._insert(
            f"run on device id {device_id}",
            "INSERT INTO runs (device_id, started_at, status, settings_json, protocol_json, host_json, command,"
            " hwprof_version) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
            (device_id, _now(), _dumps(settings), _dumps(protocol), _dumps(host), command, __version__),
        )

    def finish_run(self, run_id: int, status: str) -> None:
        final = RUN_STATUSES[1:]
        if status not in final:
            raise StoreError(f"cannot finish run {run_id} as {status!r}; expected one of {', '.join(final)}")
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, _now(), run_id)
            )
        if cur.rowcount == 0:
            raise StoreError(f"no run {run_id} in {self.path}")

    def add_architecture(self, arch: Architecture, extra: dict | None = None) -> None:
        """Idempotent: an architecture already stored keeps its first ``extra``."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO architectures (arch_id, space, spec, extra_json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (arch.arch_id, arch.space, arch.spec, _dumps(extra or {})),
            )

    def add_artifact(self, artifact: ModelArtifact) -> None:
        """Idempotent by sha256: the same bytes are the same artifact wherever they lie."""
        self._insert(
            f"artifact {artifact.sha256[:12]} of arch {artifact.arch_id} (add the architecture first)",
            "INSERT INTO artifacts (sha256, arch_id, format, path, size_bytes, inputs_json, exporter_json, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (
                artifact.sha256, artifact.arch_id, artifact.format, str(artifact.path), artifact.size_bytes,
                _dumps(artifact.inputs_json()), _dumps(dict(artifact.exporter)), _now(),
            ),
        )  # fmt: skip

    def add_measurement(self, run_id: int, device_id: int, m: Measurement) -> int:
        """Append one measurement; the architecture and artifact must be stored already."""
        row = self._conn.execute("SELECT device_id FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"cannot add measurement of arch {m.arch_id}: no run {run_id} in {self.path}")
        if row["device_id"] != device_id:
            raise StoreError(
                f"cannot add measurement of arch {m.arch_id}: run {run_id} belongs to device id "
                f"{row['device_id']}, not {device_id}"
            )
        values = {
            "run_id": run_id,
            "device_id": device_id,
            "arch_id": m.arch_id,
            "artifact_sha256": m.artifact_sha256,
            "settings_hash": m.settings_hash,
            "settings_json": _dumps(dict(m.settings)),
            "host_json": _dumps(dict(m.host)),
            **{c: getattr(m.stats, c) for c in _STAT_COLUMNS},
            "n_warmup": m.n_warmup,
            "unstable": int(bool(m.unstable)),
            "stop_reason": m.stop_reason,
            "samples_json": _dumps(list(m.samples_ms)),
            "energy_mj": m.energy_mj,
            "meter": m.meter,
            "reference_ms": m.reference_ms,
            "created_at": m.timestamp,
            "hwprof_version": m.hwprof_version,
        }
        return self._insert(
            f"measurement of arch {m.arch_id} (add its architecture and artifact first)",
            f"INSERT INTO measurements ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            tuple(values.values()),
        )

    def add_drift_check(
        self,
        run_id: int,
        ref_arch_id: str,
        n_done: int,
        baseline_ms: float,
        median_ms: float,
        drift_rel: float,
        exceeded: bool,
    ) -> int:
        return self._insert(
            f"drift check of run {run_id}",
            "INSERT INTO drift_checks (run_id, ref_arch_id, n_done, baseline_ms, median_ms, drift_rel, exceeded,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, ref_arch_id, n_done, baseline_ms, median_ms, drift_rel, int(bool(exceeded)), _now()),
        )

    # --- reads -----------------------------------------------------------------
    def measured_arch_ids(self, device_id: int, settings_hash: str) -> set[str]:
        """Architectures already measured on this device with these settings (what a resumed run skips)."""
        rows = self._conn.execute(
            "SELECT DISTINCT arch_id FROM measurements WHERE device_id = ? AND settings_hash = ?",
            (device_id, settings_hash),
        )
        return {r["arch_id"] for r in rows}

    def measurements(
        self, device: str | None = None, space: str | None = None, latest_only: bool = False
    ) -> list[dict]:
        """Measurement rows with ``device`` (name), ``space`` and ``spec``; JSON columns parsed.

        ``latest_only`` keeps the newest row per (device, settings, architecture),
        which is what a re-profiled architecture should be judged by.
        """
        where, params = [], []
        if device is not None:
            where.append("d.name = ?")
            params.append(device)
        if space is not None:
            where.append("a.space = ?")
            params.append(space)
        if latest_only:
            where.append("m.id IN (SELECT MAX(id) FROM measurements GROUP BY device_id, settings_hash, arch_id)")
        sql = (
            "SELECT m.*, d.name AS device, a.space AS space, a.spec AS spec FROM measurements m"
            " JOIN devices d ON d.id = m.device_id JOIN architectures a ON a.arch_id = m.arch_id"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY m.id"
        )
        out = []
        baselines = self._reference_baselines()
        for r in self._conn.execute(sql, params):
            row = dict(r)
            base = baselines.get((row["device_id"], row["settings_hash"], row["space"]))
            ref = row["reference_ms"]
            row["corrected_ms"] = row["median_ms"] * base / ref if base and ref else None
            row["settings"] = json.loads(row.pop("settings_json"))
            row["host"] = json.loads(row.pop("host_json"))
            row["samples_ms"] = json.loads(row.pop("samples_json"))
            row["unstable"] = bool(row["unstable"])
            out.append(row)
        return out

    def _reference_baselines(self) -> dict[tuple[int, str, str], float]:
        """(device id, settings hash, space) -> the first reference latency ever stored there.

        A calibrated measurement's ``corrected_ms`` is ``median_ms * baseline / reference_ms``:
        its latency scaled to the machine's state when the first calibrated group was measured.
        """
        rows = self._conn.execute(
            "SELECT m.device_id, m.settings_hash, a.space, m.reference_ms FROM measurements m"
            " JOIN architectures a ON a.arch_id = m.arch_id"
            " WHERE m.id IN (SELECT MIN(m2.id) FROM measurements m2 JOIN architectures a2 ON a2.arch_id = m2.arch_id"
            " WHERE m2.reference_ms IS NOT NULL GROUP BY m2.device_id, m2.settings_hash, a2.space)"
        )
        return {(r[0], r[1], r[2]): float(r[3]) for r in rows}

    def latencies(
        self, device: str, space: str | None = None, settings_hash: str | None = None, corrected: bool = False
    ) -> dict[str, float]:
        """spec -> median latency (ms) of the newest measurement on ``device``.

        Without ``settings_hash`` rows of every setting of the device count and
        the newest wins per spec. ``corrected`` uses the reference-calibrated
        latency where the row has one (rows profiled without calibration stay raw).
        """
        rows = self.measurements(device=device, latest_only=True)
        if not rows:
            stored = sorted({d["name"] for d in self.devices() if d["n_measurements"]})
            have = f"it holds measurements on {', '.join(stored)}" if stored else "it holds no measurements"
            raise StoreError(f"no measurements on device {device!r} in {self.path}; {have}")
        key = "corrected_ms" if corrected else "median_ms"
        return {
            r["spec"]: float(r[key] if r[key] is not None else r["median_ms"])
            for r in rows
            if space in (None, r["space"]) and settings_hash in (None, r["settings_hash"])
        }

    def devices(self) -> list[dict]:
        rows = self._conn.execute(
            "SELECT d.*, (SELECT COUNT(*) FROM measurements m WHERE m.device_id = d.id) AS n_measurements"
            " FROM devices d ORDER BY d.id"
        )
        out = []
        for r in rows:
            row = dict(r)
            row["info"] = json.loads(row.pop("info_json"))
            out.append(row)
        return out

    def runs(self) -> list[dict]:
        rows = self._conn.execute(
            "SELECT r.*, d.name AS device,"
            " (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id) AS n_measurements"
            " FROM runs r JOIN devices d ON d.id = r.device_id ORDER BY r.id"
        )
        out = []
        for r in rows:
            row = dict(r)
            for key in ("settings", "protocol", "host"):
                row[key] = json.loads(row.pop(f"{key}_json"))
            out.append(row)
        return out

    def drift_checks(self, run_id: int | None = None) -> list[dict]:
        sql = "SELECT * FROM drift_checks" + (" WHERE run_id = ?" if run_id is not None else "") + " ORDER BY id"
        rows = self._conn.execute(sql, () if run_id is None else (run_id,))
        return [{**dict(r), "exceeded": bool(r["exceeded"])} for r in rows]

    def summary(self) -> dict:
        """Counts per table and, per device, its architectures, rows, unstable rows and the
        median over its newest per-architecture medians."""
        counts = {t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in _TABLES}
        latest: dict[int, list[float]] = {}
        for r in self.measurements(latest_only=True):
            latest.setdefault(r["device_id"], []).append(r["median_ms"])
        per_device = []
        for r in self._conn.execute(
            "SELECT d.id, d.name, d.fingerprint, COUNT(m.id) AS n_measurements,"
            " COUNT(DISTINCT m.arch_id) AS n_architectures, COALESCE(SUM(m.unstable), 0) AS n_unstable"
            " FROM devices d LEFT JOIN measurements m ON m.device_id = d.id GROUP BY d.id ORDER BY d.id"
        ):
            medians = latest.get(r["id"])
            per_device.append(
                {
                    "device": r["name"],
                    "fingerprint": r["fingerprint"],
                    "n_architectures": r["n_architectures"],
                    "n_measurements": r["n_measurements"],
                    "median_of_medians_ms": statistics.median(medians) if medians else None,
                    "n_unstable": r["n_unstable"],
                }
            )
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "counts": counts,
            "per_device": per_device,
        }

    def export_csv(self, out: str | Path | TextIO, device: str | None = None) -> int:
        """Every measurement row (the full append-only history) as CSV; returns the row count."""
        if isinstance(out, (str, Path)):
            try:
                with open(out, "w", newline="", encoding="utf-8") as f:
                    return self.export_csv(f, device=device)
            except OSError as exc:
                raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from exc
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        rows = self.measurements(device=device)
        for r in rows:
            host = {k: r["host"].get(k) for k in ("cpu_model", "hostname")}
            flat = {**r, "settings_json": _dumps(r["settings"]), **host}
            writer.writerow(["" if flat[c] is None else flat[c] for c in CSV_COLUMNS])
        return len(rows)
