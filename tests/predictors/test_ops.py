import json
import math
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwprof.errors import ConfigError, DataError, NotFittedError
from predictors.base import FeatureSchema
from predictors.features.graph_costs import NodeInfo, analyze_graph
from predictors.metrics import evaluate_predictions
from predictors.ops import (
    NODE_FEATURES,
    NODE_SCHEMA,
    NodeFeaturizer,
    OpsPredictor,
    kind_id,
    lower_for_ort,
    match_node_timings,
    node_table,
)

DATA = Path(__file__).resolve().parents[1] / "data"
COL = {name: i for i, name in enumerate(NODE_SCHEMA.names)}
FAST = dict(n_estimators=100, learning_rate=0.1, min_samples_xgb=20)


# --- synthetic graphs with a known latency law ---------------------------------------------------


def chain_graph(rng: np.random.Generator, widths=(8, 16, 24, 32), hws=(8, 16), extra_op: str | None = None) -> onnx.ModelProto:
    """Input -> random conv blocks (dense k1/k3, depthwise k3, ReLU, residual Add) -> GAP -> Gemm."""
    c = first_c = int(rng.choice(widths))
    hw = int(rng.choice(hws))
    nodes, inits = [], []
    x = "input"

    def add(op, inputs, **attrs):
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"n{len(nodes)}_{op}", **attrs))
        return out

    def weight(shape):
        name = f"w{len(inits)}"
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    for _ in range(int(rng.integers(3, 7))):
        kind = rng.choice(["dense3", "dense1", "dw"])
        if kind == "dw":
            y = add("Conv", [x, weight((c, 1, 3, 3))], kernel_shape=[3, 3], pads=[1] * 4, group=c)
            c_out = c
        else:
            k = 3 if kind == "dense3" else 1
            c_out = int(rng.choice(widths))
            y = add("Conv", [x, weight((c_out, c, k, k))], kernel_shape=[k, k], pads=[k // 2] * 4)
        if rng.random() < 0.5:
            y = add("Relu", [y])
        if c_out == c and rng.random() < 0.5:
            y = add("Add", [y, x])
        x, c = y, c_out
    if extra_op:
        x = add(extra_op, [x])
    x = add("GlobalAveragePool", [x])
    x = add("Flatten", [x])
    x = add("Gemm", [x, weight((10, c))], transB=1)
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, (1, first_c, hw, hw))],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


LAW_OVERHEAD = (0.05, 0.002)  # o0 ms, ms per node


def node_law_ms(n: NodeInfo) -> float:
    """A made-up but kernel-like cost: per-MAC cost depends on the conv variant and kernel size."""
    if n.conv_kind == "depthwise":
        return 0.005 + 1e-7 * n.macs
    if n.conv_kind == "dense":
        k = n.input_shapes[1][2]
        return 0.01 + 2e-8 * n.macs * (1.6 if k == 1 else 1.0)
    if n.op_type in ("Relu", "Add", "Sigmoid"):
        return 0.002 + 1e-8 * n.act_bytes
    if n.op_type == "Gemm":
        return 0.004 + 5e-8 * n.macs
    return 0.001 + 5e-9 * n.act_bytes


def law(model: onnx.ModelProto) -> tuple[dict[str, float], float]:
    nodes = analyze_graph(model).nodes
    per_node = {n.name: node_law_ms(n) for n in nodes}
    return per_node, sum(per_node.values()) + LAW_OVERHEAD[0] + LAW_OVERHEAD[1] * len(nodes)


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    train = [chain_graph(rng) for _ in range(30)]
    test = [chain_graph(rng) for _ in range(8)]
    return train, test


@pytest.fixture(scope="module")
def fitted(synthetic):
    train, _ = synthetic
    timings, latencies = zip(*(law(m) for m in train))
    return OpsPredictor(**FAST).fit_graphs(train, list(timings), list(latencies), lowered=True)


# --- nodes -> rows ---------------------------------------------------------------------------------


