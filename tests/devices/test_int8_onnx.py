"""ONNX int8 (static quantization by onnxruntime) and the numerics check of every ONNX export."""

import os
import tempfile

import numpy as np
import onnx
import pytest

from devices.export.calibration import FP32_TOLERANCE
from devices.export.onnx_export import OnnxExporter, OnnxInt8Exporter, export_onnx
from devices.ort_cpu import OrtCpuDevice
from hwprof.artifacts import ArtifactCache, exporter_for
from hwprof.cli.main import main
from hwprof.errors import ConfigError, ExportError
from hwprof.testing import FAST_PROTOCOL, check_device, check_exporter
from hwprof.types import Architecture, InputSpec

INPUTS = (InputSpec("input", (1, 3, 16, 16)),)


@pytest.fixture
def int8_artifact(tmp_path, tiny_model):
    return ArtifactCache(tmp_path / "cache").get_or_export(
        Architecture("x", "tiny"), lambda: tiny_model, INPUTS, OnnxInt8Exporter(), "int8"
    )


def test_int8_export_is_a_quantized_model_with_its_numerics_report(int8_artifact):
    model = onnx.load(int8_artifact.path)
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, f"not a QDQ model: {sorted(ops)}"
    int8_weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert int8_weights, "the conv weights must be stored as int8"
    assert int8_artifact.precision == "int8" and int8_artifact.exporter["quant_format"] == "qdq"
    report = int8_artifact.exporter["numerics"]
    assert report["precision"] == "int8" and report["inputs_checked"] == 8
    assert 0.0 <= report["top1_agreement"] <= 1.0 and report["max_abs_diff"] > 0, "int8 changes the numbers, by design"
    assert report["fp32_max_abs_diff"] <= FP32_TOLERANCE, "the fp32 export it was quantized from is checked too"


def test_int8_export_leaves_no_intermediate_file_behind(tmp_path, tiny_model, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    cache = ArtifactCache(tmp_path / "cache")
    artifact = cache.get_or_export(Architecture("x", "tiny"), lambda: tiny_model, INPUTS, OnnxInt8Exporter(), "int8")
    key = artifact.exporter["key"]
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir()) == [f"{key}.json", f"{key}.onnx"]
    assert list(work.iterdir()) == [] and list(scratch.iterdir()) == [], "fp32 and pre-processed files must be removed"


def test_failed_quantization_is_one_export_error_and_leaves_the_cache_clean(tmp_path, tiny_model, monkeypatch):
    import onnxruntime.quantization

    def broken(*args, **kwargs):
        raise RuntimeError("calibration exploded\nsecond line")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", broken)
    with pytest.raises(ExportError, match="int8 quantization failed: RuntimeError: calibration exploded$"):
        ArtifactCache(tmp_path / "cache").get_or_export(
            Architecture("x", "tiny"), lambda: tiny_model, INPUTS, OnnxInt8Exporter(), "int8"
        )
    assert list((tmp_path / "cache" / "onnx").iterdir()) == []


def test_ort_cpu_measures_an_int8_artifact(int8_artifact, tmp_path):
    """The real measurement of an int8 model in the default test run (conformance included)."""
    m = check_device(OrtCpuDevice, int8_artifact, tmp_path)
    assert m.artifact_sha256 == int8_artifact.sha256 and m.stats.median_ms > 0


def test_int8_exporter_passes_the_conformance_check(tmp_path):
    check_exporter(OnnxInt8Exporter, tmp_path)


def test_precision_picks_the_exporter_and_fp32_keys_ignore_quantizer_options(tmp_path, tiny_model):
    assert type(exporter_for(("onnx",), "fp32")) is OnnxExporter
    assert type(exporter_for(("onnx",), "int8")) is OnnxInt8Exporter
    assert set(OnnxExporter().config()) == {"exporter", "opset", "torch"}, "an fp32 key must not move with the quantizer"
    cache = ArtifactCache(tmp_path)
    arch = Architecture("x", "tiny")
    keys = {
        cache.key(arch, INPUTS, OnnxInt8Exporter(), "int8", 0),
        cache.key(arch, INPUTS, OnnxInt8Exporter(per_channel=False), "int8", 0),
        cache.key(arch, INPUTS, OnnxInt8Exporter(activation_type="uint8"), "int8", 0),
        cache.key(arch, INPUTS, OnnxInt8Exporter(preprocess=False), "int8", 0),
        cache.key(arch, INPUTS, OnnxExporter(), "fp32", 0),
    }
    assert len(keys) == 5, "every quantization option decides the bytes, so it is part of the key"


def test_int8_options_are_validated():
    with pytest.raises(ConfigError, match="activation_type must be one of int8, uint8, got 'int4'"):
        OnnxInt8Exporter(activation_type="int4")
    with pytest.raises(ConfigError, match="calibrate_method must be one of"):
        OnnxInt8Exporter(calibrate_method="guess")
    with pytest.raises(ConfigError, match="writes onnx in int8, not 'fp32'"):
        OnnxInt8Exporter().check_precision("fp32")


