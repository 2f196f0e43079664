import json

import onnx
import pytest

from devices.export import ArtifactCache, export_onnx, load_onnx_artifact
from devices.export.onnx_export import sha256_file
from hwprof.errors import ExportError


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


def test_cache_reuses_and_records_sha(tmp_path, tiny_model):
    cache = ArtifactCache(tmp_path / "cache")
    builds = []

    def build():
        builds.append(1)
        return tiny_model

    a = cache.get_or_export("arch1", {"space": "x", "spec": "a"}, build, (1, 3, 16, 16))
    b = cache.get_or_export("arch1", {"space": "x", "spec": "a"}, build, (1, 3, 16, 16))
    assert len(builds) == 1, "second call must reuse the cached file"
    assert a == b
    assert a.sha256 == sha256_file(a.path)
    meta = json.loads((tmp_path / "cache" / "onnx" / (a.exporter["key"] + ".json")).read_text())
    assert meta["sha256"] == a.sha256
    # a different input shape is a different artifact
    c = cache.get_or_export("arch1", {"space": "x", "spec": "a"}, build, (1, 3, 8, 8))
    assert c.path != a.path and len(builds) == 2


def test_cache_rebuilds_corrupted_entry(tmp_path, tiny_model):
    cache = ArtifactCache(tmp_path / "cache")
    a = cache.get_or_export("arch1", {"spec": "a"}, lambda: tiny_model, (1, 3, 16, 16))
    with open(a.path, "ab") as f:
        f.write(b"garbage")
    b = cache.get_or_export("arch1", {"spec": "a"}, lambda: tiny_model, (1, 3, 16, 16))
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