def test_rows_of_recorded_optimized_graph():
    t = node_table(DATA / "ort_profile_tiny.opt.onnx")
    rows = {n.name: (k, x) for n, k, x in zip(t.nodes, t.kinds, t.X)}
    kind, x = rows["/dw/dw.2/Relu_output_0_nchwc"]
    assert kind == "nchwc.Conv.depthwise" and x[COL["kind_id"]] == kind_id(kind)
    assert (x[COL["kernel_h"]], x[COL["groups"]], x[COL["c_in"]], x[COL["c_out"]], x[COL["h_out"]]) == (3, 16, 16, 16, 16)
    assert x[COL["macs"]] == 16 * 9 * 256 and x[COL["fused_activation"]] == 1 and x[COL["fused_sum"]] == 0
    kind, x = rows["/pw/pw.0/Conv_output_0_nchwc"]
    assert kind == "nchwc.Conv" and x[COL["fused_sum"]] == 1 and x[COL["n_act_inputs"]] == 2
    kind, x = rows["/head/Gemm"]
    assert kind == "Gemm" and (x[COL["c_in"]], x[COL["c_out"]], x[COL["macs"]]) == (12, 10, 120)
    assert x[COL["param_bytes"]] == 4 * (12 * 10 + 10)
    assert rows["ReorderOutput"][0] == "nchwc.ReorderOutput"
    assert t.X.shape == (8, len(NODE_FEATURES) + 1)


def test_match_node_timings_named_and_unnamed():
    def node(name, op):
        return NodeInfo(name, op, "", {}, ((1, 4),), ((1, 4),), (False,), 0, 4, 16, 16, 0)

    nodes = [node("a", "Conv"), node("", "HardSigmoid"), node("", "Mul"), node("", "Mul"), node("b", "Relu")]
    timings = {"a": 1.0, "b": 2.0, "Mul_12": 4.0, "Mul_10": 3.0, "HardSigmoid_9": 5.0, "stray": 9.0}
    assert match_node_timings(nodes, timings) == [1.0, 5.0, 3.0, 4.0, 2.0]
    assert match_node_timings(nodes, {"a": 1.0}) == [1.0, None, None, None, None]


# --- learning -------------------------------------------------------------------------------------------


def test_learns_kernel_law_and_predicts_unseen_combinations(fitted, synthetic):
    _, test = synthetic
    truth = [law(m)[1] for m in test]
    m = evaluate_predictions(truth, fitted.predict_graphs(test, lowered=True))
    assert m.mape < 0.03 and m.within_10pct == 1.0
    scale, o0, o1 = fitted.overhead_
    assert scale == pytest.approx(1.0, abs=0.05)
    assert o0 + 20 * o1 == pytest.approx(LAW_OVERHEAD[0] + 20 * LAW_OVERHEAD[1], abs=0.02)
    assert fitted.overhead_fitted_ and fitted.n_graphs_ == 30
    # node level: kinds with enough samples for xgboost within 10%, the others within 20%
    for g in test[:3]:
        law_nodes = law(g)[0]
        for p in fitted.predict_nodes(g, lowered=True):
            assert p.latency_ms == pytest.approx(law_nodes[p.name], rel=0.1 if p.source == "xgboost" else 0.2), p


def test_extrapolates_to_wider_networks_than_trained(fitted):
    """Linear kernel costs carry the predictor past the widths it saw (8-32 channels)."""
    rng = np.random.default_rng(1)
    wide = [chain_graph(rng, widths=(48, 64)) for _ in range(6)]
    truth = [law(m)[1] for m in wide]
    m = evaluate_predictions(truth, fitted.predict_graphs(wide, lowered=True))
    assert m.mape < 0.15
    assert m.spearman > 0.8


