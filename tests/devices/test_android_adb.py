"""The adb device: command construction and parsing, against a fake `adb` on PATH and recorded outputs."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from devices.android_adb import (
    AndroidAdbDevice,
    count_cpus,
    parse_adb_devices,
    parse_benchmark_output,
    parse_getprop,
)
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError
from hwprof.types import InputSpec, Measurement, ModelArtifact

DATA = Path(__file__).parent / "data" / "android"

# A fake adb: a phone described by files in $FAKE_ADB (devices.txt, getprop.txt, benchmark.txt, gone_after),
# its file system under $FAKE_ADB/phone, every call appended to $FAKE_ADB/calls.jsonl.
FAKE_ADB = r'''
import json, os, shlex, shutil, sys
from pathlib import Path
state = Path(os.environ["FAKE_ADB"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(args) + "\n")
def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)
if args[:1] == ["devices"]:
    print("List of devices attached")
    print((state / "devices.txt").read_text(), end="")
    sys.exit(0)
if args[:1] != ["-s"]:
    fail("error: more than one device/emulator")
serial, args = args[1], args[2:]
calls = sum(1 for _ in open(state / "calls.jsonl"))
gone = state / "gone_after"
if gone.exists() and calls > int(gone.read_text()):
    fail(f"error: device '{serial}' not found")
phone = state / "phone"
if args[0] == "push":
    target = phone / args[2].lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(args[1], target)
    print(f"{args[1]}: 1 file pushed, 0 skipped.")
    sys.exit(0)
assert args[0] == "shell" and len(args) == 2, args
cmd = args[1]
words = shlex.split(cmd)
if cmd == "getprop":
    print((state / "getprop.txt").read_text(), end="")
elif cmd.startswith("test -x"):
    binary = phone / words[2].lstrip("/")
    print(f"{'ab12' * 16}  {words[2]}" if binary.exists() else "missing")
elif cmd == "cat /sys/devices/system/cpu/possible":
    print("0-7")
elif "scaling_cur_freq" in cmd:
    print("\n".join(["1803000"] * 4 + ["2348000"] * 2 + ["2850000"] * 2))
elif cmd.startswith("stat -c %s"):
    f = phone / words[3].lstrip("/")
    print(f.stat().st_size if f.exists() else "none")
elif cmd.startswith("mkdir -p"):
    (phone / words[2].lstrip("/")).mkdir(parents=True, exist_ok=True)
elif words[0].endswith("benchmark_model"):
    graph = next(w for w in words if w.startswith("--graph=")).split("=", 1)[1]
    if not (phone / graph.lstrip("/")).exists():
        print((state / "error.txt").read_text(), end="")
        sys.exit(1)
    out = "one_run.txt" if "--num_runs=1" in words else "benchmark.txt"
    print((state / out).read_text(), end="")
else:
    fail(f"/system/bin/sh: {words[0]}: not found")
'''


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A fake adb on PATH with one Pixel 7 holding benchmark_model; returns the state folder."""
    state = tmp_path / "adb-state"
    (state / "phone" / "data/local/tmp").mkdir(parents=True)
    (state / "phone" / "data/local/tmp/benchmark_model").write_text("binary")
    (state / "devices.txt").write_text("28031FDH2005X2\tdevice\n")
    (state / "getprop.txt").write_text((DATA / "getprop_pixel7.txt").read_text())
    (state / "benchmark.txt").write_text((DATA / "benchmark_model_new.txt").read_text())
    (state / "one_run.txt").write_text((DATA / "benchmark_model_one_run.txt").read_text())
    (state / "error.txt").write_text((DATA / "benchmark_model_error.txt").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n{FAKE_ADB}")
    adb.chmod(0o755)
    monkeypatch.setenv("FAKE_ADB", str(state))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return state


def calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def tflite(tmp_path, name="m.tflite", data=b"TFL3 model bytes") -> ModelArtifact:
    path = tmp_path / name
    path.write_bytes(data)
    return ModelArtifact(str(path), "tflite", hashlib.sha256(data).hexdigest(), len(data), "arch0", (InputSpec("x", (1, 3, 32, 32)),))


# --- parsing recorded outputs -------------------------------------------------
def test_parse_recent_benchmark_model_output():
    out = parse_benchmark_output((DATA / "benchmark_model_new.txt").read_text())
    assert (out.init_us, out.first_inference_us, out.warmup_avg_us, out.inference_avg_us) == (41732, 9821, 4019.45, 3947.62)
    assert out.steady.count == 253 and out.warmup.count == 124
    s = out.stats()
    assert s.median_ms == pytest.approx(3.912) and s.mean_ms == pytest.approx(3.94762) and s.p90_ms == pytest.approx(4.190)
    assert (s.min_ms, s.max_ms, s.std_ms, s.n_runs) == pytest.approx((3.839, 5.120, 0.121, 253))
    assert s.ci_half_width_ms == pytest.approx(1.96 * 0.121 / 253 ** 0.5)
    est = out.estimates_ms()
    assert est["p5"] == pytest.approx(3.850) and est["p95"] == pytest.approx(4.190) and est["init"] == pytest.approx(41.732)
    assert out.memory_mb == {"init": 8.86328, "overall": 12.0391}


def test_parse_older_output_without_percentiles():
    out = parse_benchmark_output((DATA / "benchmark_model_old.txt").read_text())
    assert out.inference_avg_us == 249684 and out.steady.count == 50 and out.warmup.count == 2
    s = out.stats()
    assert s.median_ms == pytest.approx(249.684)  # no median printed: the mean stands in (estimator "mean")
    assert s.p90_ms == pytest.approx(254.474)  # no percentile printed: the max, an upper bound
    assert "median" not in out.estimates_ms() and out.memory_mb["overall"] == pytest.approx(138.809)


def test_parse_one_run_and_scientific_notation():
    out = parse_benchmark_output((DATA / "benchmark_model_one_run.txt").read_text())
    assert out.inference_avg_us == pytest.approx(1.3576e6) and out.steady.count == 1 and out.warmup is None
    assert out.stats().min_ms == pytest.approx(1357.602) and out.stats().std_ms == 0.0


def test_parse_failure_names_the_error():
    with pytest.raises(ModelRunError, match="printed no timings: ERROR: Failed to mmap model"):
        parse_benchmark_output((DATA / "benchmark_model_error.txt").read_text())


def test_getprop_adb_devices_and_cpu_lists():
    props = parse_getprop((DATA / "getprop_pixel7.txt").read_text())
    assert props["ro.product.model"] == "Pixel 7" and props["ro.soc.model"] == "GS201"
    assert parse_adb_devices("List of devices attached\nA\tdevice\nB\tunauthorized\n\n") == [("A", "device"), ("B", "unauthorized")]
    assert count_cpus("0-7\n") == 8 and count_cpus("0-3,6") == 5 and count_cpus("0") == 1


# --- against the fake adb -------------------------------------------------------
def test_check_reads_the_phone(phone):
    info = AndroidAdbDevice().check()
    assert info.cpu_model == "Google GS201" and info.cores_logical == 8
    assert info.extra["model"] == "Pixel 7" and info.extra["android_version"] == "14" and info.extra["serial"] == "28031FDH2005X2"
    assert info.runtime == "tflite-benchmark_model" and info.runtime_version == "sha256:" + "ab12" * 4


def test_soc_falls_back_to_the_board_platform(phone):
    (phone / "getprop.txt").write_text((DATA / "getprop_android10.txt").read_text())
    assert AndroidAdbDevice().check().cpu_model == "sdm845"


def test_measure_pushes_once_and_runs_benchmark_model_with_the_settings(phone, tmp_path):
    dev = AndroidAdbDevice(num_threads=2, use_xnnpack=False, num_runs=30, warmup_runs=5)
    art = tflite(tmp_path)
    m = dev.measure(art)
    remote = f"/data/local/tmp/hwprof/{art.sha256}.tflite"
    bench = [shlex.split(c[3]) for c in calls(phone) if c[2:3] == ["shell"] and "benchmark_model" in c[3]]
    assert bench == [["/data/local/tmp/benchmark_model", f"--graph={remote}", "--num_threads=2", "--use_xnnpack=false",
                      "--num_runs=30", "--warmup_runs=5", "2>&1"]]
    assert [c[2:] for c in calls(phone) if "push" in c] == [["push", art.path, remote]]
    assert m.latency_ms == pytest.approx(3.912) and m.estimator == "median" and m.samples_ms == ()
    assert m.stats.n_runs == 253 and m.n_warmup == 124 and m.energy_mj is None
    assert m.host["model"] == "Pixel 7" and m.host["cpu_cur_freq_khz"][-1] == 2850000
    assert Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m
    dev.measure(art)  # the phone has it: not pushed again
    assert sum("push" in c for c in calls(phone)) == 1


def test_without_a_printed_median_latency_is_the_mean(phone, tmp_path):
    (phone / "benchmark.txt").write_text((DATA / "benchmark_model_old.txt").read_text())
    m = AndroidAdbDevice().measure(tflite(tmp_path))
    assert m.estimator == "mean" and m.latency_ms == pytest.approx(249.684)


def test_one_inference_runs_on_the_phone(phone, tmp_path):
    dev = AndroidAdbDevice()
    handle = dev.prepare(tflite(tmp_path))
    out = handle.run()
    assert out.steady.count == 1
    last = shlex.split(calls(phone)[-1][3])
    assert "--num_runs=1" in last and "--warmup_runs=0" in last


@pytest.mark.parametrize("devices,message", [
    ("", "no Android device connected .adb devices lists none.; enable USB debugging"),
    ("X1\tunauthorized\n", "phone X1 is unauthorized: accept the USB debugging prompt"),
    ("X1\tdevice\nX2\tdevice\n", "several phones .X1, X2.: choose one with --set serial=SERIAL"),
    ("X1\toffline\n", r"lists X1 \(offline\)"),
])
def test_check_fails_clearly_without_exactly_one_ready_phone(phone, devices, message):
    (phone / "devices.txt").write_text(devices)
    with pytest.raises(DeviceUnavailable, match=message):
        AndroidAdbDevice().check()


def test_check_without_adb(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeviceUnavailable, match="adb not found .'adb' is not on PATH.: install Android platform-tools"):
        AndroidAdbDevice().check()


def test_check_without_benchmark_model_on_the_phone(phone):
    (phone / "phone" / "data/local/tmp/benchmark_model").unlink()
    with pytest.raises(DeviceUnavailable, match="benchmark_model not found at /data/local/tmp/benchmark_model on the phone: adb push"):
        AndroidAdbDevice().check()


def test_phone_unplugged_mid_run(phone, tmp_path):
    dev = AndroidAdbDevice()
    dev.check()
    (phone / "gone_after").write_text(str(len(calls(phone)) + 2))
    with pytest.raises(DeviceUnavailable, match="not reachable over adb .error: device '28031FDH2005X2' not found.: is it plugged in"):
        dev.measure(tflite(tmp_path))


def test_adb_calls_time_out(phone, tmp_path):
    slow = tmp_path / "slow-adb"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    dev = AndroidAdbDevice(adb=str(slow), serial="X", timeout_s=0.2)
    with pytest.raises(ModelRunError, match="did not finish within 0.2 s"):
        dev.benchmark("/data/local/tmp/hwprof/x.tflite")


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="num_threads must be >= 1, got 0"):
        AndroidAdbDevice(num_threads=0)
    with pytest.raises(ConfigError, match="use_xnnpack must be true or false"):
        AndroidAdbDevice(use_xnnpack="maybe")
    with pytest.raises(ConfigError, match="absolute path on the phone"):
        AndroidAdbDevice(remote_dir="tmp")
    with pytest.raises(ConfigError, match="runs tflite, not 'onnx'"):
        AndroidAdbDevice(serial="X").measure(ModelArtifact("m.onnx", "onnx", "0" * 64, 1, "a", ()))
