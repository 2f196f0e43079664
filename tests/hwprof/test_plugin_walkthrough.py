"""docs/plugins.md, executed: a new device and a new exporter, registered, checked, and used by the profiler."""

import sqlite3

import pytest

from hwprof import registry
from hwprof.artifacts import ArtifactCache, exporter_for
from hwprof.profiling import Profiler
from hwprof.store import Store
from hwprof.testing import FAST_PROTOCOL, check_device, check_exporter
from hwprof.types import Architecture
from hwprof.worker import measure
from tests.hwprof.plugins import TOY_INPUTS, ToyDevice, ToyExporter, toy_module


def test_the_toy_plugins_pass_the_conformance_checks(toy_plugins, tmp_path):
    check_exporter(ToyExporter, tmp_path)
    artifact = ArtifactCache(tmp_path / "cache").get_or_export(Architecture("toy", "w8-d1"), lambda: toy_module(8), TOY_INPUTS, ToyExporter())
    m = check_device(ToyDevice, artifact, tmp_path)
    assert m.device == "toy-cpu" and m.stats.n_runs >= FAST_PROTOCOL.min_runs


def test_the_toy_device_is_measured_through_the_worker_by_name(toy_plugins, tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    small = cache.get_or_export(Architecture("toy", "w4-d1"), lambda: toy_module(4), TOY_INPUTS, ToyExporter())
    big = cache.get_or_export(Architecture("toy", "w16-d1"), lambda: toy_module(16), TOY_INPUTS, ToyExporter())
    a, b = measure("toy-cpu", [small, big], FAST_PROTOCOL, device_settings={"scale": 2})
    assert a.settings == {"scale": 2} and b.arch_id == big.arch_id
    assert b.latency_ms > 2 * a.latency_ms  # 4x the parameters


def test_the_profiler_picks_the_toy_exporter_for_the_toy_device(toy_plugins, tmp_path):
    space = registry.get_space("toy")
    profiler = Profiler(registry.get_device("toy-cpu"), space, Store(tmp_path / "h.db"), protocol=FAST_PROTOCOL, drift_every=0)
    try:
        assert isinstance(profiler.exporter, ToyExporter)
        summary = profiler.profile([space.parse("w4-d1"), space.parse("w16-d2")])
    finally:
        profiler.close()
    assert summary.n_measured == 2
    models = [p for p in (tmp_path / ".hwprof-cache" / "toyjson").iterdir() if p.name.endswith(".toy.json")]
    assert len(models) == 2
    with sqlite3.connect(tmp_path / "h.db") as con:
        rows = con.execute("SELECT a.format, m.median_ms FROM measurements m JOIN artifacts a ON a.sha256 = m.artifact_sha256").fetchall()
    assert [fmt for fmt, _ in rows] == ["toyjson", "toyjson"] and all(ms > 0 for _, ms in rows)


def test_a_device_without_an_exporter_for_its_formats_is_refused(toy_plugins):
    from hwprof.errors import ConfigError

    class OddDevice(ToyDevice):
        name = "odd"
        supported_formats = ("odd-format",)

    with pytest.raises(ConfigError, match="no registered exporter writes odd-format"):
        exporter_for(OddDevice.supported_formats)