def test_unseen_kind_uses_global_cost(fitted):
    g = chain_graph(np.random.default_rng(2), extra_op="Sigmoid")
    preds = {p.op_type: p for p in fitted.predict_nodes(g, lowered=True)}
    assert preds["Sigmoid"].source == "global" and preds["Sigmoid"].kind == "Sigmoid"
    assert preds["Conv"].source == "xgboost"
    # the global cost of an elementwise op is in the range of the elementwise kernels it saw
    sig = next(n for n in analyze_graph(g).nodes if n.op_type == "Sigmoid")
    assert preds["Sigmoid"].latency_ms == pytest.approx(node_law_ms(sig), rel=1.0)
    assert fitted.kind_names_[kind_id("Conv.depthwise")] == "Conv.depthwise"


def test_rare_kind_gets_linear_only():
    rng = np.random.default_rng(3)
    graphs = [chain_graph(rng) for _ in range(4)]
    timings, lat = zip(*(law(m) for m in graphs))
    p = OpsPredictor(n_estimators=20, min_samples_xgb=10).fit_graphs(graphs, list(timings), list(lat), lowered=True)
    sources = {q.kind: q.source for q in p.predict_nodes(graphs[0], lowered=True)}
    assert sources["Gemm"] == "linear"  # 4 samples < min_samples_xgb
    assert p.kind_counts_[kind_id("Gemm")] == 4


def test_deterministic_with_seed(synthetic):
    train, test = synthetic
    timings, lat = zip(*(law(m) for m in train[:10]))
    a = OpsPredictor(**FAST, random_state=7).fit_graphs(train[:10], list(timings), list(lat), lowered=True)
    b = OpsPredictor(**FAST, random_state=7).fit_graphs(train[:10], list(timings), list(lat), lowered=True)
    np.testing.assert_array_equal(a.predict_graphs(test, lowered=True), b.predict_graphs(test, lowered=True))


# --- the Predictor contract on node tables ----------------------------------------------------------------


def test_node_table_fit_predict(synthetic):
    train, test = synthetic
    tables = [node_table(m) for m in train]
    X = np.vstack([t.X for t in tables])
    y = np.concatenate([[node_law_ms(n) for n in t.nodes] for t in tables])
    p = OpsPredictor(**FAST).fit(X, y)
    assert p.schema_ == NODE_SCHEMA and p.n_train_ == len(y)
    assert p.overhead_ == (1.0, 0.0, 0.0) and not p.overhead_fitted_
    t = node_table(test[0])
    pred = p.predict(t.X)
    assert pred.shape == (len(t.nodes),)
    np.testing.assert_allclose(pred, [node_law_ms(n) for n in t.nodes], rtol=0.2)
    with pytest.raises(DataError, match="ops-nodes"):
        OpsPredictor().fit(X, y, schema=FeatureSchema.raw(X.shape[1]))
    with pytest.raises(DataError, match="features"):
        p.predict(X[:, :5])
    with pytest.raises(ConfigError, match="predict_graphs"):
        p.predict_archs(["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"])


def test_not_fitted_and_bad_parameters(synthetic):
    train, _ = synthetic
    with pytest.raises(NotFittedError):
        OpsPredictor().predict_graphs(train[:1], lowered=True)
    with pytest.raises(ConfigError, match="optimization_level"):
        OpsPredictor(optimization_level="max").fit_graphs(train[:3], [{}] * 3, [1.0] * 3, lowered=True)
    with pytest.raises(ConfigError, match="min_samples_xgb"):
        OpsPredictor(min_samples_xgb=0).fit_graphs(train[:3], [{}] * 3, [1.0] * 3, lowered=True)


def test_bad_training_data(synthetic):
    train, _ = synthetic
    timings, lat = (list(x) for x in zip(*(law(m) for m in train[:4])))
    p = OpsPredictor(**FAST)
    with pytest.raises(DataError, match="one node-timing map and one latency per graph"):
        p.fit_graphs(train[:4], timings[:3], lat, lowered=True)
    with pytest.raises(DataError, match="at least 3"):
        p.fit_graphs(train[:2], timings[:2], lat[:2], lowered=True)
    with pytest.raises(DataError, match="positive"):
        p.fit_graphs(train[:4], timings, lat[:3] + [float("nan")], lowered=True)
    with pytest.raises(DataError, match="no timing"):
        p.fit_graphs(train[:4], timings[:3] + [{"other": 1.0}], lat, lowered=True)
    bad = dict(timings[0])
    bad[next(iter(bad))] = -1.0
    with pytest.raises(DataError, match=">= 0 ms"):
        p.fit_graphs(train[:4], [bad] + timings[1:], lat, lowered=True)


