import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwprof.errors import DataError
from predictors.features.graph import GRAPH_FEATURE_NAMES, GRAPH_SCHEMA, GraphFeaturizer, graph_features
from predictors.features.graph_costs import analyze_graph

DATA = Path(__file__).resolve().parents[1] / "data"
RNG = np.random.default_rng(0)


def _init(name, shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        initializer=list(inits),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _conv_model(c_in, c_out, k, hw, group=1, stride=1, pad=1, bias=True):
    inits = [_init("w", (c_out, c_in // group, k, k))] + ([_init("b", (c_out,))] if bias else [])
    node = helper.make_node(
        "Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv",
        kernel_shape=[k, k], pads=[pad] * 4, strides=[stride] * 2, group=group,
    )  # fmt: skip
    return _model([node], [("x", (1, c_in, hw, hw))], [("y", None)], inits)


def test_single_conv_hand_computed():
    f = graph_features(_conv_model(3, 8, 3, 16))
    assert list(f) == list(GRAPH_FEATURE_NAMES)
    assert f["macs"] == 8 * 3 * 9 * 16 * 16
    assert f["flops"] == 2 * 8 * 3 * 9 * 16 * 16
    assert f["params"] == 8 * 3 * 9 + 8
    assert f["param_bytes"] == 4 * (8 * 3 * 9 + 8)
    assert f["act_bytes_read"] == 4 * 3 * 16 * 16
    assert f["act_bytes_written"] == 4 * 8 * 16 * 16
    assert f["act_bytes"] == f["act_bytes_read"] + f["act_bytes_written"]
    assert f["max_output_bytes"] == 4 * 8 * 16 * 16
    assert (f["n_nodes"], f["depth"], f["count_Conv"], f["n_conv_dense"]) == (1, 1, 1, 1)
    assert f["macs_conv_dense"] == f["macs"] and f["macs_conv_depthwise"] == 0


def test_depthwise_and_grouped_conv():
    dw = graph_features(_conv_model(8, 8, 3, 16, group=8, stride=2))
    # output 8x8x8, one input channel per filter
    assert dw["macs"] == 8 * 8 * 8 * 9
    assert dw["macs_conv_depthwise"] == dw["macs"] and dw["n_conv_depthwise"] == 1
    assert dw["params"] == 8 * 9 + 8
    grouped = graph_features(_conv_model(8, 16, 1, 4, group=2, pad=0, bias=False))
    assert grouped["macs"] == 16 * 4 * 4 * 4  # C_in/groups = 4 inputs per output
    assert grouped["macs_conv_grouped"] == grouped["macs"] and grouped["n_conv_grouped"] == 1


def test_gemm_matmul_pool_elementwise_bn():
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "bb", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("AveragePool", ["r"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["p", "p"], ["a"], name="add"),
        helper.make_node("Sum", ["a", "p", "p"], ["s3"], name="sum"),
        helper.make_node("GlobalAveragePool", ["s3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["fl"], name="flatten"),
        helper.make_node("Gemm", ["fl", "gw", "gb"], ["logits"], name="fc", transB=1),
        helper.make_node("MatMul", ["logits", "mw"], ["y"], name="mm"),
    ]
    inits = [_init(n, (4,)) for n in ("s", "bb", "m")] + [
        numpy_helper.from_array(np.ones(4, np.float32), "v"), _init("gw", (10, 4)), _init("gb", (10,)), _init("mw", (10, 5)),
    ]  # fmt: skip
    f = graph_features(_model(nodes, [("x", (1, 4, 8, 8))], [("y", None)], inits))
    pooled = 4 * 4 * 4  # 8x8 -> 4x4
    assert f["macs"] == 10 * 4 + 10 * 5
    assert f["macs_matmul"] == f["macs"]
    expected_flops = (
        2 * 256  # BN: scale and shift per element
        + 256  # Relu
        + pooled * 9  # 3x3 window per output element
        + pooled  # Add
        + 2 * pooled  # Sum of three inputs
        + pooled  # global pool reads every element once
        + 2 * (10 * 4 + 10 * 5)
    )
    assert f["flops"] == expected_flops
    assert f["depth"] == 9 and f["n_nodes"] == 9
    assert f["count_BatchNormalization"] == 1 and f["count_Sum"] == 1 and f["count_other"] == 0
    # Add reads its input twice (two operands), Sum three times
    add = next(n for n in analyze_graph(_model(nodes, [("x", (1, 4, 8, 8))], [("y", None)], inits)).nodes if n.name == "add")
    assert add.bytes_read == 2 * 4 * pooled and add.bytes_written == 4 * pooled


def test_batched_matmul_and_depth_of_branches():
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
        helper.make_node("Relu", ["a"], ["b"], name="r1"),
        helper.make_node("Relu", ["b"], ["c"], name="r2"),
        helper.make_node("Sigmoid", ["a"], ["d"], name="side"),
        helper.make_node("Mul", ["c", "d"], ["y"], name="mul"),
        helper.make_node("Erf", ["y"], ["z"], name="erf"),
    ]
    f = graph_features(_model(nodes, [("x", (2, 3, 4))], [("z", None)], [_init("w", (4, 5))]))
    assert f["macs"] == 2 * 3 * 5 * 4
    assert f["depth"] == 5  # mm -> r1 -> r2 -> mul -> erf; the side branch is shorter
    assert f["count_other"] == 1  # Erf is outside the vocabulary


def test_constant_nodes_are_parameters_not_nodes():
    shape = helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([1, -1], np.int64)))
    scale = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.full((1, 6), 2.0, np.float32)))
    nodes = [shape, scale, helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"), helper.make_node("Mul", ["r", "k"], ["y"], name="mul")]
    g = analyze_graph(_model(nodes, [("x", (1, 2, 3))], [("y", None)]))
    assert [n.name for n in g.nodes] == ["reshape", "mul"]
    assert g.nodes[0].output_shapes == ((1, 6),)  # Reshape resolved through the constant shape
    assert g.n_params == 6  # the float constant; the int64 shape is not a parameter
    assert g.nodes[1].const_inputs == (False, True) and g.nodes[1].param_bytes == 24


def test_accepts_path_proto_and_artifact(tmp_path):
    import torch

    from hwprof.artifacts import export_module

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10),
        ).eval()  # fmt: skip

    art = export_module(build, (1, 3, 16, 16), tmp_path, "t")
    f = graph_features(art)
    assert f == graph_features(art.path) == graph_features(onnx.load(art.path))
    # Conv 3->8 k3 (BN folded by the exporter) + Linear 8->10
    assert f["macs"] == 8 * 3 * 9 * 16 * 16 + 8 * 10
    assert f["params"] == (8 * 27 + 8) + (80 + 10)
    assert f["count_Conv"] == 1 and f["count_Gemm"] == 1 and f["count_BatchNormalization"] == 0


