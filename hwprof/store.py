"""The SQLite measurement store: devices, runs, architectures, artifacts, measurements.

Why SQLite: one file that travels with the results, readable by any tool,
safe against a crash mid-write. Measurements are append-only (enforced by
triggers in the database, not just by this class): re-profiling adds rows and
readers choose the newest with ``latest_only``. The schema is versioned; an
older database is copied to ``<path>.bak-v<old>`` and migrated forward on open,
under the write lock, so several processes may open (or create) the same file
at once. Reads return frozen records (``hwprof.store_records``) and filter in
SQL; a cost lookup of one architecture is one indexed query.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import os
import secrets
import sqlite3
import statistics
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar

from hwprof import __version__
from hwprof.errors import StoreBusy, StoreError
from hwprof.outputs import write_atomic
from hwprof.store_records import (
    DeviceRecord,
    DeviceSummary,
    DriftCheckRecord,
    LatencyRecord,
    MeasurementRecord,
    RunRecord,
    StoreSummary,
    corrected,
)
from hwprof.types import Architecture, DeviceInfo, Measurement, ModelArtifact

APPLICATION_ID = 0x48575046  # "HWPF": marks the file as hwprof's in the SQLite header
BUSY_TIMEOUT_S = 5.0
RUN_STATUSES = ("running", "completed", "interrupted", "failed")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_T = TypeVar("_T")

_STAT_COLUMNS = ("median_ms", "mean_ms", "p90_ms", "std_ms", "min_ms", "max_ms", "ci_half_width_ms", "cv", "n_runs")
_TABLES = ("devices", "runs", "architectures", "artifacts", "measurements", "drift_checks")
CSV_COLUMNS = (
    "id", "run_id", "device", "space", "spec", "arch_id", "artifact_sha256", "settings_hash", "precision",
    "latency_ms", "estimator", *_STAT_COLUMNS, "n_warmup", "unstable", "stop_reason", "energy_mj", "energy_ci_mj",
    "meter", "reference_ms", "corrected_ms", "settings_json", "cpu_model", "hostname", "created_at", "hwprof_version",
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


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """Precision of artifacts and measurements; the primary latency estimate, the others, and visit sizes.

    Rows written before keep NULL ``latency_ms`` and estimator ``median``: readers
    take their median (``COALESCE``), which is what they were measured as.
    """
    _execute_all(
        conn,
        (
            "ALTER TABLE artifacts ADD COLUMN precision TEXT NOT NULL DEFAULT 'fp32'",
            "ALTER TABLE measurements ADD COLUMN precision TEXT NOT NULL DEFAULT 'fp32'",
            "ALTER TABLE measurements ADD COLUMN latency_ms REAL",
            "ALTER TABLE measurements ADD COLUMN estimator TEXT NOT NULL DEFAULT 'median'",
            "ALTER TABLE measurements ADD COLUMN estimates_json TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE measurements ADD COLUMN visits_json TEXT NOT NULL DEFAULT '[]'",
        ),
    )


def _migrate_v5(conn: sqlite3.Connection) -> None:
    """The 95% uncertainty (half-width) of ``energy_mj``; NULL for rows without a meter and for rows written before."""
    _execute_all(conn, ("ALTER TABLE measurements ADD COLUMN energy_ci_mj REAL",))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1, _migrate_v2, _migrate_v3, _migrate_v4, _migrate_v5]
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


def apply_migrations(
    conn: sqlite3.Connection, target: int = SCHEMA_VERSION, before: Callable[[int], None] | None = None
) -> int:
    """Bring ``conn`` (autocommit mode) forward to ``target``, one transaction per migration.

    The version is re-read inside each write transaction, so several processes
    opening the same old (or fresh) file never apply a migration twice.
    ``before(version)`` runs once, inside the write lock of the first migration
    this call applies (the store backs the file up there, so only the process
    that migrates copies it). Returns the version reached.
    """
    version = read_schema_version(conn)
    first = True
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = read_schema_version(conn)
            if version < target:
                if first and before is not None:
                    before(version)
                first = False
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


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED and their extended codes
    return "locked" in str(exc) or "busy" in str(exc)


# --- opening -------------------------------------------------------------------


def _check_path(path: Path, create: bool, readonly: bool = False) -> bool:
    """Raise for paths that cannot hold a store; return whether the file exists."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a database file; pass a file such as {path / 'hwprof.db'}")
    if path.exists():
        if readonly:
            if not os.access(path, os.R_OK):
                raise StoreError(f"cannot open {path} for reading: permission denied")
            return True
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