def test_save_load_round_trip_is_portable(fitted, synthetic, tmp_path, monkeypatch):
    from hwprof.errors import PersistenceError
    from predictors import persistence, registry

    if "ops" not in registry.available_predictors():  # entry point not installed in this checkout yet
        original = registry.get_predictor_class
        monkeypatch.setattr(registry, "get_predictor_class", lambda name: OpsPredictor if name == "ops" else original(name))
    _, test = synthetic
    persistence.save(fitted, tmp_path / "p", device="ort-cpu")
    files = sorted(p.name for p in (tmp_path / "p").iterdir())
    boosters = [f for f in files if f.startswith("xgb_kind_")]
    assert files == sorted(boosters + ["predictor.json"]) and len(boosters) == len(fitted.boosters_)
    for f in files:
        json.loads((tmp_path / "p" / f).read_text())  # JSON metadata and xgboost's JSON models: no pickles
    again = persistence.load_predictor(tmp_path / "p", expected_schema=NODE_SCHEMA, expected_device="ort-cpu")
    assert isinstance(again, OpsPredictor) and again.get_params() == fitted.get_params()
    np.testing.assert_allclose(again.predict_graphs(test, lowered=True), fitted.predict_graphs(test, lowered=True), rtol=1e-6)
    assert again.kind_names_ == fitted.kind_names_ and again.overhead_ == pytest.approx(fitted.overhead_)
    (tmp_path / "p" / boosters[0]).unlink()
    with pytest.raises(PersistenceError, match="missing"):
        persistence.load_predictor(tmp_path / "p")


def test_node_featurizer_matches_node_table():
    from predictors.features import featurizer_for_schema

    t = node_table(DATA / "ort_profile_tiny.opt.onnx")
    fz = featurizer_for_schema(NODE_SCHEMA)
    np.testing.assert_array_equal(fz.transform(t.nodes), t.X)
    with pytest.raises(DataError, match="ops-nodes:onnx"):
        NodeFeaturizer.from_kind("graph:onnx")


# --- lowering with onnxruntime ------------------------------------------------------------------------------


def test_lowering_matches_the_profiled_graph(tmp_path):
    """Prediction lowers graphs itself: it must produce the nodes the profiler timed."""
    from devices.export import load_onnx_artifact
    from devices.ort_profile import profile_nodes

    raw = DATA / "ort_profile_tiny.onnx"
    lowered = lower_for_ort(raw)
    profiled = profile_nodes(load_onnx_artifact(raw), tmp_path, n_runs=1, n_warmup=0)
    # onnxruntime names the layout nodes it inserts with a process-wide counter ("ReorderOutput_token_8"),
    # so the same graph lowered by another session may differ in that suffix only.
    def names(nodes):
        return [re.sub(r"_token_\d+$", "", n.name) for n in nodes]

    assert names(lowered.graph.node) == names(onnx.load(profiled.optimized_model_path).graph.node)
    assert [n.op_type for n in lowered.graph.node] == [n.op_type for n in onnx.load(profiled.optimized_model_path).graph.node]
    assert names(onnx.load(profiled.optimized_model_path).graph.node) == names(profiled.profile.nodes)
    unoptimized = lower_for_ort(raw, "disable")
    assert [n.op_type for n in unoptimized.graph.node] == [n.op_type for n in onnx.load(raw).graph.node]
    with pytest.raises(ConfigError):
        lower_for_ort(raw, "fast")