def test_optimized_graph_matches_recorded_profile_shapes():
    """onnxruntime's blocked (NCHWc) ops have no ONNX schema: our shapes must match what the runtime ran."""
    from devices.ort_profile import parse_profile

    g = analyze_graph(DATA / "ort_profile_tiny.opt.onnx")
    profile = parse_profile((DATA / "ort_profile_tiny.json").read_text(), skip_runs=1)
    nodes = {n.name: n for n in g.nodes}
    assert set(nodes) == {n.name for n in profile.nodes}
    for timed in profile.nodes:
        node = nodes[timed.name]
        assert node.output_shapes == timed.output_shapes, timed.name
        assert node.input_shapes[0] == timed.input_shapes[0], timed.name
    stem, dw, pw = (nodes[n] for n in ("/stem/stem.2/Relu_output_0_nchwc", "/dw/dw.2/Relu_output_0_nchwc", "/pw/pw.0/Conv_output_0_nchwc"))
    # 12 channels padded to the 16 of the blocked layout, as executed
    assert stem.macs == 16 * 3 * 9 * 16 * 16
    assert stem.flops == 2 * stem.macs + 16 * 16 * 16  # fused ReLU
    assert dw.conv_kind == "depthwise" and dw.macs == 16 * 9 * 16 * 16
    assert pw.input_shapes[3] == (1, 16, 16, 16)  # fused residual sum
    assert pw.flops == 2 * 16 * 16 * 16 * 16 + 2 * 16 * 16 * 16  # sum and ReLU
    reorder = nodes["ReorderOutput"]
    assert reorder.macs == 0 and reorder.bytes_read == 4 * 16 * 256 and reorder.bytes_written == 4 * 12 * 256


