"""litert-cpu: conformance on real torch -> tflite -> LiteRT measurements, settings, the tflite-runtime fallback, CLI."""

import dataclasses
import sys
import types

import numpy as np
import pytest

import devices.litert_cpu as litert_cpu
from devices.litert_cpu import LiteRtCpuDevice, interpreter_module
from hwprof.cli.main import main
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError
from hwprof.testing import FAST_PROTOCOL, check_device
from tests.devices.tflite_fixtures import tflite_artifacts_fixture  # noqa: F401 (the session fixture tflite_artifacts)


def test_conformance_fp32_and_int8(tflite_artifacts, tmp_path):
    for precision in ("fp32", "int8"):
        m = check_device(LiteRtCpuDevice, tflite_artifacts[precision], tmp_path)
        assert m.precision == precision and m.settings["xnnpack"] is True and m.settings["intra_op_threads"] == 1
        assert m.host["versions"]["ai-edge-litert"]


def test_xnnpack_off_is_recorded_and_measures(tflite_artifacts):
    device = LiteRtCpuDevice(xnnpack="off", intra_op_threads=2)
    info = device.check()
    assert info.runtime == "ai-edge-litert" and info.runtime_version
    assert info.extra["delegate"] == "none" and info.extra["op_resolver"] == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    assert LiteRtCpuDevice().check().extra["delegate"] == "xnnpack"
    m = device.measure(tflite_artifacts["fp32"], FAST_PROTOCOL)
    assert m.settings["xnnpack"] is False and m.stats.median_ms > 0
    assert m.settings_hash != LiteRtCpuDevice().measure(tflite_artifacts["fp32"], FAST_PROTOCOL).settings_hash


def test_settings_validation():
    with pytest.raises(ConfigError, match="xnnpack must be true or false"):
        LiteRtCpuDevice(xnnpack="maybe")
    with pytest.raises(ConfigError, match="intra_op_threads must be >= 0"):
        LiteRtCpuDevice(intra_op_threads=-1)
    with pytest.raises(ConfigError, match="no setting"):
        LiteRtCpuDevice(num_threads=2)


def test_input_spec_that_does_not_match_the_file_is_refused(tflite_artifacts):
    artifact = dataclasses.replace(tflite_artifacts["fp32"], inputs=(dataclasses.replace(tflite_artifacts["fp32"].inputs[0], shape=(1, 3, 16, 16)),))
    with pytest.raises(ModelRunError, match=r"model inputs have shapes \[\(1, 3, 8, 8\)\]"):
        LiteRtCpuDevice().prepare(artifact)


def _fake_tflite_runtime(monkeypatch, created):
    """tflite-runtime as far as an import can tell; creating its Interpreter is recorded (the real one crashes under numpy 2)."""
    package = types.ModuleType("tflite_runtime")
    package.__version__ = "2.14.0"
    interpreter = types.ModuleType("tflite_runtime.interpreter")
    interpreter.Interpreter = lambda *a, **k: created.append(a) or pytest.fail("an Interpreter must not be created")
    package.interpreter = interpreter
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", interpreter)
    return interpreter


def test_tflite_runtime_fallback_is_refused_under_numpy2(monkeypatch, tflite_artifacts):
    created = []
    _fake_tflite_runtime(monkeypatch, created)
    with pytest.raises(DeviceUnavailable, match=r"only tflite-runtime 2\.14\.0 is installed, which crashes .* numpy 2.*hwprof\[tflite\]"):
        LiteRtCpuDevice().check()
    with pytest.raises(DeviceUnavailable, match="tflite-runtime"):
        LiteRtCpuDevice().measure(tflite_artifacts["fp32"], FAST_PROTOCOL)
    assert not created


def test_tflite_runtime_fallback_is_used_under_numpy1(monkeypatch):
    interpreter = _fake_tflite_runtime(monkeypatch, [])
    monkeypatch.setattr(np, "__version__", "1.26.4")
    assert interpreter_module() is interpreter
    assert litert_cpu.runtime_name(interpreter) == "tflite-runtime" and litert_cpu.runtime_version(interpreter) == "2.14.0"


def test_no_interpreter_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    with pytest.raises(DeviceUnavailable, match=r"ai-edge-litert is not installed .*pip install 'hwprof\[tflite\]'"):
        LiteRtCpuDevice().check()


def _cli(capsys, monkeypatch, *argv):
    from hwprof.cli.common import console

    monkeypatch.setattr(console, "width", 400)  # one table row per line
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_devices_lists_formats_precisions_and_usability(capsys, monkeypatch):
    code, out, _ = _cli(capsys, monkeypatch, "devices")
    row = next(line for line in out.splitlines() if "litert-cpu" in line)
    assert code == 0 and "tflite" in row and "fp32, int8" in row and "yes" in row and "ai-edge-litert" in row
    assert "onnx" in next(line for line in out.splitlines() if "ort-cpu" in line)


def test_devices_says_why_not_and_which_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    import devices.export.tflite_export as export_mod

    monkeypatch.setattr(export_mod, "find_spec", lambda name: None)
    code, out, _ = _cli(capsys, monkeypatch, "devices")
    row = next(line for line in out.splitlines() if "litert-cpu" in line)
    assert code == 0 and " no " in row and "pip install 'hwprof[tflite]'" in row and "export tflite (tflite)" in row


def test_measure_a_tflite_file(capsys, monkeypatch, tflite_artifacts):
    code, out, err = _cli(capsys, monkeypatch, "measure", tflite_artifacts["int8"].path, "--max-time-s", "0.5", "--target-ci", "0.1")
    assert code == 0, err
    assert "on litert-cpu (tflite, int8)" in out and "median ms" in out


def test_measure_refuses_an_unknown_suffix_and_a_truncated_file(capsys, monkeypatch, tmp_path, tflite_artifacts):
    other = tmp_path / "model.pb"
    other.write_bytes(b"x")
    code, _, err = _cli(capsys, monkeypatch, "measure", str(other))
    assert code == 1 and "cannot tell the model format" in err and "Traceback" not in err
    data = open(tflite_artifacts["fp32"].path, "rb").read()
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(data[: len(data) // 3])
    code, _, err = _cli(capsys, monkeypatch, "measure", str(truncated))
    assert code == 1 and "cut.tflite is not a valid TFLite model" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, monkeypatch, "measure", tflite_artifacts["fp32"].path, "--device", "ort-cpu")
    assert code == 1 and "runs onnx, not 'tflite'" in err


@pytest.mark.slow
def test_profile_fbnet_int8_on_litert_cpu(tmp_path):
    """The library path of `hwprof profile --device litert-cpu --precision int8 --space fbnet`: real conversion, stored as int8."""
    from hwprof import registry
    from hwprof.profiling import Profiler
    from hwprof.store import Store

    space = registry.get_space("fbnet")
    archs = space.sample(2, np.random.default_rng(0))
    store = Store(tmp_path / "h.db")
    profiler = Profiler(LiteRtCpuDevice(), space, store, protocol=FAST_PROTOCOL, drift_every=0, calibrate=False, precision="int8")
    try:
        summary = profiler.profile(archs)
    finally:
        profiler.close()
    rows = Store(tmp_path / "h.db").measurements(device="litert-cpu")
    assert summary.n_measured == 2 and len(rows) == 2 and {r.precision for r in rows} == {"int8"}
