"""Node faults on a real two-node Ray cluster: a node killed mid-run, a device that disappears, Ctrl-C of the
CLI, and a node started by `hwprof worker`. Slow: nodes export NB201 networks themselves."""

from __future__ import annotations

import os
import signal
import subprocess
import re
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'hwprof[ray]')")

from hwprof.cli.main import main  # noqa: E402
from hwprof.errors import DeviceUnavailable  # noqa: E402
from hwprof.fleet import FleetDevice, NodeDevice, RayFleet, open_fleet  # noqa: E402
from hwprof.profiling import Profiler  # noqa: E402
from hwprof.protocol import ProtocolSettings  # noqa: E402
from hwprof.registry import get_space  # noqa: E402
from hwprof.store import Store  # noqa: E402
from hwprof.testing_fleet import local_fleet  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ProtocolSettings(min_warmup=1, max_warmup=3, warmup_window=2, min_runs=5, max_runs=20, max_time_s=0.3,
                            check_every=5, rounds=2, visit_runs=5, stop_quantile=0.5)  # fmt: skip
CLI = "from hwprof.cli.main import run; run()"
FAST_CLI = ["--min-runs", "5", "--max-runs", "20", "--max-time-s", "0.3", "--rounds", "2", "--visit-runs", "5",
            "--references", "1", "--drift-every", "0", "--interleave", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    first = [NodeDevice("ort-cpu", "ort-cpu", {"cpu_affinity": "0"})]
    second = [NodeDevice("ort-cpu", "ort-cpu", {"cpu_affinity": str(min(1, os.cpu_count() - 1))})]
    with local_fleet([first, second], tmp_path_factory.mktemp("nodes")) as f:
        yield f


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "RAY_AUTH_MODE": "disabled"}


def test_a_node_killed_mid_run_has_its_group_sent_to_the_other_node(fleet, tmp_path, nb201):
    archs = [nb201.from_index(i) for i in (7, 70, 700, 7000, 9000, 12000)]
    device, runner = open_fleet("ort-cpu", {}, None)
    assert len(runner.nodes()) == 2
    profiler = Profiler(device, nb201, Store(tmp_path / "f.db"), protocol=PROTOCOL, interleave=1, references=1,
                        drift_every=0, runner=runner, cache_dir=tmp_path / "cache")  # fmt: skip
    killed = []

    def kill_the_second_node(ev):
        if not killed:
            killed.append(ev.n_done)
            fleet.kill(1)

    summary = profiler.profile(archs, on_progress=kill_the_second_node)
    assert summary.status == "completed" and summary.n_measured == len(archs)
    assert any("sent again (attempt 2 of 3)" in w for w in summary.warnings), summary.warnings
    rows = profiler.store.measurements(device="ort-cpu")
    assert sorted(r.arch_id for r in rows) == sorted(a.arch_id for a in archs)
    head = fleet.nodes[0].node_id
    assert rows[-1].host["fleet"]["node_id"] == head  # after the kill only the head measures
    assert len({r.settings_hash for r in rows}) == 1  # both nodes' rows are one device's
    profiler.close()


def test_a_device_whose_last_node_dies_fails_in_one_line_and_keeps_what_was_stored(fleet, tmp_path, nb201):
    index = fleet.add([NodeDevice("solo", "ort-cpu", {})])
    runner = RayFleet("solo", {}, address=None, lost_grace_s=2.0)
    profiler = Profiler(FleetDevice(runner), nb201, Store(tmp_path / "f.db"), protocol=PROTOCOL, interleave=1,
                        references=1, drift_every=0, runner=runner, cache_dir=tmp_path / "cache")  # fmt: skip
    archs = [nb201.from_index(i) for i in (8, 80, 800)]

    def kill_the_node(ev):
        if ev.n_done == 1:
            fleet.kill(index)

    t0 = time.monotonic()
    with pytest.raises(DeviceUnavailable, match=r"no live node .* advertised dev:solo ") as info:
        profiler.profile(archs, on_progress=kill_the_node)
    assert time.monotonic() - t0 < 120
    # the group measured before the kill, and the next one too when its reply was already in: stored, never lost
    stored, left = map(int, re.search(r"(\d+) measurements stored, (\d+) networks not measured", str(info.value)).groups())
    assert stored in (1, 2) and stored + left == 3
    assert len(profiler.store.measurements(device="solo")) == stored
    assert profiler.store.runs(device="solo")[-1].status == "failed"
    profiler.close()


def test_ctrl_c_of_the_cli_keeps_completed_rows_and_the_same_command_resumes(fleet, tmp_path):
    db = tmp_path / "cli.db"
    args = ["profile", "--ray", fleet.address, "--device", "ort-cpu", "--space", "nb201", "--db", str(db),
            "--cache-dir", str(tmp_path / "cache"), "--indices", "9,90,900,9000,9900,10900", *FAST_CLI]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    n = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if db.exists():
            with Store(db, create=False) as store:
                n = len(store.measurements(device="ort-cpu"))
            if n:
                break
    assert n, "no measurement was stored before the deadline"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert line and "marked interrupted" in line[0] and "run the same command" in line[0]
    with Store(db, create=False) as store:
        kept = len(store.measurements(device="ort-cpu"))
        assert store.runs()[-1].status == "interrupted"
    assert 1 <= kept < 6
    assert main(args) == 0
    with Store(db, create=False) as store:
        assert len(store.measurements(device="ort-cpu")) == 6


def test_hwprof_worker_makes_this_machine_a_device_node(fleet, tmp_path, nb201):
    core = min(1, os.cpu_count() - 1)
    cmd = [sys.executable, "-c", CLI, "worker", "--devices", "board=ort-cpu", "--address", fleet.address,
           "--set", f"cpu_affinity={core}", "--cache-dir", str(tmp_path / "node")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        runner = None
        deadline = time.monotonic() + 120
        while runner is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                runner = RayFleet("board", {}, address=None)
            except DeviceUnavailable:
                time.sleep(1)
        assert runner is not None, proc.stderr.read() if proc.poll() is not None else "no node advertised dev:board"
        profiler = Profiler(FleetDevice(runner), nb201, Store(tmp_path / "f.db"), protocol=PROTOCOL, references=1,
                            drift_every=0, runner=runner, cache_dir=tmp_path / "cache")  # fmt: skip
        assert profiler.profile([nb201.from_index(3)]).n_measured == 1
        (row,) = profiler.store.measurements(device="board")
        assert row.host["fleet"]["adapter"] == "ort-cpu" and list(row.host["fleet"]["settings"]["cpu_affinity"]) == [core]
        assert row.settings["cpu_affinity"] is None
        profiler.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in its terminal: `ray start --block` stops its processes
        proc.communicate(timeout=60)
    assert proc.returncode == 130
