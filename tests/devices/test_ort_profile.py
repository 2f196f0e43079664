import json
from pathlib import Path

import onnx
import pytest

from hwprof.artifacts import export_module
from devices.ort_cpu import OrtCpuDevice
from devices.ort_profile import NodeProfile, parse_profile, profile_nodes, summarize_profile
from hwprof.errors import ConfigError, DataError

DATA = Path(__file__).resolve().parents[1] / "data"
TRACE = DATA / "ort_profile_tiny.json"  # recorded by tests/data/record_ort_profile.py

# Execution order and per-run durations (µs) of the two measured runs in the recorded trace.
EXPECTED = [
    ("/stem/stem.2/Relu_output_0_nchwc", "Conv", (31.0, 17.0)),
    ("/dw/dw.2/Relu_output_0_nchwc", "Conv", (11.0, 10.0)),
    ("/pw/pw.0/Conv_output_0_nchwc", "Conv", (10.0, 9.0)),
    ("ReorderOutput", "ReorderOutput", (8.0, 5.0)),
    ("/pool/MaxPool", "MaxPool", (8.0, 6.0)),
    ("/GlobalAveragePool", "GlobalAveragePool", (5.0, 4.0)),
    ("/Flatten", "Flatten", (4.0, 4.0)),
    ("/head/Gemm", "Gemm", (7.0, 5.0)),
]


def _event(name, ts, dur, cat="Node", op="Relu"):
    args = {"op_name": op, "provider": "CPUExecutionProvider", "input_type_shape": [{"float": [1, 4]}], "output_type_shape": [{"float": [1, 4]}]}
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "ph": "X", "pid": 1, "tid": 1, "args": args if cat == "Node" else {}}


def test_recorded_trace_parsed_per_node_and_per_run():
    p = parse_profile(TRACE.read_text(), skip_runs=1)
    assert [(n.name, n.op_type, n.samples_us) for n in p.nodes] == EXPECTED
    assert p.run_total_us == (138.0, 104.0)
    assert p.node_sum_us == (84.0, 60.0)
    assert p.n_runs == 2 and p.n_skipped_runs == 1
    stem = p.nodes[0]
    assert stem.median_ms == pytest.approx(0.024)
    assert stem.provider == "CPUExecutionProvider"
    assert stem.input_shapes[0] == (1, 3, 16, 16) and stem.output_shapes == ((1, 16, 16, 16),)
    # the residual Add was folded into the pointwise conv: a fourth (Sum) input
    assert p.nodes[2].input_shapes[3] == (1, 16, 16, 16)
    assert p.nodes[3].output_shapes == ((1, 12, 16, 16),)  # channel padding removed
    assert p.run_median_ms == pytest.approx(0.121)
    assert p.node_sum_median_ms == pytest.approx(0.072)
    assert p.overhead_median_ms == pytest.approx(0.049)  # median of (54, 44) µs
    assert p.node_latency_ms()["/head/Gemm"] == pytest.approx(0.006)
    s = summarize_profile(p)
    assert s["overhead_fraction"] == pytest.approx((0.121 - 0.072) / 0.121)
    assert s["n_nodes"] == 8


def test_warmup_runs_are_excluded():
    all_runs = parse_profile(TRACE.read_text())
    assert all_runs.n_runs == 3
    assert all_runs.nodes[0].samples_us == (140.0, 31.0, 17.0)
    with pytest.raises(DataError, match="3 'model_run'"):
        parse_profile(TRACE.read_text(), skip_runs=3)
    with pytest.raises(ConfigError):
        parse_profile(TRACE.read_text(), skip_runs=-1)


def test_repeated_node_summed_and_outside_events_ignored():
    events = [
        _event("model_run", 100, 50, cat="Session"),
        _event("early_kernel_time", 10, 5),  # before any run
        _event("a_kernel_time", 105, 3),
        _event("a_fence_before", 104, 1),  # not a kernel event
        _event("b_kernel_time", 110, 7, op="Add"),
        _event("a_kernel_time", 120, 4),  # same node again in the same run
        _event("late_kernel_time", 400, 9),  # after the run
    ]
    p = parse_profile(json.dumps(events))
    assert [(n.name, n.op_type, n.samples_us) for n in p.nodes] == [("a", "Relu", (7.0,)), ("b", "Add", (7.0,))]
    assert p.node_sum_us == (14.0,)


