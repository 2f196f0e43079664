"""The worker: exact JSON round trips, the JSON command line, runners, and the profiler measuring through it."""

import json
import math
import sqlite3
import subprocess
import sys
import time

import pytest

from hwprof import registry
from hwprof.artifacts import export_module
from hwprof.cli.main import main
from hwprof.errors import ConfigError, ModelRunError, UnknownNameError
from hwprof.protocol import ProtocolSettings
from hwprof.runners import InProcessRunner, SubprocessRunner
from hwprof.testing import FAST_PROTOCOL
from hwprof.types import DeviceInfo, LatencyStats, Measurement
from hwprof.worker import WorkRequest, WorkResult, handle, measure, parse_reply

FAST_CLI = ["--min-runs", "5", "--max-runs", "20", "--max-time-s", "0.3", "--target-ci", "0.05", "--drift-every", "0"]


def _measurement(**changes):
    base = dict(
        arch_id="a1",
        artifact_sha256="f" * 64,
        device="ort-cpu",
        stats=LatencyStats(1.0 / 3, 0.1 + 0.2, 2.5e-17, 0.0, 1e-300, 1e300, math.inf, 0.123456789012345678, 7),
        n_warmup=4,
        unstable=True,
        settings={"intra_op_threads": 1, "cpu_affinity": [0, 2], "allow_spinning": False, "name": "x"},
        host={"cpu_model": "AMD EPYC", "load_avg": [0.5, 0.25, 0.125], "versions": {"onnxruntime": "1.2"}, "governor": None},
        timestamp="2026-12-03T09:00:00+00:00",
        hwprof_version="0.1.0",
        samples_ms=(0.1, 1 / 7, 2.0000000000000004),
        energy_mj=None,
        meter=None,
        stop_reason="max_runs",
        reference_ms=0.987654321,
    )
    base.update(changes)
    return Measurement(**base)


@pytest.mark.parametrize("changes", [{}, {"energy_mj": 12.5, "meter": "rapl", "reference_ms": None}])
def test_measurement_json_round_trip_is_exact(changes):
    m = _measurement(**changes)
    back = Measurement.from_json(json.loads(json.dumps(m.to_json())))
    assert back == m
    assert back.samples_ms == m.samples_ms and isinstance(back.samples_ms, tuple)
    assert back.stats.ci_half_width_ms == math.inf


def test_device_info_json_round_trip_is_exact():
    info = DeviceInfo("ort-cpu", "onnxruntime", "1.2", "AMD EPYC", 2, settings={"a": [1, 2]}, extra={"providers": ["CPU"]})
    back = DeviceInfo.from_json(json.loads(json.dumps(info.to_json())))
    assert back == info and back.fingerprint == info.fingerprint


@pytest.fixture
def artifact(tmp_path):
    import torch

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()

    return export_module(build, (1, 3, 16, 16), tmp_path / "cache", "tiny")


def _request(artifact, **changes):
    data = WorkRequest("ort-cpu", {"intra_op_threads": 1}, (artifact,), FAST_PROTOCOL, interleaved=False).to_json()
    data.update(changes)
    return data


def test_worker_command_line_measures_and_describes_its_own_host(artifact, tmp_path):
    request = tmp_path / "req.json"
    request.write_text(json.dumps(_request(artifact)))
    proc = subprocess.run([sys.executable, "-m", "hwprof.worker", str(request)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = parse_reply(json.loads(proc.stdout))
    (m,) = result.measurements
    assert m.arch_id == artifact.arch_id and m.artifact_sha256 == artifact.sha256 and m.stats.n_runs >= 5
    assert m.settings["intra_op_threads"] == 1 and result.device_info.name == "ort-cpu"
    # host metadata comes from the worker process, not from this one
    assert result.host["pid"] == m.host["pid"] != __import__("os").getpid()


def test_worker_command_line_errors(artifact):
    def run(text):
        proc = subprocess.run([sys.executable, "-m", "hwprof.worker"], input=text, capture_output=True, text=True, timeout=120)
        return proc.returncode, json.loads(proc.stdout)

    code, reply = run("{not json")
    assert code == 2 and reply["ok"] is False and reply["error"]["type"] == "ConfigError"
    code, reply = run(json.dumps(_request(artifact, device="no-such-device")))
    assert code == 1 and reply["error"]["type"] == "UnknownNameError" and "no-such-device" in reply["error"]["message"]
    with pytest.raises(UnknownNameError, match="no-such-device"):
        parse_reply(reply)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"artifacts": []}, "non-empty list 'artifacts'"),
        ({"op": "explode"}, "unknown worker op"),
        ({"version": 99}, "version 99"),
        ({"protocol": {"max_runz": 3}}, "unknown: \\['max_runz'\\]"),
        ({"artifacts": [{"path": "x"}]}, "malformed artifact"),
    ],
)
def test_malformed_requests_are_config_errors(artifact, changes, message):
    reply = handle(_request(artifact, **changes))
    assert reply["ok"] is False and reply["error"]["type"] == "ConfigError"
    with pytest.raises(ConfigError, match=message):
        parse_reply(reply)


