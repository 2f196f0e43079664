"""Space-agnostic features of an ONNX graph: op counts, MACs/FLOPs, parameters, memory traffic, depth.

A predictor on these features serves any network, not only one search
space. Tensor shapes come from ``onnx.shape_inference``; onnxruntime's own
operators (``com.microsoft`` fused ops and the ``com.microsoft.nchwc`` blocked
layout ops found in a graph saved by the runtime's optimizer) have no ONNX
schema, so their shapes are inferred here, which lets the op-level predictor
describe every node the runtime executes.

Counting conventions (documented because papers differ):

- MACs: convolutions (``N*C_out*H_out*W_out * C_in/groups * k_h*k_w``, so a
  depthwise conv costs ``C*H_out*W_out*k_h*k_w``), Gemm and MatMul. Bias
  additions are not counted.
- FLOPs: ``2*MACs`` plus one per output element for every elementwise op
  (``n_inputs - 1`` per element for Sum and variadic ops; one more each for an
  activation or a residual sum fused into a conv), ``k_h*k_w`` per output
  element of a pooling window, one per input element for global pools and
  reductions, two per element for an unfused BatchNormalization and three
  for Softmax. Data movement (Reshape, Transpose, Concat, ...) costs none.
- Activation traffic: bytes of the non-constant tensors each node reads plus
  the bytes it writes, summed over nodes; parameters (initializers and
  Constant outputs) are counted separately.
- Depth: nodes on the longest input-to-output path; Constant nodes are not
  counted anywhere.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

import numpy as np

from hwprof.errors import DataError
from predictors.base import FeatureSchema

if TYPE_CHECKING:
    import onnx

    from hwprof.types import ModelArtifact

    ModelLike = Union[str, Path, onnx.ModelProto, ModelArtifact]
else:
    ModelLike = Any

log = logging.getLogger("hwprof")

GRAPH_FEATURES_VERSION = 1

# Op types counted individually; anything else is counted as "other".
OP_VOCABULARY = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
    "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu",
    "Add", "Sub", "Mul", "Div", "Sum",
    "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
    "Concat", "Split", "Slice", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze",
    "Identity", "Pad", "Resize", "Softmax", "Gather",
)  # fmt: skip

ORT_DOMAINS = ("com.microsoft", "com.microsoft.nchwc")
CONV_OPS = frozenset({"Conv", "FusedConv"})
GEMM_OPS = frozenset({"Gemm", "FusedGemm"})
MATMUL_OPS = frozenset({"MatMul", "FusedMatMul"})
WINDOW_POOL_OPS = frozenset({"AveragePool", "MaxPool", "LpPool"})
GLOBAL_POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceProd"})
BINARY_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"})
UNARY_OPS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu",
    "Gelu", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Softplus", "Mish", "Reciprocal",
    "QuickGelu", "FastGelu", "BiasGelu",
})  # fmt: skip
NORM_OPS = frozenset({"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization"})
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
DEFAULT_NCHWC_BLOCK = 8

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorInfo:
    shape: Shape
    elem_type: int  # onnx.TensorProto data type

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * _itemsize(self.elem_type)


@dataclass(frozen=True)
class NodeInfo:
    """One node with its resolved shapes and cost; the unit an op-level predictor times."""

    name: str
    op_type: str
    domain: str
    attrs: Mapping[str, Any]
    input_shapes: tuple[Shape | None, ...]  # None for an absent optional input
    output_shapes: tuple[Shape, ...]
    const_inputs: tuple[bool, ...]  # which inputs are parameters (initializers/Constant outputs)
    macs: int
    flops: int
    bytes_read: int  # activations only
    bytes_written: int
    param_bytes: int
    conv_kind: str = ""  # "dense", "depthwise" or "grouped" for convolutions

    @property
    def act_bytes(self) -> int:
        return self.bytes_read + self.bytes_written


@dataclass(frozen=True)
class GraphAnalysis:
    nodes: tuple[NodeInfo, ...]  # topological order, Constant nodes excluded
    depth: int
    n_params: int
    param_bytes: int
    tensors: Mapping[str, TensorInfo] = field(repr=False)


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return int(onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except (KeyError, TypeError, ValueError):
        return 4


def load_model(model: ModelLike) -> "onnx.ModelProto":
    """A loaded ModelProto from a path, a ``ModelArtifact`` or a ModelProto (returned as is)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    path = getattr(model, "path", model)
    if not isinstance(path, (str, Path)):
        raise DataError(f"expected an ONNX ModelProto, a path or a ModelArtifact, got {type(model).__name__}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such ONNX file: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others
        raise DataError(f"{path} is not a readable ONNX model: {exc}") from exc


# --- shape inference ---------------------------------------------------------------


def _attrs(node: "onnx.NodeProto") -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _static_shape(type_proto: "onnx.TypeProto") -> TensorInfo | None:
    if not type_proto.HasField("tensor_type"):
        return None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return TensorInfo(tuple(dims), int(tt.elem_type))


def _window_out(size: int, k: int, stride: int, dilation: int, pad_begin: int, pad_end: int, auto_pad: str, ceil_mode: bool) -> int:
    eff = dilation * (k - 1) + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return -(-size // stride)
    if auto_pad == "VALID":
        pad_begin = pad_end = 0
    span = size + pad_begin + pad_end - eff
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or left padding
    return out


def _spatial_out(x: Shape, kernel: Sequence[int], attrs: Mapping[str, Any]) -> list[int]:
    n_sp = len(kernel)
    strides = list(attrs.get("strides") or [1] * n_sp)
    dilations = list(attrs.get("dilations") or [1] * n_sp)
    pads = list(attrs.get("pads") or [0] * (2 * n_sp))
    auto_pad = attrs.get("auto_pad", "NOTSET") or "NOTSET"
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    return [
        _window_out(x[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n_sp], auto_pad, ceil_mode)
        for i in range(n_sp)
    ]


def _conv_shape(node, ins, attrs, ctx) -> list[Shape]:
    x, w = ins[0], ins[1]
    kernel = list(attrs.get("kernel_shape") or w[2:])
    return [(x[0], w[0], *_spatial_out(x, kernel, attrs))]


def _pool_shape(node, ins, attrs, ctx) -> list[Shape]:
    x = ins[0]
    return [(x[0], x[1], *_spatial_out(x, list(attrs["kernel_shape"]), attrs))]


def _global_pool_shape(node, ins, attrs, ctx) -> list[Shape]:
    x = ins[0]
    return [(x[0], x[1], *([1] * (len(x) - 2)))]


def _reorder_input_shape(node, ins, attrs, ctx) -> list[Shape]:
    x = ins[0]
    if attrs.get("channels_last", 0):
        n, c, spatial = x[0], x[-1], x[1:-1]
    else:
        n, c, spatial = x[0], x[1], x[2:]
    # A blocked conv reading this tensor states the padded width in its weight.
    for consumer in ctx["consumers"].get(node.output[0], ()):
        if consumer.domain == "com.microsoft.nchwc" and consumer.op_type == "Conv" and consumer.input[0] == node.output[0]:
            w = ctx["initializers"].get(consumer.input[1])
            if w is not None:
                group = int(_attrs(consumer).get("group", 1))
                return [(n, w.shape[0] if group > 1 and w.shape[1] == 1 else w.shape[1] * group, *spatial)]
    block = ctx["nchwc_block"]
    return [(n, -(-c // block) * block, *spatial)]


def _reorder_output_shape(node, ins, attrs, ctx) -> list[Shape]:
    x = ins[0]
    c = int(attrs.get("channels", x[1]))
    if attrs.get("channels_last", 0):
        return [(x[0], *x[2:], c)]
    return [(x[0], c, *x[2:])]


def _upsample_shape(node, ins, attrs, ctx) -> list[Shape]:
    x = ins[0]
    scales = list(attrs.get("scales") or [])
    if len(scales) == len(x) - 2:  # spatial scales only
        scales = [1, 1, *scales]
    if len(scales) != len(x):
        return [x]
    return [tuple(int(d * f) for d, f in zip(x, scales))]


def _gemm_shape(node, ins, attrs, ctx) -> list[Shape]:
    a, b = ins[0], ins[1]
    m = a[1] if attrs.get("transA", 0) else a[0]
    n = b[0] if attrs.get("transB", 0) else b[1]
    return [(m, n)]


def _matmul_shape(node, ins, attrs, ctx) -> list[Shape]:
    import numpy as np

    a, b = list(ins[0]), list(ins[1])
    if attrs.get("transA", 0) and len(a) >= 2:
        a[-1], a[-2] = a[-2], a[-1]
    if attrs.get("transB", 0) and len(b) >= 2:
        b[-1], b[-2] = b[-2], b[-1]
    batch = tuple(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    return [(*batch, a[-2], b[-1])]


def _same_as_first(node, ins, attrs, ctx) -> list[Shape]:
    return [ins[0]]


# onnxruntime-internal ops (no ONNX schema), keyed by op type; used for the ORT domains only.
_ORT_SHAPE_RULES: dict[str, Callable[..., list[Shape]]] = {
    "Conv": _conv_shape,
    "FusedConv": _conv_shape,
    "AveragePool": _pool_shape,
    "MaxPool": _pool_shape,
    "GlobalAveragePool": _global_pool_shape,
    "GlobalMaxPool": _global_pool_shape,
    "ReorderInput": _reorder_input_shape,
    "ReorderOutput": _reorder_output_shape,
    "Upsample": _upsample_shape,
    "FusedGemm": _gemm_shape,
    "FusedMatMul": _matmul_shape,
    "QuickGelu": _same_as_first,
    "FastGelu": _same_as_first,
    "BiasGelu": _same_as_first,
    "Gelu": _same_as_first,
}


def _nchwc_block(model: "onnx.ModelProto", inits: Mapping[str, TensorInfo]) -> int:
    """Channel block of the NCHWc layout: every blocked conv pads its output channels to it."""
    g = 0
    for node in model.graph.node:
        if node.domain == "com.microsoft.nchwc" and node.op_type == "Conv" and node.input[1] in inits:
            g = math.gcd(g, inits[node.input[1]].shape[0])
    if g == 0:
        return DEFAULT_NCHWC_BLOCK
    block = 1
    while block < 16 and g % (block * 2) == 0:
        block *= 2
    return block


def _topological(nodes: Sequence["onnx.NodeProto"], available: set[str]) -> list["onnx.NodeProto"]:
    """Kahn's order (stable for an already sorted graph); raises on a cycle or a dangling input."""
    producers: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                producers[o] = i
    waiting = [0] * len(nodes)
    consumers: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, n in enumerate(nodes):
        deps = {producers[t] for t in n.input if t and t not in available and t in producers}
        missing = [t for t in n.input if t and t not in available and t not in producers]
        if missing:
            raise DataError(f"node {n.name or n.op_type!r} reads tensor {missing[0]!r} that nothing produces")
        waiting[i] = len(deps)
        for d in deps:
            consumers[d].append(i)
    import heapq

    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        raise DataError("the ONNX graph has a cycle")
    return [nodes[i] for i in order]


def infer_tensors(model: "onnx.ModelProto") -> tuple[dict[str, TensorInfo], set[str], list["onnx.NodeProto"]]:
    """Static shape of every tensor, the names of constant tensors, and the nodes in topological order.

    Raises DataError naming the first node whose output shape cannot be
    determined (dynamic dimensions, unsupported custom op).
    """
    import onnx

    graph = model.graph
    tensors: dict[str, TensorInfo] = {}
    const_values: dict[str, onnx.TensorProto] = {}
    for init in graph.initializer:
        tensors[init.name] = TensorInfo(tuple(int(d) for d in init.dims), int(init.data_type))
        const_values[init.name] = init
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value":
                    t = onnx.helper.get_attribute_value(a)
                    tensors[node.output[0]] = TensorInfo(tuple(int(d) for d in t.dims), int(t.data_type))
                    const_values[node.output[0]] = t
    constants = set(const_values)
    inferred = model
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and C++ errors; fall back to per-node rules
        log.debug("onnx shape inference failed (%s); inferring node by node", exc)
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name not in tensors:
            info = _static_shape(vi.type)
            if info is not None:
                tensors[vi.name] = info

    opsets = list(model.opset_import)
    default_opset = next((o.version for o in opsets if o.domain in ("", "ai.onnx")), onnx.defs.onnx_opset_version())
    initializers = {i.name: tensors[i.name] for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
    ctx = {"nchwc_block": _nchwc_block(model, initializers), "initializers": initializers, "consumers": consumers}
    available = set(tensors) | {i.name for i in graph.input}
    nodes = [n for n in graph.node if not (n.op_type == "Constant" and n.domain in ("", "ai.onnx"))]
    ordered = _topological(nodes, available | constants)
    values = dict(const_values)  # constants plus small tensors computed from static shapes
    for node in ordered:
        outs = [o for o in node.output if o]
        if node.domain in ("", "ai.onnx"):
            for o, arr in zip(outs, _fold_small(node, tensors, values, opsets)):
                values[o] = arr
                tensors.setdefault(o, TensorInfo(tuple(int(d) for d in arr.dims), int(arr.data_type)))
        if all(o in tensors for o in outs):
            continue
        ins = []
        for t in node.input:
            if not t:
                ins.append(None)
                continue
            if t not in tensors:
                raise DataError(
                    f"cannot infer the shape of {t!r}, input of node {node.name or node.op_type!r} ({node.op_type}); "
                    "export the model with static shapes"
                )
            ins.append(tensors[t].shape)
        elem_type = next((tensors[t].elem_type for t in node.input if t and t in tensors), onnx.TensorProto.FLOAT)
        attrs = _attrs(node)
        shapes: list[Shape] | None = None
        if node.domain in ORT_DOMAINS and node.op_type in _ORT_SHAPE_RULES:
            shapes = _ORT_SHAPE_RULES[node.op_type](node, ins, attrs, ctx)
        elif node.domain in ("", "ai.onnx"):
            shapes = _onnx_node_shapes(node, tensors, values, default_opset, opsets)
        if shapes is None or len(shapes) < len(outs):
            raise DataError(
                f"cannot infer output shapes of node {node.name or node.op_type!r} "
                f"({node.domain + '.' if node.domain else ''}{node.op_type})"
            )
        for o, s in zip(outs, shapes):
            tensors.setdefault(o, TensorInfo(tuple(int(d) for d in s), elem_type))
    return tensors, constants, ordered


FOLD_MAX_ELEMENTS = 4096
# Shape arithmetic only: ops whose output is no larger than their inputs' worth of integers.
FOLDABLE_OPS = frozenset({
    "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Cast", "Identity",
    "Add", "Sub", "Mul", "Div", "Mod", "Floor", "Ceil", "Neg", "Abs", "Equal", "Less", "Greater",
    "Not", "And", "Or", "Where", "Min", "Max", "ReduceProd", "ReduceSum", "Size",
})  # fmt: skip


def _fold_small(node, tensors, values, opsets) -> list["onnx.TensorProto"]:
    """Values of a node's outputs when they follow from static shapes and constants, else [].

    Exporters emit shape arithmetic (``x.view(n, 2, c // 2, h, w)`` becomes
    Shape -> Gather -> Div -> Concat -> Reshape); ONNX shape inference cannot
    see through it, so the small integer tensors are evaluated here.
    """
    import onnx
    from onnx import numpy_helper

    if node.op_type == "Shape":
        src = node.input[0]
        if src not in tensors:
            return []
        attrs = _attrs(node)
        shape = list(tensors[src].shape)
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return [numpy_helper.from_array(np.array(shape[start:end], dtype=np.int64), node.output[0])]
    inputs = [t for t in node.input if t]
    if node.op_type not in FOLDABLE_OPS or not inputs or not all(t in values for t in inputs):
        return []
    if sum(math.prod(values[t].dims) for t in inputs) > FOLD_MAX_ELEMENTS:
        return []
    from onnx.reference import ReferenceEvaluator

    graph = onnx.helper.make_graph(
        [node],
        "fold",
        [onnx.helper.make_tensor_value_info(t, values[t].data_type, list(values[t].dims)) for t in dict.fromkeys(inputs)],
        [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o],
    )
    try:
        results = ReferenceEvaluator(onnx.helper.make_model(graph, opset_imports=opsets)).run(
            None, {t: numpy_helper.to_array(values[t]) for t in dict.fromkeys(inputs)}
        )
    except Exception as exc:  # the reference runtime raises many types; folding is best effort
        log.debug("could not fold %s: %s", node.name or node.op_type, exc)
        return []
    return [numpy_helper.from_array(np.asarray(r), o) for r, o in zip(results, [o for o in node.output if o])]


def _onnx_node_shapes(node, tensors, const_values, opset, opsets) -> list[Shape] | None:
    import onnx

    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except Exception:  # onnx.defs.SchemaError
        return None
    input_types = {}
    for t in node.input:
        if t:
            info = tensors[t]
            input_types[t] = onnx.helper.make_tensor_type_proto(info.elem_type, info.shape)
    data = {t: const_values[t] for t in node.input if t in const_values}
    try:
        out_types = onnx.shape_inference.infer_node_outputs(schema, node, input_types, data, opset_imports=opsets)
    except Exception as exc:
        log.debug("shape inference of %s failed: %s", node.name, exc)
        return None
    shapes = []
    for o in node.output:
        if not o:
            continue
        info = _static_shape(out_types[o]) if o in out_types else None
        if info is None:
            return None
        shapes.append(info.shape)
    return shapes


# --- costs ---------------------------------------------------------------------------


def _conv_kind(w: Shape, group: int) -> str:
    if group <= 1:
        return "dense"
    # weight is (C_out, C_in/group, k...); depthwise: one input channel per group
    return "depthwise" if w[1] == 1 else "grouped"


def _node_cost(op: str, domain: str, attrs: Mapping[str, Any], ins: list[Shape | None], outs: list[Shape]) -> tuple[int, int, str]:
    """(MACs, FLOPs, conv kind) of one node under the conventions in the module docstring."""
    out_elems = math.prod(outs[0]) if outs else 0
    if op in CONV_OPS and ins[1] is not None:
        w = ins[1]
        macs = out_elems * math.prod(w[1:])
        flops = 2 * macs
        if attrs.get("activation"):
            flops += out_elems
        if len(ins) > 3 and ins[3] is not None:  # residual sum fused into the conv
            flops += out_elems
        return macs, flops, _conv_kind(w, int(attrs.get("group", 1)))
    if op == "ConvTranspose" and ins[1] is not None:
        macs = math.prod(ins[0]) * math.prod(ins[1][1:])
        return macs, 2 * macs, _conv_kind(ins[1], int(attrs.get("group", 1)))
    if op in GEMM_OPS:
        k = ins[0][0] if attrs.get("transA", 0) else ins[0][1]
        macs = out_elems * k
        return macs, 2 * macs + (out_elems if attrs.get("activation") else 0), ""
    if op in MATMUL_OPS:
        a = ins[0]
        k = a[-2] if (attrs.get("transA", 0) and len(a) >= 2) else a[-1]
        macs = out_elems * k
        return macs, 2 * macs, ""
    if op in WINDOW_POOL_OPS:
        return 0, out_elems * math.prod(attrs.get("kernel_shape", [1])), ""
    if op in GLOBAL_POOL_OPS or op in REDUCE_OPS:
        return 0, math.prod(ins[0]), ""
    if op in BINARY_OPS:
        n_in = sum(1 for s in ins if s is not None)
        return 0, max(n_in - 1, 1) * out_elems, ""
    if op in UNARY_OPS:
        return 0, out_elems, ""
    if op in NORM_OPS:
        return 0, 2 * out_elems, ""
    if op in SOFTMAX_OPS:
        return 0, 3 * out_elems, ""
    return 0, 0, ""


def analyze_graph(model: ModelLike) -> GraphAnalysis:
    """Every computing node with shapes and costs, plus graph-level depth and parameters."""
    import onnx

    proto = load_model(model)
    tensors, constants, ordered = infer_tensors(proto)
    infos = []
    depth_of: dict[str, int] = {}
    depth = 0
    for node in ordered:
        ins = [tensors[t].shape if t else None for t in node.input]
        outs = [tensors[t].shape for t in node.output if t]
        attrs = _attrs(node)
        macs, flops, kind = _node_cost(node.op_type, node.domain, attrs, ins, outs)
        is_const = tuple(bool(t) and t in constants for t in node.input)
        d = 1 + max((depth_of.get(t, 0) for t in node.input if t), default=0)
        for t in node.output:
            if t:
                depth_of[t] = d
        depth = max(depth, d)
        infos.append(
            NodeInfo(
                name=node.name,
                op_type=node.op_type,
                domain=node.domain,
                attrs=attrs,
                input_shapes=tuple(ins),
                output_shapes=tuple(outs),
                const_inputs=is_const,
                macs=int(macs),
                flops=int(flops),
                bytes_read=sum(tensors[t].nbytes for t, c in zip(node.input, is_const) if t and not c),
                bytes_written=sum(tensors[t].nbytes for t in node.output if t),
                param_bytes=sum(tensors[t].nbytes for t, c in zip(node.input, is_const) if t and c),
                conv_kind=kind,
            )
        )
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    params = [tensors[t] for t in constants if tensors[t].elem_type in float_types]
    return GraphAnalysis(
        nodes=tuple(infos),
        depth=depth,
        n_params=sum(p.numel for p in params),
        param_bytes=sum(p.nbytes for p in params),
        tensors=tensors,
    )


# --- graph-level features -------------------------------------------------------------

_SCALAR_FEATURES = (
    "n_nodes", "depth", "params", "param_bytes", "macs", "flops",
    "act_bytes", "act_bytes_read", "act_bytes_written", "max_output_bytes",
    "macs_conv_dense", "macs_conv_depthwise", "macs_conv_grouped", "macs_matmul",
    "n_conv_dense", "n_conv_depthwise", "n_conv_grouped",
)  # fmt: skip
GRAPH_FEATURE_NAMES: tuple[str, ...] = (
    *_SCALAR_FEATURES,
    *(f"count_{op}" for op in OP_VOCABULARY),
    "count_other",
)


def graph_features(model: ModelLike) -> dict[str, float]:
    """Named features of one graph, keys in ``GRAPH_FEATURE_NAMES`` order."""
    g = analyze_graph(model)
    f = dict.fromkeys(GRAPH_FEATURE_NAMES, 0.0)
    f["n_nodes"] = float(len(g.nodes))
    f["depth"] = float(g.depth)
    f["params"] = float(g.n_params)
    f["param_bytes"] = float(g.param_bytes)
    vocab = set(OP_VOCABULARY)
    for n in g.nodes:
        f["macs"] += n.macs
        f["flops"] += n.flops
        f["act_bytes_read"] += n.bytes_read
        f["act_bytes_written"] += n.bytes_written
        f["max_output_bytes"] = max(f["max_output_bytes"], n.bytes_written)
        if n.conv_kind:
            f[f"macs_conv_{n.conv_kind}"] += n.macs
            f[f"n_conv_{n.conv_kind}"] += 1
        if n.op_type in GEMM_OPS or n.op_type in MATMUL_OPS:
            f["macs_matmul"] += n.macs
        f[f"count_{n.op_type}" if n.op_type in vocab else "count_other"] += 1
    f["act_bytes"] = f["act_bytes_read"] + f["act_bytes_written"]
    return {k: float(v) for k, v in f.items()}


GRAPH_KIND = "graph:onnx"
GRAPH_SCHEMA = FeatureSchema(GRAPH_KIND, GRAPH_FEATURE_NAMES, GRAPH_FEATURES_VERSION)


class GraphFeaturizer:
    """Exported ONNX graphs (paths, ModelProtos or ModelArtifacts) -> ``graph_features`` matrix.

    Schema kind ``graph:onnx``; ``from_kind`` lets a saved predictor rebuild it.
    """

    def __init__(self) -> None:
        self.schema = GRAPH_SCHEMA

    @classmethod
    def from_kind(cls, kind: str) -> "GraphFeaturizer":
        if kind != GRAPH_KIND:
            raise DataError(f"graph features have kind {GRAPH_KIND!r}, got {kind!r}")
        return cls()

    def transform(self, items: Sequence[ModelLike]) -> np.ndarray:
        rows = [list(graph_features(m).values()) for m in items]
        return np.array(rows, dtype=np.float64).reshape(len(rows), self.schema.width)

