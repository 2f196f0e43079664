import json

import onnx
import pytest

from devices.export import OnnxExporter, OnnxInt8Exporter, export_onnx, load_onnx_artifact
from hwprof import registry
from hwprof.artifacts import ArtifactCache, exporter_for, get_exporter, sha256_file
from hwprof.errors import ConfigError, ExportError
from hwprof.types import Architecture, InputSpec


def test_export_is_valid_static_onnx(tmp_path, tiny_model):
    out = tmp_path / "m.onnx"
    export_onnx(tiny_model, (1, 3, 16, 16), out)
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 16, 16]
    assert model.graph.input[0].name == "input"


def test_export_failure_is_export_error(tmp_path):
    import torch

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom inside forward")

    with pytest.raises(ExportError, match="export failed"):
        export_onnx(Broken(), (1, 3, 8, 8), tmp_path / "b.onnx")


def test_onnx_exporter_is_registered_by_format():
    assert "onnx" in registry.names("exporter")
    exporter = exporter_for(("onnx",))
    assert isinstance(exporter, OnnxExporter) and exporter.format == "onnx"
    assert get_exporter("onnx", opset=13).config()["opset"] == 13
    with pytest.raises(ConfigError, match="no registered exporter writes tflite"):
        exporter_for(("tflite",))
    assert isinstance(exporter_for(("onnx",), "int8"), OnnxInt8Exporter)
    with pytest.raises(ConfigError, match="no registered exporter writes pt2 at precision 'int8'"):
        exporter_for(("pt2",), "int8")
    with pytest.raises(ConfigError, match="precision must be one of"):
        exporter_for(("onnx",), "fp8")


def test_cache_reuses_and_records_sha(tmp_path, tiny_model):
    cache = ArtifactCache(tmp_path / "cache")
    builds = []

    def build():
        builds.append(1)
        return tiny_model

    arch = Architecture("x", "a")
    inputs = (InputSpec("input", (1, 3, 16, 16)),)
    a = cache.get_or_export(arch, build, inputs, OnnxExporter())
    b = cache.get_or_export(arch, build, inputs, OnnxExporter())
    assert len(builds) == 1, "second call must reuse the cached file"
    assert a == b and a.format == "onnx" and a.precision == "fp32"
    assert a.sha256 == sha256_file(a.path)
    meta = json.loads((tmp_path / "cache" / "onnx" / (a.exporter["key"] + ".json")).read_text())
    assert meta["sha256"] == a.sha256 and meta["arch"] == {"space": "x", "spec": "a"} and meta["arch_id"] == arch.arch_id
    # a different input shape, or another exporter configuration, is a different artifact
    c = cache.get_or_export(arch, build, (InputSpec("input", (1, 3, 8, 8)),), OnnxExporter())
    d = cache.get_or_export(arch, build, inputs, OnnxExporter(opset=13))
    assert len({a.path, c.path, d.path}) == 3 and len(builds) == 3


def test_cache_rebuilds_corrupted_entry(tmp_path, tiny_model):
    cache = ArtifactCache(tmp_path / "cache")
    arch, inputs = Architecture("x", "a"), (InputSpec("input", (1, 3, 16, 16)),)
    a = cache.get_or_export(arch, lambda: tiny_model, inputs, OnnxExporter())
    with open(a.path, "ab") as f:
        f.write(b"garbage")
    b = cache.get_or_export(arch, lambda: tiny_model, inputs, OnnxExporter())
    assert b.sha256 == a.sha256 == sha256_file(b.path)


def test_load_onnx_artifact(tmp_path, tiny_model):
    out = tmp_path / "m.onnx"
    export_onnx(tiny_model, (1, 3, 16, 16), out)
    art = load_onnx_artifact(out)
    assert art.inputs[0].shape == (1, 3, 16, 16) and art.inputs[0].dtype == "float32"
    assert art.sha256 == sha256_file(out)


def test_load_onnx_artifact_rejects_corrupt_and_missing(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(ExportError, match="not a valid ONNX model"):
        load_onnx_artifact(bad)
    with pytest.raises(ExportError, match="no such model file"):
        load_onnx_artifact(tmp_path / "missing.onnx")


def test_load_onnx_artifact_rejects_dynamic_shapes(tmp_path, tiny_model):
    import torch

    out = tmp_path / "dyn.onnx"
    torch.onnx.export(tiny_model, (torch.zeros(1, 3, 16, 16),), str(out), input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    with pytest.raises(ExportError, match="dynamic dimension"):
        load_onnx_artifact(out)


def test_onnx_exporter_passes_the_conformance_check(tmp_path):
    from hwprof.testing import check_exporter

    check_exporter(OnnxExporter, tmp_path)