def test_worker_refuses_an_artifact_whose_bytes_changed(artifact):
    with open(artifact.path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelRunError, match="the file changed after export"):
        measure("ort-cpu", [artifact], FAST_PROTOCOL)


def test_in_process_and_subprocess_runners_agree_on_what_they_measure(artifact):
    from devices.ort_cpu import OrtCpuDevice

    local = InProcessRunner(OrtCpuDevice())
    remote = SubprocessRunner("ort-cpu", {})
    info_local, host_local = local.describe()
    info_remote, host_remote = remote.describe()
    assert info_local == info_remote and host_local["cpu_model"] == host_remote["cpu_model"]
    (a,) = local.measure([artifact], FAST_PROTOCOL, interleaved=False)
    (b,) = remote.measure([artifact], FAST_PROTOCOL, interleaved=False)
    assert (a.arch_id, a.artifact_sha256, dict(a.settings)) == (b.arch_id, b.artifact_sha256, dict(b.settings))
    assert 0.2 < a.latency_ms / b.latency_ms < 5


def test_subprocess_runner_reports_a_missing_interpreter():
    from hwprof.errors import HwprofError

    with pytest.raises(HwprofError, match="cannot start the worker"):
        SubprocessRunner("ort-cpu", {}, python="/nonexistent/python").describe()


def test_work_result_round_trip():
    result = WorkResult(DeviceInfo("d", "r", "1", "cpu", 1), {"hostname": "h"}, (_measurement(),))
    assert WorkResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_profile_refuses_swapped_cache_entries(tmp_path, capsys):
    """Two cache entries swapped on disk: `hwprof profile` must fail, never store one network's latency as the other's."""
    db = tmp_path / "h.db"
    assert main(["profile", "--indices", "0,1", "--db", str(db), *FAST_CLI]) == 0
    space = registry.get_space("nb201")
    wanted = [space.from_index(i).spec for i in (0, 1)]
    by_spec = {json.loads(m.read_text())["arch"]["spec"]: m for m in (tmp_path / ".hwprof-cache" / "onnx").glob("*.json")}
    metas = [by_spec[spec] for spec in wanted]
    models = [m.with_name(m.name.replace(".json", ".onnx")) for m in metas]
    for x, y in (models, metas):
        tmp = x.with_suffix(".swap")
        x.rename(tmp)
        y.rename(x)
        tmp.rename(y)
    capsys.readouterr()
    code = main(["profile", "--indices", "0,1", "--again", "--db", str(db), *FAST_CLI])
    err = capsys.readouterr().err
    assert code == 1 and "was built from nb201:" in err and "Traceback" not in err
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from measurements").fetchone()[0] == 2


def test_profiler_through_a_subprocess_worker(tmp_path):
    """The profiler with a subprocess runner stores what the worker measured, with the worker's host."""
    from hwprof.profiling import Profiler
    from hwprof.store import Store

    device = registry.get_device("ort-cpu")
    space = registry.get_space("nb201")
    protocol = ProtocolSettings(min_warmup=1, max_warmup=4, warmup_window=2, min_runs=5, max_runs=20, max_time_s=0.3, target_rel_ci=0.05)
    store = Store(tmp_path / "h.db")
    profiler = Profiler(device, space, store, protocol=protocol, runner=SubprocessRunner("ort-cpu", dict(device.settings)), drift_every=0, calibrate=False)
    try:
        summary = profiler.profile([space.from_index(0), space.from_index(5)])
    finally:
        profiler.close()
    assert summary.status == "completed" and summary.n_measured == 2
    with sqlite3.connect(tmp_path / "h.db") as con:
        hosts = [json.loads(h) for (h,) in con.execute("select host_json from measurements")]
    assert len(hosts) == 2 and all(h["pid"] != __import__("os").getpid() for h in hosts)


# --- interrupts: what was completed crosses the worker's JSON like a result ---------------------------------------

