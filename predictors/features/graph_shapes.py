"""Static tensor shapes of an ONNX graph, onnxruntime's own operators included.

Shapes come from ``onnx.shape_inference``; onnxruntime's operators
(``com.microsoft`` fused ops and the ``com.microsoft.nchwc`` blocked layout
ops found in a graph saved by the runtime's optimizer) have no ONNX schema,
so their shapes are inferred here, which lets the op-level predictor describe
every node the runtime executes. Small shape-arithmetic subgraphs are folded
so that shapes computed at run time (Reshape targets) are known statically.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

import numpy as np

from hwprof.errors import DataError

if TYPE_CHECKING:
    import onnx

    from hwprof.types import ModelArtifact

    ModelLike = Union[str, Path, onnx.ModelProto, ModelArtifact]
else:
    ModelLike = Any

log = logging.getLogger("hwprof")

ORT_DOMAINS = ("com.microsoft", "com.microsoft.nchwc")
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


def node_attrs(node: "onnx.NodeProto") -> dict[str, Any]:
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
                group = int(node_attrs(consumer).get("group", 1))
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
        attrs = node_attrs(node)
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
        attrs = node_attrs(node)
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
