"""The profiler under faults: Ctrl-C inside a group, a live run beside it, a locked store, stale export files."""

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from hwprof.errors import ConfigError, RunInProgress
from hwprof.profiling import ProfileInterrupted, Profiler
from hwprof.store import Store

from .conftest import FAST, ScriptedDevice

INTERLEAVED = replace(FAST, rounds=2, visit_runs=3, round_min_s=0.0)


def _profiler(tmp_path, space, device=None, **kwargs):
    options = dict(protocol=FAST, cache_dir=tmp_path / "cache", drift_every=0)
    options.update(kwargs)
    return Profiler(device or ScriptedDevice(), space, Store(tmp_path / "p.db"), **options)


# --- Ctrl-C inside an interleaved group --------------------------------------------------------------------------

def test_ctrl_c_inside_a_group_stores_the_models_that_completed_their_rounds(tmp_path, toy_space):
    """One group of 5 networks + the calibration reference, 2 rounds: Ctrl-C in the second round keeps the models
    already through it (the reference and the 5th network), flagged, calibrated; the rest is measured on resume."""
    ref = toy_space.reference_architecture()
    archs = [a for a in toy_space.enumerate() if a.arch_id != ref.arch_id]
    # the k-th prepared model takes 2 ms x (1 + 0.1 (k - 1)): the networks 2.0 .. 2.8 ms, the reference 3.0 ms.
    # Round 0: 7 calls per model (4 warm-up + 3 runs: 1-42); round 1 backwards, 5 calls each (2 warm-up + 3 runs):
    # the reference (43-47), the 5th network (48-52), Ctrl-C at call 55, in the 4th network's visit.
    device = ScriptedDevice(drift_per_model=0.1, interrupt_at_call=55)
    p = _profiler(tmp_path, toy_space, device, protocol=INTERLEAVED, interleave=6, calibrate=True, references=1)
    with pytest.raises(ProfileInterrupted) as caught:
        p.profile(archs)
    summary = caught.value.summary
    assert (summary.n_measured, summary.n_interrupted, summary.status) == (1, 1, "interrupted")
    (row,) = p.store.measurements()
    assert row.spec == archs[4].spec and row.stop_reason == "interrupted"
    assert row.median_ms == pytest.approx(2.8) and row.reference_ms == pytest.approx(3.0) and row.n_runs == 6
    assert p.store.runs()[-1].status == "interrupted"
    p.close()
    again = _profiler(tmp_path, toy_space, ScriptedDevice(drift_per_model=0.1), protocol=INTERLEAVED, interleave=6,
                      calibrate=False)
    resumed = again.profile(archs)
    assert (resumed.n_measured, resumed.n_skipped) == (4, 1)
    again.close()


def test_ctrl_c_before_any_model_completed_its_rounds_stores_nothing_and_marks_the_run(tmp_path, toy_space):
    archs = list(toy_space.enumerate())
    p = _profiler(tmp_path, toy_space, ScriptedDevice(interrupt_at_call=30), protocol=INTERLEAVED, interleave=6,
                  calibrate=False)
    with pytest.raises(KeyboardInterrupt):
        p.profile(archs)
    assert p.store.measurements() == [] and p.store.runs()[-1].status == "interrupted"
    p.close()


def test_uninterrupted_groups_keep_their_stop_reasons(tmp_path, toy_space):
    p = _profiler(tmp_path, toy_space, protocol=INTERLEAVED, interleave=6, calibrate=False)
    p.profile(list(toy_space.enumerate()))
    assert {r.stop_reason for r in p.store.measurements()} == {"ci_target"}
    p.close()


# --- summary, options ----------------------------------------------------------------------------------------------

def test_the_summary_reports_networks_per_minute(tmp_path, toy_space):
    p = _profiler(tmp_path, toy_space)
    s = p.profile(list(toy_space.enumerate()))
    assert s.elapsed_s > 0 and s.networks_per_min == pytest.approx(6 * 60 / s.elapsed_s)
    assert p.profile(list(toy_space.enumerate())).n_measured == 0  # all skipped: 0 per minute, not an error
    p.close()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"drift_every": -5}, "drift_every must be an integer >= 0"),
        ({"drift_threshold_rel": -1.0}, "drift_threshold_rel must be a number > 0"),
        ({"drift_threshold_rel": 0.0}, "drift_threshold_rel must be a number > 0"),
        ({"drift_threshold_rel": float("nan")}, "drift_threshold_rel must be a number > 0"),
    ],
)
def test_drift_options_are_validated_even_when_no_check_would_run(tmp_path, toy_space, options, message):
    with pytest.raises(ConfigError, match=message):
        _profiler(tmp_path, toy_space, **options)


# --- a live run of the same measurement ----------------------------------------------------------------------------

def _fake_run(p, driver_pid, hostname=None, settings=None):
    host = {"driver_pid": driver_pid, "driver_hostname": hostname or socket.gethostname()}
    return p.store.start_run(p.device_id, settings or dict(p.device.settings), p.protocol.to_json(), host, "hwprof profile")