def _check_header(path: Path) -> None:
    """Raise when the file is empty or not SQLite (an empty file is the user's, never initialised behind their back)."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if not head:
        raise StoreError(f"{path} is an empty file, not an hwprof store; remove it or give another --db")
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not an hwprof database (not SQLite: file is corrupt or of another format)")


def _create_fresh(path: Path) -> None:
    """Build a new store beside ``path`` and link it into place.

    Another process never sees a half-made (empty) file, so an empty file at a
    store's path is always someone else's and is refused. When several
    processes create the same store at once, the first link wins and the
    others open it.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.new")
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            apply_migrations(conn)
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: theirs is opened
        except OSError:  # a file system without hard links
            if not path.exists():
                os.rename(tmp, path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot create {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``), also to a file in a folder nobody may write to.

    A WAL store needs its ``-shm`` file, which SQLite cannot create in such a
    folder; there, with no ``-wal`` left behind, no writer can exist and the
    file is opened ``immutable``.
    """
    uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if os.access(path.parent, os.W_OK) or wal.exists():
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def _is_hwprof(conn: sqlite3.Connection, tables: list[str]) -> bool:
    if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
        return True
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        return row is not None and row[0] == "hwprof"
    return False


class Store:
    """One SQLite file of measurements. One writer at a time; readers never block it (WAL)."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False) -> None:
        """Open (or, with ``create``, make) the store at ``path``.

        ``readonly`` opens it with SQLite's ``mode=ro`` (commands that only
        read: a store in a read-only folder or file); every write is refused.
        An older schema is then migrated in a copy in memory, never in the file.
        """
        self.path = Path(path)
        self.readonly = readonly
        create = create and not readonly
        self.backup_path: Path | None = None  # set when opening migrated an older file
        self.migrated_from: int | None = None
        self.file_schema_version: int | None = None  # set when read-only opening read an older file through a copy
        self._depth = 0
        self._known_baselines: dict[tuple[int, str, str], float] = {}
        # A link is followed: SQLite keeps its WAL beside the file itself, so that folder is the one that counts
        # (other paths are kept as given, for messages that name what the user typed).
        real = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        if _check_path(real, create, readonly):
            _check_header(real)
        else:
            _create_fresh(real)
        try:
            if readonly:
                self._conn = _connect_readonly(real)
            else:
                self._conn = sqlite3.connect(str(real), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            version = self._identify(create)
            if readonly:
                self._read_migrated(version)
            else:
                self._configure()
                self._migrate(version)
        except BaseException:
            self._conn.close()
            raise

    def _read_migrated(self, version: int) -> None:
        """Read-only and an older schema: read a copy in memory brought forward (the file stays as it is)."""
        if version == SCHEMA_VERSION:
            return
        self.file_schema_version = version  # what the file itself holds (the copy is SCHEMA_VERSION)
        copy = sqlite3.connect(":memory:", isolation_level=None)
        try:
            self._conn.backup(copy)
            apply_migrations(copy)
            copy.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            copy.close()
            raise StoreError(f"cannot read {self.path} (schema v{version}): {exc}") from exc
        self._conn.close()
        self._conn = copy
        self._conn.row_factory = sqlite3.Row

    def check_integrity(self) -> None:
        """Raise a StoreError naming the file when SQLite finds it damaged (``PRAGMA quick_check``: one pass, no index cross-checks)."""
        try:
            rows = [r[0] for r in self._conn.execute("PRAGMA quick_check(1)")]
            problem = None if rows == ["ok"] else " ".join(" ".join(map(str, rows)).split())  # SQLite's report is multi-line
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            problem = " ".join(str(exc).split())
        if problem is not None:
            raise StoreError(
                f"{self.path} is damaged (sqlite: {problem}); restore it from a backup, or recover what SQLite can"
                f" with `sqlite3 {self.path} .recover`"
            )

    def _identify(self, create: bool) -> int:
        """Schema version of an hwprof file (0: empty, to initialise); raise for anything else."""
        try:
            tables = _table_names(self._conn)
            if not tables and not create:
                raise StoreError(f"{self.path} holds no tables, not an hwprof store (a command that writes to it, e.g. `hwprof profile --db {self.path}`, initialises it)")
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
        """WAL and foreign keys.

        The switch to WAL is retried until the busy timeout: while another
        process switches the same fresh file, SQLite answers "database is
        locked" at once instead of waiting (its busy handler is not called
        when waiting could deadlock).
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise StoreError(f"cannot write {self.path}: {exc}") from exc
                time.sleep(0.005)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot write {self.path}: {exc}") from exc
        self._conn.execute("PRAGMA foreign_keys = ON")

    def _migrate(self, version: int) -> None:
        if version == SCHEMA_VERSION:
            return

        def back_up(found: int) -> None:
            # Inside the write lock, with the version re-read there. Found newer than at open:
            # another process is migrating this file and has backed it up (or it was fresh).
            if found == version > 0:
                self.backup_path = self._backup(found)
                self.migrated_from = found

        try:
            apply_migrations(self._conn, before=back_up)
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
        # A second connection: SQLite refuses to back up through one that holds the write lock,
        # and this runs under it. It reads the last committed state, WAL pages included.
        src = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S)
        try:
            dst = sqlite3.connect(str(target))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
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
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only; open it without readonly=True to write")
        outer = self._depth == 0
        name = f"hwprof_{self._depth}"
        try:
            self._conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")
        except sqlite3.OperationalError as exc:
            error = StoreBusy if _is_busy(exc) else StoreError
            raise error(f"cannot write {self.path}: {exc} (another process holds the write lock?)") from exc
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
        if not outer:
            self._conn.execute(f"RELEASE {name}")
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # never leave the transaction open: the next BEGIN would fail
            self._conn.execute("ROLLBACK")
            error = StoreBusy if _is_busy(exc) else StoreError
            raise error(f"cannot commit to {self.path}: {exc}") from exc

    def retry_busy(self, write: Callable[[], _T], wait_s: float, on_wait: Callable[[StoreBusy], None] | None = None) -> _T:
        """``write()`` (which opens its own transaction), again while another process holds the write lock.

        Each attempt already waits the busy timeout; this keeps trying, with
        growing pauses, for ``wait_s`` seconds in all, so measured work is not
        thrown away because a reader or writer held the lock a while.
        ``on_wait(error)`` is called once, at the first refusal. Raises the
        last StoreBusy when the time is up.
        """
        deadline = time.monotonic() + wait_s
        pause = 0.05
        warned = False
        while True:
            try:
                return write()
            except StoreBusy as exc:
                if time.monotonic() >= deadline:
                    raise
                if not warned and on_wait is not None:
                    on_wait(exc)
                warned = True
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 2.0)

    def _baselines(self) -> "_Baselines":
        return _Baselines(self._conn, self._known_baselines, remember=self._depth == 0)

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
            "INSERT INTO artifacts (sha256, arch_id, format, path, size_bytes, inputs_json, exporter_json, created_at,"
            " precision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (
                artifact.sha256, artifact.arch_id, artifact.format, str(artifact.path), artifact.size_bytes,
                _dumps(artifact.inputs_json()), _dumps(dict(artifact.exporter)), _now(), artifact.precision,
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
            "energy_ci_mj": m.energy_ci_mj,
            "meter": m.meter,
            "reference_ms": m.reference_ms,
            "precision": m.precision,
            "latency_ms": m.latency_ms,
            "estimator": m.estimator,
            "estimates_json": _dumps({k: float(v) for k, v in m.estimates.items()}),
            "visits_json": _dumps(list(m.visit_sizes)),
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
        self,
        device: str | None = None,
        space: str | None = None,
        latest_only: bool = False,
        *,
        arch_ids: Iterable[str] | None = None,
        settings_hash: str | None = None,
        run_id: int | None = None,
        with_samples: bool = False,
    ) -> list[MeasurementRecord]:
        """Measurement records in the order they were stored, filtered in SQL.

        ``latest_only`` keeps the newest row per (device, settings, architecture),
        which is what a re-profiled architecture should be judged by. Samples
        are parsed only ``with_samples`` (otherwise ``samples_ms`` is None).
        """
        where, params = _filters(device, space, arch_ids, settings_hash, run_id, latest_only)
        columns = _MEASUREMENT_COLUMNS + (", m.samples_json" if with_samples else "")
        sql = f"SELECT {columns}{_JOINED}{where} ORDER BY m.id"
        baselines = self._baselines()
        return [
            MeasurementRecord.from_row(r, baselines.corrected(r), with_samples) for r in self._conn.execute(sql, params)
        ]

    def latency_records(
        self,
        device: str | None = None,
        space: str | None = None,
        settings_hash: str | None = None,
        *,
        arch_ids: Iterable[str] | None = None,
    ) -> list[LatencyRecord]:
        """The newest latency per (device, settings, architecture), oldest first, without reading any JSON column."""
        where, params = _filters(device, space, arch_ids, settings_hash, None, latest_only=True)
        baselines = self._baselines()
        rows = self._conn.execute(f"SELECT {_LATENCY_COLUMNS}{_JOINED}{where} ORDER BY m.id", params)
        return [LatencyRecord.from_row(r, baselines.corrected(r)) for r in rows]

    def latest_latency(self, device: str, arch_id: str, settings_hash: str) -> LatencyRecord | None:
        """The newest latency of one architecture on ``device`` (name) with these settings, or None.

        One indexed lookup (``measurements_lookup``): a search asking for each
        candidate in turn reads that candidate's rows only.
        """
        row = self._conn.execute(
            f"SELECT {_LATENCY_COLUMNS}{_JOINED}"
            " WHERE m.device_id IN (SELECT id FROM devices WHERE name = ?) AND m.settings_hash = ? AND m.arch_id = ?"
            " ORDER BY m.id DESC LIMIT 1",
            (device, settings_hash, arch_id),
        ).fetchone()
        return None if row is None else LatencyRecord.from_row(row, self._baselines().corrected(row))

    def latencies(
        self, device: str, space: str | None = None, settings_hash: str | None = None, corrected: bool = False
    ) -> dict[str, float]:
        """spec -> median latency (ms) of the newest measurement on ``device``.

        Without ``settings_hash`` rows of every setting of the device count and
        the newest wins per spec. ``corrected`` uses the reference-calibrated
        latency where the row has one (rows profiled without calibration stay raw).
        """
        records = self.latency_records(device, space, settings_hash)
        if not records:
            stored = sorted(self.measured_devices())
            if device not in stored:
                have = f"it holds measurements on {', '.join(stored)}" if stored else "it holds no measurements"
                raise StoreError(f"no measurements on device {device!r} in {self.path}; {have}")
        return {r.spec: float(r.latency_ms(corrected)) for r in records}

    def calibration_baseline(self, device_id: int, settings_hash: str, space: str, estimator: str) -> float | None:
        """The reference level of the first calibrated row for this device (id), settings, space and estimator, or None."""
        return self._baselines().get(device_id, settings_hash, space, estimator)

    def measured_devices(self) -> list[str]:
        """Names of the devices with at least one measurement, each once, in the order they were added."""
        rows = self._conn.execute(
            "SELECT d.name FROM devices d WHERE EXISTS (SELECT 1 FROM measurements m WHERE m.device_id = d.id)"
            " GROUP BY d.name ORDER BY MIN(d.id)"
        )
        return [r[0] for r in rows]

    def spaces(self, device: str | None = None) -> list[str]:
        """Search spaces with measurements (on ``device`` when given), sorted."""
        where, params = _filters(device, None, None, None, None, latest_only=False)
        rows = self._conn.execute(f"SELECT DISTINCT a.space{_JOINED}{where} ORDER BY a.space", params)
        return [r[0] for r in rows]

    def devices(self) -> list[DeviceRecord]:
        rows = self._conn.execute(
            "SELECT d.*, (SELECT COUNT(*) FROM measurements m WHERE m.device_id = d.id) AS n_measurements"
            " FROM devices d ORDER BY d.id"
        )
        return [DeviceRecord.from_row(r) for r in rows]

    def runs(self, status: str | None = None, device: str | None = None) -> list[RunRecord]:
        """Runs in the order they started, optionally only those with ``status`` / on ``device`` (name)."""
        where = [c for c, v in (("r.status = ?", status), ("d.name = ?", device)) if v is not None]
        params = [v for v in (status, device) if v is not None]
        rows = self._conn.execute(
            "SELECT r.*, d.name AS device,"
            " (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.id) AS n_measurements"
            " FROM runs r JOIN devices d ON d.id = r.device_id"
            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id",
            params,
        )
        return [RunRecord.from_row(r) for r in rows]

    def drift_checks(self, run_id: int | None = None) -> list[DriftCheckRecord]:
        sql = "SELECT * FROM drift_checks" + (" WHERE run_id = ?" if run_id is not None else "") + " ORDER BY id"
        rows = self._conn.execute(sql, () if run_id is None else (run_id,))
        return [DriftCheckRecord.from_row(r) for r in rows]

    def summary(self) -> StoreSummary:
        """Counts per table and, per device, its architectures, rows, unstable rows and the
        median over its newest per-architecture medians."""
        counts = {t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in _TABLES}
        latest: dict[int, list[float]] = {}
        newest = self._conn.execute(
            f"SELECT device_id, COALESCE(latency_ms, median_ms) FROM measurements WHERE id IN {_LATEST_IDS}"
        )
        for device_id, median_ms in newest:
            latest.setdefault(device_id, []).append(median_ms)
        per_device = []
        for r in self._conn.execute(
            "SELECT d.id, d.name, d.fingerprint, COUNT(m.id) AS n_measurements,"
            " COUNT(DISTINCT m.arch_id) AS n_architectures, COALESCE(SUM(m.unstable), 0) AS n_unstable"
            " FROM devices d LEFT JOIN measurements m ON m.device_id = d.id GROUP BY d.id ORDER BY d.id"
        ):
            medians = latest.get(r["id"])
            per_device.append(
                DeviceSummary(
                    device=r["name"],
                    fingerprint=r["fingerprint"],
                    n_architectures=r["n_architectures"],
                    n_measurements=r["n_measurements"],
                    median_of_medians_ms=statistics.median(medians) if medians else None,
                    n_unstable=r["n_unstable"],
                )
            )
        return StoreSummary(str(self.path), self.schema_version, counts, tuple(per_device))

    def export_csv(self, out: str | Path | TextIO, device: str | None = None) -> int:
        """Every measurement row (the full append-only history) as CSV; returns the row count.

        A path is written atomically (``hwprof.outputs.write_atomic``): the rows go
        to a new file beside it, renamed over it once all are written, so an
        export that fails (an unreadable store, an unknown ``device``, a full
        disk) leaves an existing file as it was; a full disk is a ConfigError.
        Check the path first with ``hwprof.outputs.output_file``. A ``device`` the store does not know is a StoreError naming those it does.
        """
        if isinstance(out, (str, Path)):
            counted: list[int] = []
            write_atomic(Path(out), lambda fh: counted.append(self.export_csv(fh, device=device)), newline="")
            return counted[0]
        try:
            if device is not None:
                known = list(dict.fromkeys(d.name for d in self.devices()))
                if device not in known:
                    have = f"it knows {', '.join(known)}" if known else "it holds no devices"
                    raise StoreError(f"no device {device!r} in {self.path}; {have}")
            records = self.measurements(device=device)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the measurements of {self.path}: {exc}") from exc
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            derived = {"settings_json": _dumps(r.settings), **{k: r.host.get(k) for k in ("cpu_model", "hostname")}}
            values = [derived[c] if c in derived else getattr(r, c) for c in CSV_COLUMNS]
            writer.writerow(["" if v is None else v for v in values])
        return len(records)


# --- reading rows ------------------------------------------------------------------

_LATEST_IDS = "(SELECT MAX(id) FROM measurements GROUP BY device_id, settings_hash, arch_id)"
_JOINED = " FROM measurements m JOIN devices d ON d.id = m.device_id JOIN architectures a ON a.arch_id = m.arch_id"
_PRIMARY = "COALESCE(m.latency_ms, m.median_ms) AS latency_ms, m.estimator"  # rows before schema v4: their median
_LATENCY_COLUMNS = (
    "m.id, m.device_id, d.name AS device, a.space, a.spec, m.arch_id, m.settings_hash, m.median_ms, m.reference_ms,"
    f" m.precision, {_PRIMARY}"
)
_MEASUREMENT_COLUMNS = (
    "m.id, m.run_id, m.device_id, d.name AS device, a.space, a.spec, m.arch_id, m.artifact_sha256, m.settings_hash,"
    f" m.settings_json, m.host_json, {', '.join('m.' + c for c in _STAT_COLUMNS)}, m.n_warmup, m.unstable,"
    f" m.stop_reason, m.energy_mj, m.energy_ci_mj, m.meter, m.reference_ms, m.created_at, m.hwprof_version, m.precision, {_PRIMARY},"
    " m.estimates_json, m.visits_json"
)


def _filters(
    device: str | None,
    space: str | None,
    arch_ids: Iterable[str] | None,
    settings_hash: str | None,
    run_id: int | None,
    latest_only: bool,
) -> tuple[str, list[Any]]:
    """WHERE clause (with its leading space, or empty) over ``_JOINED`` and its parameters."""
    where: list[str] = []
    params: list[Any] = []
    equal = (("d.name", device), ("a.space", space), ("m.settings_hash", settings_hash), ("m.run_id", run_id))
    for column, value in equal:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if arch_ids is not None:  # one JSON parameter, however many ids (no SQLite variable limit)
        where.append("m.arch_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(arch_ids))))
    if latest_only:
        where.append(f"m.id IN {_LATEST_IDS}")
    return (" WHERE " + " AND ".join(where) if where else ""), params


class _Baselines:
    """(device id, settings hash, space, estimator) -> the first reference latency ever stored there, read on first need.

    A calibrated measurement's ``corrected_ms`` is ``latency_ms * baseline / reference_ms``
    (reference and baseline in the row's estimator):
    its latency scaled to the machine's state when the first calibrated group was
    measured. Rows without a reference never ask, so uncalibrated reads skip the
    query. Measurements are append-only, so a baseline once committed never
    changes: ``known`` (the store's) keeps it across reads, unless ``remember``
    is off (inside a transaction that may still roll back).
    """

    def __init__(self, conn: sqlite3.Connection, known: dict[tuple[int, str, str, str], float], remember: bool) -> None:
        self._conn = conn
        self._known = known
        self._remember = remember
        self._missing: set[tuple[int, str, str, str]] = set()

    def get(self, device_id: int, settings_hash: str, space: str, estimator: str = "median") -> float | None:
        key = (device_id, settings_hash, space, estimator)
        if key in self._known:
            return self._known[key]
        if key in self._missing:
            return None
        row = self._conn.execute(
            "SELECT m.reference_ms FROM measurements m JOIN architectures a ON a.arch_id = m.arch_id"
            " WHERE m.device_id = ? AND m.settings_hash = ? AND a.space = ? AND m.estimator = ?"
            " AND m.reference_ms IS NOT NULL"
            " ORDER BY m.id LIMIT 1",
            key,
        ).fetchone()
        if row is None:
            self._missing.add(key)
            return None
        if self._remember:
            self._known[key] = float(row[0])
        return float(row[0])

    def corrected(self, row: sqlite3.Row) -> float | None:
        if row["reference_ms"] is None:
            return None
        baseline = self.get(row["device_id"], row["settings_hash"], row["space"], row["estimator"])
        return corrected(row["latency_ms"], row["reference_ms"], baseline)
