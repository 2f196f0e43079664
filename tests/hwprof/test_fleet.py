"""The Ray fleet runner against a real one-node Ray cluster (started once for the module).

The node is a real raylet advertising ``dev:ort-cpu`` with a node setting
(cpu_affinity) as `hwprof worker` would give it; tiny NB201 networks are
exported on the node and measured there with a short protocol.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time

import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'hwprof[ray]')")

from hwprof.artifacts import ArtifactCache, exporter_for  # noqa: E402
from hwprof.cli.main import main  # noqa: E402
from hwprof.errors import ConfigError, DeviceUnavailable  # noqa: E402
from hwprof.fleet import NodeDevice, RayFleet, advertised_devices, check_reachable, import_ray, open_fleet, parse_node_devices  # noqa: E402
from hwprof.profiling import ProfileInterrupted, Profiler  # noqa: E402
from hwprof.protocol import ProtocolSettings  # noqa: E402
from hwprof.registry import get_device, get_space  # noqa: E402
from hwprof.runners import GroupJob  # noqa: E402
from hwprof.store import Store  # noqa: E402
from hwprof.testing_fleet import local_fleet  # noqa: E402

PROTOCOL = ProtocolSettings(min_warmup=1, max_warmup=3, warmup_window=2, min_runs=5, max_runs=20, max_time_s=0.3,
                            check_every=5, rounds=2, visit_runs=5, stop_quantile=0.5)  # fmt: skip
INDICES = (11, 222, 3333)


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="module")
def cache(tmp_path_factory, nb201):
    """The networks of these tests exported once, here: exporting is what takes time on a slow machine."""
    folder = tmp_path_factory.mktemp("cache")
    archs = (*(nb201.from_index(i) for i in INDICES), *nb201.calibration_architectures(1))
    GroupJob(archs, nb201, exporter_for(("onnx",)), "fp32", PROTOCOL).export(ArtifactCache(folder))
    return folder


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, cache):
    nodes = tmp_path_factory.mktemp("nodes")
    # the node's export cache starts with the same files (its exports are the same bytes, checked below)
    shutil.copytree(cache, nodes / "node0" / "exports")
    with local_fleet([[NodeDevice("ort-cpu", "ort-cpu", {"cpu_affinity": "0"})]], nodes) as f:
        yield f


def _profiler(tmp_path, nb201, cache, runner=None, device=None, **kwargs):
    tmp_path.mkdir(parents=True, exist_ok=True)
    device = device if device is not None else get_device("ort-cpu")
    return Profiler(device, nb201, Store(tmp_path / "fleet.db"), protocol=PROTOCOL, cache_dir=cache,
                    interleave=2, references=1, drift_every=0, runner=runner, **kwargs)  # fmt: skip


def test_fleet_profile_stores_rows_shaped_like_the_local_path_and_resumes(fleet, tmp_path, nb201, cache):
    archs = [nb201.from_index(i) for i in INDICES]
    device, runner = open_fleet("ort-cpu", {}, None)
    profiler = _profiler(tmp_path / "fleet", nb201, cache, runner=runner, device=device)
    events = []
    summary = profiler.profile(archs, on_progress=events.append)
    assert summary.status == "completed" and summary.n_measured == len(archs) and summary.n_skipped == 0
    assert [e.n_done for e in events] == [1, 2, 3]
    fleet_rows = {r.arch_id: r for r in profiler.store.measurements(device="ort-cpu")}
    assert set(fleet_rows) == {a.arch_id for a in archs}

    local = _profiler(tmp_path / "local", nb201, cache)
    local.profile(archs)
    local_rows = {r.arch_id: r for r in local.store.measurements(device="ort-cpu")}
    for arch_id, row in fleet_rows.items():
        other = local_rows[arch_id]
        # the same identity (settings hash, device, precision) and the same kind of estimates as a local row
        assert row.settings_hash == other.settings_hash == profiler.settings_hash
        assert dict(row.settings) == dict(other.settings) and row.settings["cpu_affinity"] is None
        assert row.artifact_sha256 == other.artifact_sha256  # the node exported the same bytes
        assert set(row.estimates) == set(other.estimates) and row.estimator == other.estimator
        assert row.reference_ms is not None and row.latency_ms > 0
        # where it ran: the node, with the node's own placement setting applied there
        assert row.host["fleet"]["resource"] == "dev:ort-cpu"
        assert list(row.host["fleet"]["settings"]["cpu_affinity"]) == [0]
        assert list(row.host["cpu_affinity"]) == [0]

    again = profiler.profile(archs)
    assert again.n_skipped == len(archs) and again.n_measured == 0
    profiler.close()
    local.close()


def test_interrupt_keeps_the_finished_groups_and_a_rerun_measures_the_rest(fleet, tmp_path, nb201, cache):
    archs = [nb201.from_index(i) for i in INDICES]
    device, runner = open_fleet("ort-cpu", {}, None)
    profiler = _profiler(tmp_path, nb201, cache, runner=runner, device=device)

    def stop_after_the_first_group(ev):
        if ev.n_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(ProfileInterrupted) as info:
        profiler.profile(archs, on_progress=stop_after_the_first_group)
    kept = profiler.store.measurements(device="ort-cpu")
    assert len(kept) == info.value.summary.n_measured >= 2
    assert profiler.store.runs()[-1].status == "interrupted"
    rest = profiler.profile(archs)
    assert rest.n_skipped == len(kept) and rest.n_measured == len(archs) - len(kept)
    assert len(profiler.store.measurements(device="ort-cpu")) == len(archs)
    profiler.close()


def test_the_energy_meter_is_read_on_the_node_that_runs_the_model(fleet, tmp_path, nb201, cache, capsys):
    """--meter with --ray: each group's request carries the meter, built and read on its node (here the csv
    meter on a power log at a constant 5 W); a meter that does not work there is one line before any store."""
    from tests.power_log import constant_power_log

    device, runner = open_fleet("ort-cpu", {}, None)
    runner.use_meter("csv", {"path": str(tmp_path / "power.csv")})
    with constant_power_log(tmp_path / "power.csv", 5.0):
        profiler = _profiler(tmp_path, nb201, cache, runner=runner, device=device)
        assert profiler.profile([nb201.from_index(INDICES[0])]).n_measured == 1
    (row,) = profiler.store.measurements(device="ort-cpu")
    assert row.meter == "csv" and 5.0 * row.mean_ms <= row.energy_mj < 5.0 * row.mean_ms * 1.5
    profiler.close()

    db = tmp_path / "none.db"
    code = main(["profile", "--ray", fleet.address, "--device", "ort-cpu", "--indices", "11", "--db", str(db),
                 "--cache-dir", str(cache), "--meter", "csv", "--meter-set", f"path={tmp_path / 'no-logger.csv'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "meter 'csv' on ort-cpu" in err[0] and "does not exist" in err[0]
    assert not db.exists()


def test_a_device_no_node_advertises_is_refused_at_once(fleet):
    t0 = time.monotonic()
    with pytest.raises(DeviceUnavailable, match=r"no node of the Ray cluster advertises dev:pixel7 .*dev:ort-cpu.*hwprof worker"):
        RayFleet("pixel7", {}, address=None)
    assert time.monotonic() - t0 < 10


def test_cli_profiles_on_the_fleet_and_refuses_an_absent_device_in_one_line(fleet, tmp_path, capsys, cache):
    common = ["profile", "--ray", fleet.address, "--space", "nb201", "--db", str(tmp_path / "cli.db"), "--cache-dir", str(cache),
              "--indices", ",".join(map(str, INDICES[:2])),
              "--min-runs", "5", "--max-runs", "20", "--max-time-s", "0.3", "--rounds", "2", "--visit-runs", "5",
              "--references", "1", "--drift-every", "0"]  # fmt: skip
    assert main([*common, "--device", "ort-cpu"]) == 0
    out = capsys.readouterr()
    assert "1 Ray node(s) advertising dev:ort-cpu" in out.out
    with Store(tmp_path / "cli.db", create=False) as store:
        assert len(store.measurements(device="ort-cpu")) == 2
    assert main([*common, "--device", "nosuch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dev:nosuch" in err[0] and "Traceback" not in err[0]


def test_hwprof_devices_lists_what_the_fleet_advertises(fleet, capsys):
    devices = advertised_devices(None)  # the session this test process has
    assert list(devices) == ["ort-cpu"] and len(devices["ort-cpu"]) == 1
    assert main(["devices", "--ray", fleet.address]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Ray fleet at {fleet.address}" in out and "ort-cpu" in out.split("Ray fleet at")[1]


def test_an_address_nobody_answers_on_fails_at_once_instead_of_waiting_for_ray():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(DeviceUnavailable, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port}: .*ray start --head"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - t0 < 5
    check_reachable("auto")  # resolved by Ray itself


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "hwprof\[ray\]"'):
        import_ray()


def test_worker_line_and_node_settings(capsys):
    devices = parse_node_devices("ort-cpu,board=ort-cpu", [("intra_op_threads", 1), ("board.cpu_affinity", 0)])
    assert [(d.name, d.adapter, dict(d.settings)) for d in devices] == [
        ("ort-cpu", "ort-cpu", {"intra_op_threads": 1}), ("board", "ort-cpu", {"intra_op_threads": 1, "cpu_affinity": 0}),
    ]
    with pytest.raises(ConfigError, match="not one of this node's devices"):
        parse_node_devices("ort-cpu", [("pixel.cpu_affinity", 0)])
    assert main(["worker", "--devices", "board=ort-cpu", "--address", "10.0.0.1:6379", "--set", "cpu_affinity=0", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert "ray start --address 10.0.0.1:6379 --num-cpus 0 --resources '{\"dev:board\": 1.0}' --block" in line
    assert line.startswith("HWPROF_FLEET_DEVICES=") and '"adapter": "ort-cpu"' in line and '"cpu_affinity": 0' in line
    assert main(["worker", "--devices", "ort-cpu", "--dry-run"]) == 1  # neither --address nor --head