def test_malformed_traces_rejected():
    with pytest.raises(DataError, match="not valid JSON"):
        parse_profile("{not json")
    with pytest.raises(DataError, match="JSON list"):
        parse_profile('{"traceEvents": []}')
    with pytest.raises(DataError, match="model_run"):
        parse_profile(json.dumps([_event("a_kernel_time", 1, 1)]))
    with pytest.raises(DataError, match="no node events"):
        parse_profile(json.dumps([_event("model_run", 0, 10, cat="Session")]))


def test_profile_json_round_trip():
    p = parse_profile(TRACE.read_text(), skip_runs=1)
    again = NodeProfile.from_json(json.loads(json.dumps(p.to_json())))
    assert again == p
    bad = p.to_json() | {"format_version": 99}
    with pytest.raises(DataError, match="99"):
        NodeProfile.from_json(bad)


@pytest.fixture
def tiny_artifact(tmp_path, tiny_model):
    return export_module(lambda: tiny_model, (1, 3, 16, 16), tmp_path / "cache", "tiny")


def test_profile_nodes_live(tiny_artifact, tmp_path):
    r = profile_nodes(tiny_artifact, tmp_path / "prof", n_runs=3, n_warmup=1)
    p = r.profile
    assert p.n_runs == 3 and p.n_skipped_runs == 1
    opt = onnx.load(r.optimized_model_path)
    # every executed node is a node of the saved optimized graph, in the same order
    assert [n.name for n in p.nodes] == [n.name for n in opt.graph.node]
    # Conv+ReLU ran as one node (ReLU fused as the blocked conv's activation)
    assert "Relu" not in {n.op_type for n in p.nodes}
    assert all(total >= nodes for total, nodes in zip(p.run_total_us, p.node_sum_us))
    assert r.settings["intra_op_threads"] == 1 and r.trace_path is None
    assert not list((tmp_path / "prof").glob("*.trace.json"))


def test_profile_nodes_uses_device_settings(tiny_artifact, tmp_path):
    r = profile_nodes(
        tiny_artifact, tmp_path / "prof", n_runs=2, n_warmup=0,
        device=OrtCpuDevice(graph_optimization_level="disable"), keep_trace=True,
    )  # fmt: skip
    raw = onnx.load(tiny_artifact.path)
    # no graph optimisation: the runtime executes the exported graph node for node, Relu unfused
    assert [n.op_type for n in r.profile.nodes] == [n.op_type for n in raw.graph.node]
    assert "Relu" in {n.op_type for n in r.profile.nodes}
    assert r.settings["graph_optimization_level"] == "disable"
    assert parse_profile(Path(r.trace_path).read_text()) == r.profile


def test_profile_nodes_bad_arguments(tiny_artifact, tmp_path):
    with pytest.raises(ConfigError, match="n_runs"):
        profile_nodes(tiny_artifact, tmp_path, n_runs=0)


def test_kernel_profiler_lowers_and_profiles_with_the_devices_settings(tiny_artifact, tmp_path):
    """What the ops predictor asks a device for: the lowered graph it predicts is the graph profiling timed."""
    full = OrtCpuDevice().kernel_profiler()
    none = OrtCpuDevice(graph_optimization_level="disable").kernel_profiler()
    assert full.graph_settings == {"graph_optimization_level": "all"} and none.graph_settings == {"graph_optimization_level": "disable"}
    raw = onnx.load(tiny_artifact.path)
    assert [n.op_type for n in none.lower(tiny_artifact).graph.node] == [n.op_type for n in raw.graph.node]
    lowered = full.lower(raw)  # a ModelProto, a path or an artifact
    assert "Relu" not in {n.op_type for n in lowered.graph.node}
    profiled = full.profile(tiny_artifact, tmp_path / "prof", n_runs=1, n_warmup=0)
    assert [n.op_type for n in lowered.graph.node] == [n.op_type for n in profiled.profile.nodes]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match="could not load the graph to lower it"):
        full.lower(bad)
