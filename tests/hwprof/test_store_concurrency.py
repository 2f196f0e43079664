"""Several processes opening the same store at the same moment: all succeed, the schema is built once."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from hwprof.store import MIGRATIONS, SCHEMA_VERSION, Store

from .test_store import _v1_database

N_PROCESSES = 6
# fork starts a worker in milliseconds; spawn (where fork is missing) re-imports hwprof in each.
CONTEXT = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def _open(path: str, barrier, results) -> None:
    try:
        barrier.wait(timeout=30)
        with Store(path) as store:
            results.put(("ok", store.schema_version, store.migrated_from))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test with the message
        results.put(("error", repr(exc), None))


def _open_all_at_once(path) -> list[tuple]:
    barrier, results = CONTEXT.Barrier(N_PROCESSES), CONTEXT.Queue()
    workers = [CONTEXT.Process(target=_open, args=(str(path), barrier, results)) for _ in range(N_PROCESSES)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    return outcomes


def _versions(path) -> list[int]:
    conn = sqlite3.connect(str(path))
    try:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    finally:
        conn.close()


def test_processes_opening_a_fresh_store_together_all_succeed(tmp_path):
    trials = 10 if CONTEXT.get_start_method() == "fork" else 2
    for trial in range(trials):
        path = tmp_path / f"fresh{trial}.db"
        outcomes = _open_all_at_once(path)
        assert [o[0] for o in outcomes] == ["ok"] * N_PROCESSES, outcomes
        assert {o[1] for o in outcomes} == {SCHEMA_VERSION}
        assert all(o[2] is None for o in outcomes)  # a fresh file is created, not migrated
        assert _versions(path) == list(range(1, len(MIGRATIONS) + 1))  # each migration applied exactly once
        assert not list(tmp_path.glob(f"fresh{trial}.db.bak*"))
        with Store(path, create=False) as store:
            assert store.devices() == [] and store.summary().counts["measurements"] == 0


@pytest.mark.parametrize("trial", range(2))
def test_processes_opening_an_old_store_together_back_it_up_once(tmp_path, trial):
    path = tmp_path / "old.db"
    _v1_database(path)
    outcomes = _open_all_at_once(path)
    assert [o[0] for o in outcomes] == ["ok"] * N_PROCESSES, outcomes
    assert sorted(o[2] for o in outcomes if o[2] is not None) == [1]  # one process migrated from v1
    assert [p.name for p in tmp_path.glob("old.db.bak*")] == ["old.db.bak-v1"]
    assert _versions(path) == list(range(1, len(MIGRATIONS) + 1))
    with Store(path, create=False) as store:
        assert [r.median_ms for r in store.measurements()] == [4.2]