def test_fp32_export_that_disagrees_with_torch_is_refused(tmp_path):
    """The export-time numerics check: a file computing something else than the module never enters the cache."""
    import torch

    class CountsCalls(torch.nn.Module):  # the trace bakes in the first call's factor; torch later multiplies by more
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.flatten(1) * float(self.calls)

    with pytest.raises(ExportError, match=r"outputs differ from the torch model by up to .* \(fp32 tolerance 0.0001 x output scale"):
        ArtifactCache(tmp_path / "cache").get_or_export(
            Architecture("x", "counts"), CountsCalls, INPUTS, OnnxExporter(), "fp32"
        )
    assert not [p for p in (tmp_path / "cache" / "onnx").iterdir() if p.suffix == ".onnx"]


def test_fp32_export_records_its_numerics(tmp_path, tiny_model):
    artifact = ArtifactCache(tmp_path).get_or_export(Architecture("x", "tiny"), lambda: tiny_model, INPUTS, OnnxExporter())
    report = artifact.exporter["numerics"]
    assert report["precision"] == "fp32" and report["max_abs_diff"] <= FP32_TOLERANCE and report["top1_agreement"] == 1.0


def test_unsupported_operator_is_named(tmp_path):
    import torch

    class Spectrum(torch.nn.Module):
        def forward(self, x):
            return torch.fft.rfft2(x).abs()

    with pytest.raises(ExportError, match="aten::fft_rfft2"):
        export_onnx(Spectrum(), (1, 3, 8, 8), tmp_path / "s.onnx")


def test_truncated_int8_file_is_a_clean_model_run_error(int8_artifact, tmp_path):
    import dataclasses

    from hwprof.errors import ModelRunError

    data = open(int8_artifact.path, "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelRunError, match="cut.onnx"):
        OrtCpuDevice().measure(dataclasses.replace(int8_artifact, path=str(cut)), FAST_PROTOCOL)


def test_int8_agrees_with_fp32_on_most_inputs_of_a_real_network(tmp_path):
    """Quantization that broke the network (e.g. a wrong scale) would leave top-1 agreement near chance (1/10)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).eval()
    artifact = ArtifactCache(tmp_path).get_or_export(Architecture("x", "net"), lambda: net, INPUTS, OnnxInt8Exporter(), "int8")
    assert artifact.exporter["numerics"]["top1_agreement"] >= 0.75
    assert np.isfinite(artifact.exporter["numerics"]["max_abs_diff"])
    assert os.path.getsize(artifact.path) > 0


FAST_CLI = ["--min-runs", "3", "--max-runs", "10", "--max-time-s", "0.3", "--rounds", "1", "--no-calibrate", "--drift-every", "0"]


@pytest.mark.slow
def test_cli_profiles_nb201_in_int8_on_ort_cpu(tmp_path, capsys):
    db = tmp_path / "h.db"
    code = main(["profile", "--device", "ort-cpu", "--space", "nb201", "--indices", "3", "--precision", "int8", "--db", str(db), *FAST_CLI])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "architectures (int8) on" in out
    (model,) = (tmp_path / ".hwprof-cache" / "onnx").glob("*.onnx")
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(str(model)).graph.node}


def summary_row(out):
    """(measured, skipped) from the summary table `hwprof profile` prints."""
    (row,) = [line for line in out.splitlines() if line.startswith("│")]
    cells = [c.strip() for c in row.strip("│").split("│")]
    return int(cells[0]), int(cells[1])


@pytest.mark.slow
def test_int8_and_fp32_of_one_network_are_two_measurements(tmp_path, capsys):
    """Precision is part of a measurement's identity: an fp32 run after an int8 one measures, it does not skip."""
    db = tmp_path / "h.db"
    rows = []
    for precision in ("int8", "fp32"):
        code = main(["profile", "--space", "nb201", "--indices", "3", "--precision", precision, "--db", str(db), *FAST_CLI])
        out, err = capsys.readouterr()
        assert code == 0, err
        rows.append(summary_row(out))
    assert rows == [(1, 0), (1, 0)]
    from hwprof.store import Store

    store = Store(db)
    try:
        records = store.measurements(device="ort-cpu")
    finally:
        store.close()
    assert sorted(r.precision for r in records) == ["fp32", "int8"]
    assert len({r.settings_hash for r in records}) == 2


def test_a_user_supplied_int8_file_is_described_as_int8(int8_artifact, tmp_path, tiny_model):
    from devices.export.onnx_export import load_onnx_artifact

    assert load_onnx_artifact(int8_artifact.path).precision == "int8"
    export_onnx(tiny_model, (1, 3, 16, 16), tmp_path / "fp32.onnx")
    assert load_onnx_artifact(tmp_path / "fp32.onnx").precision == "fp32"
