import os

import pytest

from hwprof.artifacts import export_module
from devices.ort_cpu import OrtCpuDevice, parse_affinity
from hwprof.errors import ConfigError, ModelRunError
from hwprof.testing import FAST_PROTOCOL, check_device


@pytest.fixture
def artifact(tmp_path, tiny_model):
    return export_module(lambda: tiny_model, (1, 3, 16, 16), tmp_path / "cache", "tiny")


def test_conformance(artifact, tmp_path):
    m = check_device(OrtCpuDevice, artifact, tmp_path)
    assert m.settings["intra_op_threads"] == 1 and m.settings["graph_optimization_level"] == "all"
    assert m.host["versions"]["onnxruntime"]


def test_settings_validation():
    with pytest.raises(ConfigError, match="graph_optimization_level"):
        OrtCpuDevice(graph_optimization_level="max")
    with pytest.raises(ConfigError, match="intra_op_threads"):
        OrtCpuDevice(intra_op_threads="many")
    with pytest.raises(ConfigError, match="execution_mode"):
        OrtCpuDevice(execution_mode="async")
    assert OrtCpuDevice(intra_op_threads=2).settings["intra_op_threads"] == 2


def test_parse_affinity():
    assert parse_affinity("0,2-3") == (0, 2, 3)
    assert parse_affinity(None) is None
    with pytest.raises(ConfigError):
        parse_affinity("a-b")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity needs Linux")
def test_affinity_applied_and_restored(artifact):
    before = os.sched_getaffinity(0)
    dev = OrtCpuDevice(cpu_affinity="0")
    seen = []
    with dev.measuring():
        handle = dev.prepare(artifact)
        seen.append(os.sched_getaffinity(0))
        handle.run()
        dev.release(handle)
        assert handle.state is None, "release must drop the session"
    assert seen[0] == {0}
    assert os.sched_getaffinity(0) == before
    assert OrtCpuDevice(cpu_affinity="0").check().settings["cpu_affinity"] == [0]


def test_unknown_core_rejected():
    with pytest.raises(ConfigError, match="not available"):
        OrtCpuDevice(cpu_affinity="4096")


def test_wrong_input_shape_is_model_run_error(artifact):
    import dataclasses

    from hwprof.types import InputSpec

    wrong = dataclasses.replace(artifact, inputs=(InputSpec("input", (1, 3, 9, 9)),))
    with pytest.raises(ModelRunError, match="failed to run"):
        OrtCpuDevice().measure(wrong, FAST_PROTOCOL)


def test_bigger_model_is_slower(tmp_path):
    """A real timing sanity check: 8x the channels of a conv stack must take longer."""
    import torch

    def net(c):
        torch.manual_seed(0)
        return torch.nn.Sequential(*[torch.nn.Conv2d(c if i else 3, c, 3, padding=1) for i in range(3)]).eval()

    small = export_module(lambda: net(8), (1, 3, 32, 32), tmp_path / "c", "s")
    big = export_module(lambda: net(64), (1, 3, 32, 32), tmp_path / "c", "b")
    dev = OrtCpuDevice()
    t_small = dev.measure(small, FAST_PROTOCOL).latency_ms
    t_big = dev.measure(big, FAST_PROTOCOL).latency_ms
    assert t_big > 3 * t_small


def test_measure_many_interleaves_real_sessions_and_restores_affinity(tmp_path):
    """Several sessions open at once, timed in rounds; pinning nests and is undone once at the end."""
    import dataclasses

    import torch

    def net(c):
        torch.manual_seed(0)
        return torch.nn.Sequential(*[torch.nn.Conv2d(c if i else 3, c, 3, padding=1) for i in range(3)]).eval()

    arts = [export_module(lambda c=c: net(c), (1, 3, 32, 32), tmp_path / "c", f"m{c}") for c in (8, 64, 8)]
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    dev = OrtCpuDevice(cpu_affinity="0") if before is not None else OrtCpuDevice()
    protocol = dataclasses.replace(FAST_PROTOCOL, rounds=3, round_min_s=0.0)
    small, big, small_again = dev.measure_many(arts, protocol)
    assert big.latency_ms > 3 * small.latency_ms
    assert all(m.stats.n_runs >= protocol.min_runs for m in (small, big, small_again))
    assert small.n_warmup >= 3 * protocol.min_warmup  # a warm-up on every visit
    assert [m.arch_id for m in (small, big, small_again)] == [a.arch_id for a in arts]
    assert arts[0].arch_id == arts[2].arch_id != arts[1].arch_id
    if before is not None:
        assert os.sched_getaffinity(0) == before


def test_measure_many_failing_model_releases_what_was_prepared(artifact, tmp_path, monkeypatch):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    broken = dataclasses_replace(artifact, path=str(bad))
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    dev = OrtCpuDevice(cpu_affinity="0") if before is not None else OrtCpuDevice()
    released = []
    real_release = dev.release
    monkeypatch.setattr(dev, "release", lambda handle: (released.append(handle.artifact), real_release(handle)))
    with pytest.raises(ModelRunError):
        dev.measure_many([artifact, broken], FAST_PROTOCOL)
    if before is not None:
        assert os.sched_getaffinity(0) == before
    assert released == [artifact], "the handle prepared before the failure must be released"


def test_settings_from_the_cli_parser_are_coerced_or_refused():
    """`--set cpu_affinity=0` arrives as int 0, `0,2-3` as a tuple; `allow_spinning=maybe` is not a bool."""
    assert OrtCpuDevice(cpu_affinity=0).settings["cpu_affinity"] == [0]
    assert parse_affinity((0, "1-2")) == (0, 1, 2)
    assert OrtCpuDevice(allow_spinning="no").settings["allow_spinning"] is False
    with pytest.raises(ConfigError, match="allow_spinning must be true or false, got 'maybe'"):
        OrtCpuDevice(allow_spinning="maybe")
    with pytest.raises(ConfigError, match="cpu_affinity"):
        parse_affinity((True,))


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
