"""The artifact cache: metadata names the architecture, a mismatch is an error, bad metadata is rebuilt."""

import json

import pytest

from hwprof import registry
from hwprof.artifacts import ArtifactCache, Exporter, exporter_for, sha256_file
from hwprof.errors import ConfigError, ExportError
from hwprof.types import Architecture, InputSpec
from tests.hwprof.plugins import TOY_INPUTS, ToyExporter, toy_module


@pytest.fixture
def toy_exporter():
    registry.register("exporter", "toy-json", ToyExporter)
    yield ToyExporter()
    registry.unregister("exporter", "toy-json")


def _entry(cache_root, artifact):
    folder = cache_root / artifact.format
    return folder / (artifact.exporter["key"] + ToyExporter.suffix), folder / (artifact.exporter["key"] + ".json")


def test_toy_exporter_found_by_format_through_the_registry(toy_exporter):
    assert isinstance(exporter_for(("coreml", "toyjson")), ToyExporter)
    assert isinstance(exporter_for(("toyjson",), "int8"), ToyExporter)


def test_export_records_arch_and_precision(tmp_path, toy_exporter):
    cache = ArtifactCache(tmp_path)
    arch = Architecture("toy", "w8-d2")
    fp32 = cache.get_or_export(arch, lambda: toy_module(8), TOY_INPUTS, toy_exporter)
    int8 = cache.get_or_export(arch, lambda: toy_module(8), TOY_INPUTS, toy_exporter, precision="int8")
    assert fp32.path != int8.path, "precision is part of the artifact key"
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    _, meta_path = _entry(tmp_path, fp32)
    meta = json.loads(meta_path.read_text())
    assert meta["arch"] == {"space": "toy", "spec": "w8-d2"} and meta["precision"] == "fp32"
    with pytest.raises(ConfigError, match="not 'fp16'"):
        cache.get_or_export(arch, lambda: toy_module(8), TOY_INPUTS, toy_exporter, precision="fp16")


def test_swapped_entries_are_an_error_not_a_substitute(tmp_path, toy_exporter):
    cache = ArtifactCache(tmp_path)
    a, b = Architecture("toy", "w4-d1"), Architecture("toy", "w16-d2")
    art_a = cache.get_or_export(a, lambda: toy_module(4), TOY_INPUTS, toy_exporter)
    art_b = cache.get_or_export(b, lambda: toy_module(16), TOY_INPUTS, toy_exporter)
    (model_a, meta_a), (model_b, meta_b) = _entry(tmp_path, art_a), _entry(tmp_path, art_b)
    for x, y in ((model_a, model_b), (meta_a, meta_b)):  # swap both files of the two entries
        tmp = x.with_suffix(".swap")
        x.rename(tmp)
        y.rename(x)
        tmp.rename(y)
    with pytest.raises(ExportError, match=r"built from toy:w16-d2, not the requested toy:w4-d1"):
        cache.get_or_export(a, lambda: toy_module(4), TOY_INPUTS, toy_exporter)


@pytest.mark.parametrize(
    "meta_text",
    ["[1, 2, 3]", '"just a string"', "{}", '{"sha256": 5}', "not json at all", '{"arch": "w4-d1"}'],
)
def test_foreign_metadata_is_re_exported(tmp_path, toy_exporter, meta_text, caplog):
    cache = ArtifactCache(tmp_path)
    arch = Architecture("toy", "w4-d1")
    first = cache.get_or_export(arch, lambda: toy_module(4), TOY_INPUTS, toy_exporter)
    _, meta_path = _entry(tmp_path, first)
    meta_path.write_text(meta_text)
    again = cache.get_or_export(arch, lambda: toy_module(4), TOY_INPUTS, toy_exporter)
    assert again == first and json.loads(meta_path.read_text())["arch_id"] == arch.arch_id
    assert "re-exporting" in caplog.text


def test_failed_export_leaves_nothing_in_the_cache(tmp_path):
    class Failing(ToyExporter):
        def export(self, module, inputs, out_path, precision):
            out_path.write_text("half written")
            raise ExportError("conversion failed")

    with pytest.raises(ExportError, match="conversion failed"):
        ArtifactCache(tmp_path).get_or_export(Architecture("toy", "w4-d1"), lambda: toy_module(4), TOY_INPUTS, Failing())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_exporter_is_abstract():
    with pytest.raises(TypeError):
        Exporter()  # type: ignore[abstract]


def test_sha_checked_on_reuse(tmp_path, toy_exporter):
    cache = ArtifactCache(tmp_path)
    arch = Architecture("toy", "w4-d1")
    first = cache.get_or_export(arch, lambda: toy_module(4), TOY_INPUTS, toy_exporter)
    model_path, _ = _entry(tmp_path, first)
    model_path.write_text('{"edited": true}')
    again = cache.get_or_export(arch, lambda: toy_module(4), TOY_INPUTS, toy_exporter)
    assert again.sha256 == first.sha256 == sha256_file(model_path)
    assert InputSpec("input", (1, 3, 8, 8)) == again.inputs[0]


def test_the_artifact_record_names_its_exporter_even_when_an_option_is_called_exporter(tmp_path):
    """The onnx exporter has an option `exporter` (legacy/dynamo): it must not overwrite the registered name."""
    import torch

    from hwprof.artifacts import export_module

    artifact = export_module(lambda: torch.nn.Linear(4, 2), (1, 4), tmp_path, "named")
    assert artifact.exporter["exporter"] == "onnx" and artifact.exporter["exporter_setting"] == "legacy"