def test_fit_graphs_from_real_profiles(tmp_path):
    """End to end on the runtime: profile small torch networks, fit, predict one left out."""
    import torch

    from devices.ort_profile import profile_nodes
    from hwprof.artifacts import export_module

    arts, results = [], []
    for i, (c, k) in enumerate([(8, 3), (16, 3), (16, 1), (24, 3), (32, 1)]):
        def build(c=c, k=k):
            torch.manual_seed(0)
            return torch.nn.Sequential(
                torch.nn.Conv2d(3, c, k, padding=k // 2), torch.nn.BatchNorm2d(c), torch.nn.ReLU(),
                torch.nn.Conv2d(c, c, 3, padding=1, groups=c), torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(c, 10),
            ).eval()  # fmt: skip

        art = export_module(build, (1, 3, 16, 16), tmp_path / "cache", f"n{i}")
        arts.append(art)
        results.append(profile_nodes(art, tmp_path / "prof", n_runs=5, n_warmup=2))
    train = results[:4]
    p = OpsPredictor(n_estimators=20).fit_graphs(
        [r.optimized_model_path for r in train],
        [r.profile.node_latency_ms("min") for r in train],
        [r.profile.run_median_ms for r in train],
        lowered=True,
    )
    pred = p.predict_graphs([arts[4].path])  # raw graph: lowered by the predictor
    assert pred.shape == (1,) and math.isfinite(pred[0]) and pred[0] > 0
    kinds = {q.kind for q in p.predict_nodes(arts[4].path)}
    assert {"nchwc.Conv", "nchwc.Conv.depthwise", "Gemm"} <= kinds


@pytest.mark.slow
def test_nb201_kernels_predict_fbnet_networks(tmp_path):
    """Cross-space: kernels learned on NB201 networks predict FBNet networks (depthwise, grouped, shuffles)."""
    from devices.ort_cpu import OrtCpuDevice
    from hwprof.artifacts import export_architecture
    from devices.ort_profile import profile_nodes
    from hwprof.protocol import ProtocolSettings
    from nas.spaces.fbnet import FBNetSpace
    from nas.spaces.nb201 import NB201Space

    device = OrtCpuDevice()
    protocol = ProtocolSettings(min_warmup=3, max_warmup=20, min_runs=20, max_runs=200, max_time_s=2.0)

    def export(space, arch):
        return export_architecture(space, arch, tmp_path / "cache")

    nb = NB201Space()
    profiled, latency = [], []
    for arch in nb.sample(16, np.random.default_rng(0)):
        art = export(nb, arch)
        profiled.append(profile_nodes(art, tmp_path / "opt", n_runs=15, n_warmup=5, device=device))
        latency.append(device.measure(art, protocol).stats.min_ms)
    p = OpsPredictor(random_state=0).fit_graphs(
        [r.optimized_model_path for r in profiled[:12]],
        [r.profile.node_latency_ms("min") for r in profiled[:12]],
        latency[:12],
        lowered=True,
    )
    held_out = p.predict_graphs([r.optimized_model_path for r in profiled[12:]], lowered=True)
    assert evaluate_predictions(latency[12:], held_out).mape < 0.15

    fb = FBNetSpace()
    arts = [export(fb, a) for a in fb.sample(5, np.random.default_rng(0))]
    measured = [device.measure(a, protocol).stats.min_ms for a in arts]
    predicted = p.predict_graphs([a.path for a in arts])
    assert np.all(np.isfinite(predicted)) and np.all(predicted > 0)
    # kernels NB201 lacks (3x3/5x5 depthwise at 6x width) are extrapolated: within a factor, not within 10%
    assert evaluate_predictions(measured, predicted).mape < 0.6
    nodes = p.predict_nodes(arts[0].path)
    total = sum(n.latency_ms for n in nodes)
    assert sum(n.latency_ms for n in nodes if n.source == "global") < 0.25 * total
    assert any(n.kind == "nchwc.Conv.depthwise" and n.source != "global" for n in nodes)  # learned from NB201


# --- architectures: export, profile, fit; the search cost -------------------------------------------------


def _context(tmp_path, **changes):
    from predictors.context import ArchContext

    fields = dict(space="nb201", device="ort-cpu", device_settings={"intra_op_threads": 1},
                  cache_dir=str(tmp_path / "cache"), options={"node_runs": 2})  # fmt: skip
    fields.update(changes)
    return ArchContext(**fields)


@pytest.fixture(scope="module")
def nb201_fitted(tmp_path_factory):
    """An ops predictor trained through fit_archs on 3 NB201 networks (profiled on this machine's ort-cpu)."""
    from nas.spaces.nb201 import NB201Space

    tmp = tmp_path_factory.mktemp("ops-archs")
    specs = [a.spec for a in NB201Space().sample(5, np.random.default_rng(0))]
    progress = []
    p = OpsPredictor(n_estimators=20).fit_archs(
        specs[:3], [4.0, 5.0, 6.0], context=_context(tmp), progress=lambda done, total: progress.append((done, total))
    )
    return p, specs, tmp, progress


def test_fit_archs_profiles_on_the_context_device_and_records_what_prediction_needs(nb201_fitted):
    p, specs, tmp, progress = nb201_fitted
    assert progress[:3] == [(1, 3), (2, 3), (3, 3)]  # the profiled networks, then the fitted kinds
    assert p.overhead_fitted_ and p.n_graphs_ == 3 and p.space_ == "nb201"
    assert p.cache_dir_ == str((tmp / "cache").resolve()) and any((tmp / "cache" / "ort-optimized").iterdir())
    assert p.lowering_ == {"device": "ort-cpu", "settings": {"graph_optimization_level": "all"}}
    assert p.profiling_ == {"device": "ort-cpu", "settings": {"intra_op_threads": 1}, "node_runs": 2}
    assert p.get_params() == OpsPredictor(n_estimators=20).get_params()  # fit changes no parameter
    pred = p.predict_archs(specs[3:])
    assert pred.shape == (2,) and np.all(np.isfinite(pred)) and np.all(pred > 0)


def test_fit_archs_lowers_at_the_measured_devices_level(tmp_path):
    """The device's settings decide the executed graph; the parameter does not override them."""
    from nas.spaces.nb201 import NB201Space

    specs = [a.spec for a in NB201Space().sample(3, np.random.default_rng(1))]
    ctx = _context(tmp_path, device_settings={"graph_optimization_level": "basic"})
    p = OpsPredictor(n_estimators=5).fit_archs(specs, [4.0, 5.0, 6.0], context=ctx)
    assert p.lowering_["settings"] == {"graph_optimization_level": "basic"} and p.optimization_level == "all"
    assert not any(k.startswith("nchwc.") for k in p.kind_names_.values())  # NCHWc layout is an "all"-level transform


def test_saved_ops_predictor_predicts_specs_without_being_told_the_space(nb201_fitted, tmp_path, monkeypatch):
    from predictors import persistence

    p, specs, _, _ = nb201_fitted
    before = p.predict_archs(specs[3:])
    persistence.save(p, tmp_path / "p", device="ort-cpu")
    again = persistence.load_predictor(tmp_path / "p")
    assert again.space_ == "nb201" and again.lowering_ == p.lowering_ and again.profiling_ == p.profiling_
    monkeypatch.chdir(tmp_path)  # no cache here: the recorded one is used
    np.testing.assert_allclose(again.predict_archs(specs[3:]), before, rtol=1e-9)
    assert not (tmp_path / ".hwprof-cache").exists()


def test_ops_predictor_is_a_search_cost(nb201_fitted, tmp_path):
    from hwprof.types import Architecture
    from nas.cost.predictor import PredictorCost
    from nas.spaces.nb201 import NB201Space
    from predictors import persistence

    p, specs, _, _ = nb201_fitted
    persistence.save(p, tmp_path / "p", device="ort-cpu")
    cost = PredictorCost.load(tmp_path / "p", space=NB201Space())  # the space check predicts a probe architecture
    assert not cost.cheap  # every prediction exports a network: no enumeration of the space
    archs = [Architecture("nb201", s) for s in specs[3:]]
    np.testing.assert_allclose(cost.costs(archs), p.predict_archs(specs[3:]), rtol=1e-9)
    assert cost.cost(archs[0]) == pytest.approx(cost.costs(archs)[0])


def test_fit_archs_refusals(tmp_path):
    from predictors.features import get_featurizer

    specs = ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 3
    p = OpsPredictor()
    with pytest.raises(ConfigError, match="fixed node features"):
        p.fit_archs(specs, [1.0] * 3, featurizer=get_featurizer("onehot:nb201"), context=_context(tmp_path))
    with pytest.raises(ConfigError, match="ArchContext"):
        p.fit_archs(specs, [1.0] * 3)
    with pytest.raises(ConfigError, match="at least 3 training networks, got 2"):
        p.fit_archs(specs[:2], [1.0] * 2, context=_context(tmp_path))
    with pytest.raises(ConfigError, match="node_runs must be an integer >= 1, got 0"):
        p.fit_archs(specs, [1.0] * 3, context=_context(tmp_path, options={"node_runs": 0}))
    with pytest.raises(DataError, match="one latency per architecture"):
        p.fit_archs(specs, [1.0] * 2, context=_context(tmp_path))
    assert not p.is_fitted and not (tmp_path / "cache").exists()  # refused before anything was exported


def test_a_device_is_refused_or_taken_by_capability_not_by_name(tmp_path):
    """Any registered device offering kernel_profiler() trains the ops predictor; others are refused by name."""
    from devices.ort_cpu import OrtCpuDevice
    from hwprof import registry
    from predictors.ops import kernel_profiling_devices, profiling_device

    class TimesKernels(OrtCpuDevice):
        name = "ort-cpu-copy"

    class TimesNetworksOnly:
        name = "networks-only"

        def __init__(self, **settings):
            self.settings = settings

    registry.register("device", "ort-cpu-copy", TimesKernels)
    registry.register("device", "networks-only", TimesNetworksOnly)
    try:
        assert {"ort-cpu", "ort-cpu-copy"} <= set(kernel_profiling_devices())
        assert "networks-only" not in kernel_profiling_devices()
        assert isinstance(profiling_device("ort-cpu-copy", {}), TimesKernels)
        specs = ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 3
        for name in ("networks-only", "not-registered"):
            with pytest.raises(ConfigError, match=rf"device {name!r} is not one of .*ort-cpu-copy"):
                OpsPredictor().fit_archs(specs, [1.0] * 3, context=_context(tmp_path, device=name))
    finally:
        registry.unregister("device", "ort-cpu-copy")
        registry.unregister("device", "networks-only")


def test_predict_archs_needs_a_space_when_fitted_on_graphs(fitted, tmp_path):
    from hwprof.types import Architecture

    spec = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(ConfigError, match="no search space is known"):
        fitted.predict_archs([spec])
    # told the space, or given Architecture objects, graph-fitted kernels cost NB201 networks
    a = fitted.predict_archs([spec], context=_context(tmp_path))
    b = fitted.predict_archs([Architecture("nb201", spec)], context=_context(tmp_path, space="fbnet"))
    assert a.shape == (1,) and a[0] > 0 and b == pytest.approx(a)


@pytest.mark.slow
def test_hwprof_search_with_an_ops_predictor_cost(nb201_fitted, tmp_path, capsys):
    from hwprof.cli.main import main
    from predictors import persistence

    p, _, _, _ = nb201_fitted
    persistence.save(p, tmp_path / "p", device="ort-cpu")
    code = main(["search", "--algo", "random", "--budget", "5", "--max-latency-ms", "100",
                 "--cost", f"predictor:{tmp_path / 'p'}", "-o", str(tmp_path / "out")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    history = json.loads((tmp_path / "out" / "random_seed0.json").read_text())["history"]
    specs = [e["spec"] for e in history]
    assert len(specs) == 5
    assert [e["costs"]["latency_ms"] for e in history] == pytest.approx(p.predict_archs(specs).tolist())
