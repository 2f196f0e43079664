"""The torch-cpu adapter and the torch-export (.pt2) exporter it measures."""

import dataclasses

import pytest

from devices.export.torch_export import TorchExportExporter, load_pt2
from devices.torch_cpu import TorchCpuDevice
from hwprof.artifacts import ArtifactCache, exporter_for
from hwprof.cli.main import main
from hwprof.errors import ConfigError, DeviceUnavailable, ExportError, ModelRunError
from hwprof.testing import FAST_PROTOCOL, check_device, check_exporter
from hwprof.types import Architecture, InputSpec

INPUTS = (InputSpec("input", (1, 3, 16, 16)),)


@pytest.fixture
def pt2_artifact(tmp_path, tiny_model):
    return ArtifactCache(tmp_path / "cache").get_or_export(Architecture("x", "tiny"), lambda: tiny_model, INPUTS, TorchExportExporter())


def test_conformance_eager(pt2_artifact, tmp_path):
    m = check_device(TorchCpuDevice, pt2_artifact, tmp_path)
    assert m.settings["mode"] == "eager" and m.stats.median_ms > 0


def test_exporter_conformance(tmp_path):
    check_exporter(TorchExportExporter, tmp_path)


def test_pt2_is_deterministic_and_checked_against_torch(tmp_path, tiny_model, pt2_artifact):
    again = ArtifactCache(tmp_path / "other").get_or_export(Architecture("x", "tiny"), lambda: tiny_model, INPUTS, TorchExportExporter())
    assert again.sha256 == pt2_artifact.sha256, "the same network must give the same bytes (the sha256 pins what is measured)"
    report = pt2_artifact.exporter["numerics"]
    assert report["precision"] == "fp32" and report["max_abs_diff"] <= 1e-4 and report["inputs_checked"] == 8
    assert exporter_for(("pt2",)).name == "torch-export"


def test_device_info_records_torch_and_mode(monkeypatch):
    import torch

    info = TorchCpuDevice().check()
    assert (info.runtime, info.runtime_version) == ("torch", torch.__version__)
    assert info.extra["mode"] == "eager" and info.extra["inter_op_threads_effective"] == torch.get_num_interop_threads()


def test_threads_applied_while_measuring_and_restored(pt2_artifact, monkeypatch):
    import torch

    seen = []
    original = TorchCpuDevice.prepare

    def spy(self, artifact):
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return original(self, artifact)

    monkeypatch.setattr(TorchCpuDevice, "prepare", spy)
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 1
    TorchCpuDevice(intra_op_threads=wanted).measure(pt2_artifact, FAST_PROTOCOL)
    assert seen == [(wanted, True)] and torch.get_num_threads() == before


def test_inter_op_threads_fixed_by_torch_are_refused_with_the_reason(monkeypatch):
    import torch

    def refuse(n):
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(torch, "get_num_interop_threads", lambda: 3)
    monkeypatch.setattr(torch, "set_num_interop_threads", refuse)
    with pytest.raises(DeviceUnavailable, match="inter_op_threads=1 cannot be applied.*use inter_op_threads=3"):
        TorchCpuDevice(inter_op_threads=1).check()
    assert TorchCpuDevice(inter_op_threads=3).check().extra["inter_op_threads_effective"] == 3


def test_settings_validation():
    with pytest.raises(ConfigError, match="mode must be one of eager, compile, got 'jit'"):
        TorchCpuDevice(mode="jit")
    with pytest.raises(ConfigError, match="intra_op_threads must be >= 0"):
        TorchCpuDevice(intra_op_threads=-1)
    assert TorchCpuDevice(intra_op_threads="2").settings["intra_op_threads"] == 2


def test_int8_is_refused_before_anything_runs(pt2_artifact, monkeypatch):
    def must_not_load(self, artifact):
        raise AssertionError("prepare() must not be reached for a precision the device does not measure")

    monkeypatch.setattr(TorchCpuDevice, "prepare", must_not_load)
    with pytest.raises(ConfigError, match="device 'torch-cpu' measures fp32 models, not 'int8'"):
        TorchCpuDevice().measure(dataclasses.replace(pt2_artifact, precision="int8"), FAST_PROTOCOL)
    with pytest.raises(ConfigError, match="no registered exporter writes pt2 at precision 'int8'"):
        exporter_for(("pt2",), "int8")


def test_cli_refuses_int8_on_torch_cpu_in_one_line_and_creates_nothing(tmp_path, capsys):
    db = tmp_path / "h.db"
    code = main(["profile", "--device", "torch-cpu", "--precision", "int8", "-n", "1", "--db", str(db)])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err
    assert "measures fp32 models, not 'int8'" in lines[0]
    assert not db.exists() and not (tmp_path / ".hwprof-cache").exists()


def test_cli_refuses_an_unknown_precision(tmp_path, capsys):
    code = main(["profile", "--precision", "fp16", "-n", "1", "--db", str(tmp_path / "h.db")])
    assert code == 1 and "measures fp32, int8 models, not 'fp16'" in capsys.readouterr().err


def test_truncated_pt2_is_a_clean_model_run_error(pt2_artifact, tmp_path):
    data = open(pt2_artifact.path, "rb").read()
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelRunError, match=r"torch cannot load .*cut\.pt2"):
        TorchCpuDevice().measure(dataclasses.replace(pt2_artifact, path=str(cut)), FAST_PROTOCOL)


def test_untraceable_network_is_one_export_error(tmp_path):
    import torch

    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ExportError, match="torch.export of DataDependent failed: .*data-dependent"):
        TorchExportExporter().export(DataDependent(), INPUTS, tmp_path / "d.pt2", "fp32")


def test_compile_mode_without_a_compiler_is_unavailable(monkeypatch):
    import shutil

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DeviceUnavailable, match="mode=compile needs a C\\+\\+ compiler"):
        TorchCpuDevice(mode="compile").check()


def test_loaded_program_runs_the_exported_graph(pt2_artifact, tiny_model):
    import torch

    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(load_pt2(pt2_artifact.path).module()(x), tiny_model(x), atol=1e-5)


@pytest.mark.slow
def test_compile_mode_measures_a_compiled_graph(pt2_artifact, tmp_path):
    """torch.compile (Inductor) compiles C++ when the model is loaded: tens of seconds on a loaded 2-core box."""
    m = TorchCpuDevice(mode="compile").measure(pt2_artifact, FAST_PROTOCOL)
    assert m.settings["mode"] == "compile" and m.stats.median_ms > 0


def test_a_remote_device_refuses_the_precisions_its_adapter_lacks():
    from hwprof.remote import RemoteDevice, SshTarget

    with pytest.raises(ConfigError, match="device 'board' measures fp32 models, not 'int8'"):
        RemoteDevice(SshTarget(name="board", host="board.local", device="torch-cpu")).check_precision("int8")
    RemoteDevice(SshTarget(name="board", host="board.local", device="ort-cpu")).check_precision("int8")
