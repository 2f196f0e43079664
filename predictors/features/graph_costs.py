"""MACs, FLOPs, parameters and memory traffic of every node of an ONNX graph.

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

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from predictors.features.graph_shapes import ModelLike, Shape, TensorInfo, infer_tensors, load_model, node_attrs

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
        attrs = node_attrs(node)
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