def _interrupting(artifact, at_call, interleaved):
    """A request for the same artifact three times, and a scripted device that gets Ctrl-C at its ``at_call``-th model call."""
    from dataclasses import replace

    from tests.hwprof.conftest import FAST, ScriptedDevice

    protocol = replace(FAST, rounds=2, visit_runs=3, round_min_s=0.0) if interleaved else FAST
    request = WorkRequest("scripted", {}, (artifact,) * 3, protocol, interleaved=interleaved).to_json()
    return request, ScriptedDevice(interrupt_at_call=at_call)


def test_an_interrupted_interleaved_request_replies_with_the_models_it_kept(artifact):
    from hwprof.protocol import MeasurementInterrupted

    # 7 calls per model in round 0 (calls 1-21: 4 warm-up, 3 runs); round 1 backwards: the third model takes
    # 2 + 3 (calls 22-26), Ctrl-C in the second one's visit (call 29)
    request, device = _interrupting(artifact, at_call=29, interleaved=True)
    reply = json.loads(json.dumps(handle(request, device=device)))
    assert reply["ok"] is False and reply["interrupted"] is True
    assert reply["partial"][:2] == [None, None] and reply["partial"][2]["stop_reason"] == "interrupted"
    with pytest.raises(MeasurementInterrupted) as caught:
        parse_reply(reply)
    kept = caught.value.partial[2]
    assert isinstance(kept, Measurement) and kept.device == "scripted" and kept.latency_ms == pytest.approx(2.0)
    assert kept.stats.n_runs == 6 and caught.value.partial[:2] == [None, None]


def test_an_interrupted_one_by_one_request_keeps_the_models_measured_before(artifact):
    from hwprof.protocol import MeasurementInterrupted

    request, device = _interrupting(artifact, at_call=17, interleaved=False)  # the first model takes 4 + 10 calls
    with pytest.raises(MeasurementInterrupted) as caught:
        InProcessRunner(device).submit(WorkRequest.from_json(request))
    first, second, third = caught.value.partial
    assert first.stop_reason == "ci_target" and first.stats.n_runs == 10 and second is None and third is None


def test_the_worker_command_line_answers_an_interrupt_with_its_partial_reply_and_130(artifact, tmp_path, capsys):
    from hwprof import worker
    from tests.hwprof.conftest import ScriptedDevice

    request, _ = _interrupting(artifact, at_call=29, interleaved=True)
    path = tmp_path / "req.json"
    path.write_text(json.dumps(request))
    registry.register("device", "scripted", lambda **settings: ScriptedDevice(interrupt_at_call=29, **settings))
    try:
        code = worker.main([str(path)])
    finally:
        registry.unregister("device", "scripted")
    reply = json.loads(capsys.readouterr().out)
    assert code == 130 and reply["interrupted"] is True and reply["partial"][2]["stop_reason"] == "interrupted"


def test_an_interrupted_subprocess_runner_forwards_the_interrupt_and_reads_the_partial_reply(tmp_path):
    """Ctrl-C reaching only the driver (e.g. a SIGTERM raised as one) is passed on to the worker, whose reply is kept."""
    import signal
    import threading

    from hwprof.protocol import MeasurementInterrupted

    kept = _measurement(stop_reason="interrupted")
    reply = {"version": 1, "ok": False, "interrupted": True, "error": {"type": "MeasurementInterrupted", "message": "x"},
             "partial": [None, kept.to_json()]}
    (tmp_path / "reply.json").write_text(json.dumps(reply))
    fake = tmp_path / "fake-python"  # stands for `python -m hwprof.worker -`: answers SIGINT with the reply above
    started = tmp_path / "started"  # written once the trap is set: the interrupt never races the worker's start
    fake.write_text(f"#!/bin/sh\ntrap 'cat {tmp_path / 'reply.json'}; exit 130' INT\ntouch {started}\ncat > /dev/null\n"
                    "while :; do sleep 0.05; done\n")
    fake.chmod(0o755)
    main_thread = threading.get_ident()
    stop = threading.Event()

    def interrupt_once_started() -> None:
        while not stop.is_set():
            if started.exists():
                time.sleep(0.2)  # the driver is in communicate() by now
                signal.pthread_kill(main_thread, signal.SIGINT)
                return
            time.sleep(0.02)

    timer = threading.Thread(target=interrupt_once_started, daemon=True)
    timer.start()
    try:
        with pytest.raises(MeasurementInterrupted) as caught:
            SubprocessRunner("scripted", {}, python=str(fake)).submit(WorkRequest("scripted", op="describe"))
    finally:
        stop.set()
    assert caught.value.partial == [None, kept]
