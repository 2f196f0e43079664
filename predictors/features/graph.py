"""Space-agnostic features of an ONNX graph: op counts, MACs/FLOPs, parameters, memory traffic, depth.

A predictor on these features serves any network, not only one search
space. Shapes come from :mod:`predictors.features.graph_shapes`, node costs
(and the counting conventions) from :mod:`predictors.features.graph_costs`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwprof.errors import DataError
from predictors.base import FeatureSchema
from predictors.features.graph_costs import GEMM_OPS, MATMUL_OPS, analyze_graph
from predictors.features.graph_shapes import ModelLike

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

