"""torch -> TFLite: conformance, full-integer int8, numerics at export, clear errors."""

import sys

import numpy as np
import pytest

from devices.export.calibration import FP32_TOLERANCE
from devices.export.tflite_export import TfliteExporter, conversion_error, load_tflite_artifact
from devices.litert_cpu import open_interpreter
from hwprof.artifacts import ArtifactCache, exporter_for
from hwprof.errors import ExportError
from hwprof.types import Architecture, InputSpec
from tests.devices.tflite_fixtures import tflite_artifacts_fixture  # noqa: F401 (the session fixture tflite_artifacts)

# What litert-torch 0.10 raised for torch.cumprod (recorded from a real conversion).
NO_LOWERING = (
    "Lowering not found: aten.cumprod.default\n\nWhile executing %cumprod : [num_users=1] = "
    "call_function[target=torch.ops.aten.cumprod.default](args = (%x, 1), kwargs = {})\nOriginal traceback:\n"
)


def test_exporter_conformance_and_numerics(tflite_artifacts):
    fp32, int8 = tflite_artifacts["fp32"], tflite_artifacts["int8"]
    assert fp32.format == int8.format == "tflite" and fp32.sha256 != int8.sha256
    assert fp32.exporter["numerics"]["max_abs_diff"] <= FP32_TOLERANCE
    report = int8.exporter["numerics"]
    assert report["precision"] == "int8" and 0.0 <= report["top1_agreement"] <= 1.0 and report["inputs_checked"] == 8
    assert fp32.exporter["converter"] == "litert-torch" and fp32.exporter["litert_torch"]


def test_int8_file_is_full_integer(tflite_artifacts):
    """Post-training full-integer quantization: int8 input and output tensors, not a float model with int8 weights."""
    interp = open_interpreter(tflite_artifacts["int8"].path, xnnpack=False)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert np.dtype(inp["dtype"]) == np.int8 and np.dtype(out["dtype"]) == np.int8 and inp["quantization"][0] > 0
    assert list(inp["shape"]) == [1, 3, 8, 8], "the NCHW input of the torch module is kept"
    assert load_tflite_artifact(tflite_artifacts["int8"].path).precision == "int8"
    assert load_tflite_artifact(tflite_artifacts["fp32"].path).precision == "fp32"


def test_registered_for_tflite_in_both_precisions():
    for precision in ("fp32", "int8"):
        assert isinstance(exporter_for(("tflite",), precision), TfliteExporter)


def test_unsupported_operator_is_named():
    err = conversion_error(RuntimeError(NO_LOWERING), "fp32")
    assert "operator aten.cumprod.default" in str(err) and "\n" not in str(err)
    generic = conversion_error(AssertionError("Number of input tokens (1) does not match output tokens (0)"), "int8")
    assert str(generic) == "torch -> TFLite (int8) conversion failed: AssertionError: Number of input tokens (1) does not match output tokens (0)"


@pytest.mark.slow
def test_unsupported_operator_is_named_by_a_real_conversion(tmp_path):
    import torch

    class Cumulative(torch.nn.Module):
        def forward(self, x):
            return torch.cumprod(x, 1)

    with pytest.raises(ExportError, match="cannot convert operator aten.cumprod"):
        ArtifactCache(tmp_path).get_or_export(Architecture("x", "cumprod"), Cumulative, (InputSpec("input", (1, 3, 8, 8)),), TfliteExporter())
    assert not [p for p in (tmp_path / "tflite").iterdir() if p.suffix == ".tflite" or p.name.endswith(".tmp")]


@pytest.mark.slow
def test_fp32_export_that_disagrees_with_torch_never_enters_the_cache(tmp_path):
    import torch

    class TracedDiffers(torch.nn.Module):  # the converter traces a graph that computes something else than eager torch
        def forward(self, x):
            return x.flatten(1) * (2.0 if torch.compiler.is_exporting() else 1.0)

    with pytest.raises(ExportError, match="outputs differ from the torch model"):
        ArtifactCache(tmp_path).get_or_export(Architecture("x", "traced"), TracedDiffers, (InputSpec("input", (1, 3, 8, 8)),), TfliteExporter())
    assert not list((tmp_path / "tflite").iterdir())


def test_missing_converter_names_the_extra(monkeypatch, tmp_path):
    import devices.export.tflite_export as mod

    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(ExportError, match=r"pip install 'hwprof\[tflite\]'"):
        mod.litert_torch_module()
    monkeypatch.setattr(mod, "find_spec", lambda name: None)
    with pytest.raises(ExportError, match=r"needs litert-torch and ai-edge-litert; pip install 'hwprof\[tflite\]'"):
        TfliteExporter().check()


def test_non_float_input_refused(tmp_path):
    with pytest.raises(ExportError, match="float32 inputs"):
        TfliteExporter().export(None, (InputSpec("ids", (1, 8), "int64"),), tmp_path / "m.tflite", "fp32")


def test_load_rejects_bad_files(tmp_path, tflite_artifacts):
    with pytest.raises(ExportError, match="no such model file"):
        load_tflite_artifact(tmp_path / "missing.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00not a model\xff" * 16)
    with pytest.raises(ExportError, match="not a TFLite model"):
        load_tflite_artifact(garbage)
    data = open(tflite_artifacts["fp32"].path, "rb").read()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="truncated.tflite is not a valid TFLite model"):
        load_tflite_artifact(truncated)
    loaded = load_tflite_artifact(tflite_artifacts["fp32"].path)
    assert loaded.sha256 == tflite_artifacts["fp32"].sha256 and loaded.inputs[0].shape == (1, 3, 8, 8)