def test_a_live_run_of_the_same_measurement_is_refused(tmp_path, toy_space):
    p = _profiler(tmp_path, toy_space)
    live = _fake_run(p, os.getppid())  # pytest's parent: alive, and not this process
    with pytest.raises(RunInProgress, match=rf"run {live} \(pid {os.getppid()} on .*same settings.*corrupt each other"):
        p.profile(list(toy_space.enumerate()))
    assert [r.id for r in p.store.runs()] == [live] and p.store.measurements() == []
    p.close()


def test_other_settings_other_hosts_and_dead_processes_do_not_block(tmp_path, toy_space):
    p = _profiler(tmp_path, toy_space)
    other_settings = _fake_run(p, os.getppid(), settings={**p.device.settings, "base_ms": 9.0})
    other_host = _fake_run(p, os.getppid(), hostname="elsewhere.example")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = _fake_run(p, child.pid)
    s = p.profile(list(toy_space.enumerate())[:2])
    assert s.status == "completed" and s.n_measured == 2
    status = {r.id: r.status for r in p.store.runs()}
    assert status[other_settings] == "running" and status[other_host] == "running" and status[dead] == "interrupted"
    assert any(f"run {dead} was left 'running' by pid {child.pid}, which is gone" in w for w in s.warnings)
    assert any(f"run {other_host} is marked running by pid" in w and "elsewhere.example" in w for w in s.warnings)
    p.close()


def test_a_run_records_the_process_that_drives_it(tmp_path, toy_space):
    from hwprof.liveness import driver_state

    p = _profiler(tmp_path, toy_space)
    p.profile(list(toy_space.enumerate())[:1])
    host = p.store.runs()[-1].host
    assert host["driver_pid"] == os.getpid() and host["driver_hostname"] == socket.gethostname()
    assert driver_state(host) == "alive"
    assert driver_state({**host, "driver_start": -1}) == "dead"  # the pid now names another process
    p.close()


# --- a store locked by another process -----------------------------------------------------------------------------

class LockingDevice(ScriptedDevice):
    """Once a group is measured, another connection holds the store's write lock for ``hold_s``."""

    def __init__(self, db, hold_s, **settings):
        super().__init__(**settings)
        self.db, self.hold_s = db, hold_s

    def time_many(self, fns, protocol):
        results = super().time_many(fns, protocol)
        locked = threading.Event()

        def hold():
            con = sqlite3.connect(self.db, isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(self.hold_s)
            con.execute("COMMIT")
            con.close()

        threading.Thread(target=hold, daemon=True).start()
        locked.wait(5)
        return results


def test_a_group_waits_for_a_write_lock_held_past_the_busy_timeout(tmp_path, toy_space, monkeypatch, caplog):
    """The group's rows arrive although another process held the lock for 1 s, 5x the busy timeout."""
    monkeypatch.setattr("hwprof.store.BUSY_TIMEOUT_S", 0.2)
    archs = list(toy_space.enumerate())
    device = LockingDevice(str(tmp_path / "p.db"), hold_s=1.0)
    p = _profiler(tmp_path, toy_space, device, protocol=INTERLEAVED, interleave=6, calibrate=False)
    with caplog.at_level(logging.WARNING, logger="hwprof"):
        s = p.profile(archs)
    assert s.status == "completed" and len(p.store.measurements()) == 6
    assert any("locked by another process" in r.getMessage() for r in caplog.records)
    p.close()


def test_a_lock_never_released_fails_with_the_store_error_after_the_wait(tmp_path, toy_space, monkeypatch):
    from hwprof.errors import StoreBusy

    monkeypatch.setattr("hwprof.store.BUSY_TIMEOUT_S", 0.1)
    device = LockingDevice(str(tmp_path / "p.db"), hold_s=3.0)
    p = _profiler(tmp_path, toy_space, device, protocol=INTERLEAVED, interleave=6, calibrate=False, commit_wait_s=0.3)
    with pytest.raises(StoreBusy, match="database is locked"):
        p.profile(list(toy_space.enumerate()))
    p.store.close()


# --- temporary files of killed exports -----------------------------------------------------------------------------

def test_stale_export_temp_files_are_removed_when_a_profiler_starts(tmp_path, toy_space):
    import fcntl

    folder = tmp_path / "cache" / "onnx"
    folder.mkdir(parents=True)
    old = time.time() - 3600
    stale, fresh, in_use, meta = (folder / n for n in ("a.onnx.tmp", "b.onnx.tmp", "c.onnx.tmp", "d.tmp"))
    for path in (stale, fresh, in_use, meta):
        path.write_bytes(b"partial")
    for path in (stale, in_use, meta):
        os.utime(path, (old, old))
    keep = folder / "e.onnx"
    keep.write_bytes(b"model")
    os.utime(keep, (old, old))
    with open(in_use, "rb") as handle:  # a live exporter holds its file's lock until it is renamed into place
        fcntl.flock(handle, fcntl.LOCK_EX)
        _profiler(tmp_path, toy_space).close()
        assert in_use.exists()
    assert not stale.exists() and not meta.exists() and fresh.exists() and keep.exists()