def test_optimized_graph_features_count_fusions():
    raw = graph_features(DATA / "ort_profile_tiny.onnx")
    opt = graph_features(DATA / "ort_profile_tiny.opt.onnx")
    assert raw["count_Conv"] == opt["count_Conv"] == 3
    assert raw["count_Add"] == 1 and opt["count_Add"] == 0  # folded into the conv
    assert raw["count_Relu"] == 3 and opt["count_Relu"] == 0
    assert opt["count_other"] == 1  # ReorderOutput
    assert opt["macs"] > raw["macs"]  # padding to the channel block costs real work


@pytest.mark.parametrize(
    "model, match",
    [
        (_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ("batch", 4))], [("y", None)]), "shape"),
        ("/no/such/file.onnx", "no such ONNX file"),
        (42, "expected an ONNX ModelProto"),
    ],
)
def test_bad_inputs(model, match):
    with pytest.raises(DataError, match=match):
        graph_features(model)


def test_garbage_file(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x00not a model")
    with pytest.raises(DataError, match="not a readable ONNX model"):
        graph_features(path)


def test_features_json_serialisable():
    f = graph_features(_conv_model(3, 8, 3, 16))
    assert json.loads(json.dumps(f)) == f
    assert all(isinstance(v, float) for v in f.values())


def test_graph_featurizer_schema_and_matrix():
    fz = GraphFeaturizer.from_kind("graph:onnx")
    assert fz.schema == GRAPH_SCHEMA and fz.schema.names == GRAPH_FEATURE_NAMES
    paths = [DATA / "ort_profile_tiny.onnx", DATA / "ort_profile_tiny.opt.onnx"]
    X = fz.transform(paths)
    assert X.shape == (2, len(GRAPH_FEATURE_NAMES))
    np.testing.assert_array_equal(X[1], list(graph_features(paths[1]).values()))
    assert fz.transform([]).shape == (0, len(GRAPH_FEATURE_NAMES))
    with pytest.raises(DataError, match="graph:onnx"):
        GraphFeaturizer.from_kind("onehot:nb201")


def test_shape_arithmetic_is_folded():
    """x.view(n, 2, c // 2, h, w) as exporters emit it (FBNet's channel shuffle): Shape -> Gather -> Div -> Concat -> Reshape."""

    def const(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "one"], ["c"], name="c", axis=0),
        helper.make_node("Div", ["c", "two"], ["half"], name="half"),
        helper.make_node("Unsqueeze", ["half", "axes"], ["half1"], name="unsq"),
        helper.make_node("Concat", ["n1", "two1", "half1", "hw"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="view"),
        helper.make_node("Transpose", ["r"], ["t"], name="swap", perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "back"], ["y"], name="back"),
    ]
    inits = [const("one", 1), const("two", 2), const("axes", [0]), const("n1", [1]), const("two1", [2]), const("hw", [3, 3]), const("back", [1, 6, 3, 3])]
    g = analyze_graph(_model(nodes, [("x", (1, 6, 3, 3))], [("y", None)], inits))
    shapes = {n.name: n.output_shapes[0] for n in g.nodes}
    assert shapes["view"] == (1, 2, 3, 3, 3) and shapes["swap"] == (1, 3, 2, 3, 3) and shapes["back"] == (1, 6, 3, 3)
    assert g.n_params == 0  # integer shape constants are not parameters
    assert g.depth == 8
