"""Op-level latency prediction in the spirit of nn-Meter's kernel predictors.

A network's latency is predicted as the sum of the latencies of the kernels
the runtime executes, plus a per-network overhead. Because the unit is the
kernel, not the architecture, the predictor serves networks whose op
combinations it never saw, and networks of other spaces, as far as their
kernels resemble the ones it was trained on.

The kernels are those of the graph *as the runtime executes it*: onnxruntime's
optimizer folds BatchNorm into convs, fuses activations and residual sums into
them and switches to a blocked (NCHWc) layout. Rather than re-implementing
those fusion rules (nn-Meter's approach), a graph is lowered with
onnxruntime's own optimizer (a session is created and its optimized graph
saved; nothing is executed), so training samples (the profiler's per-node
timings) and prediction inputs describe the same nodes.

Each node is one row of a node table: its kind (op type, layout domain and
conv variant, e.g. ``nchwc.Conv.depthwise``, stored as a CRC-32 id so any op
type fits without a vocabulary) and shape features. Per kind:

- a non-negative linear cost ``c0 + c1*MACs + c2*activation bytes + c3*parameter
  bytes`` fitted on relative error and shrunk towards the global cost (fitted
  over all nodes) scaled to the kind, so directions the kind's samples do not
  span (a layer that always has the same shape) fall back to the global ones;
  this extrapolates to kernels larger than any seen in training;
- with ``min_samples_xgb`` samples or more, an xgboost model of the log-ratio
  of measured to linear cost, on the shape features.

A kind never seen in training gets the global linear cost. Network latency is
``scale * sum(node latencies) + o0 + o1 * n_nodes``, fitted robustly on the
training networks' measured latencies.

Three levels of the same model:

- ``fit_archs``/``predict_archs`` (what training workflows and search costs
  call): architecture specs of a registered space are exported, profiled
  kernel by kernel on the device named in the :class:`~predictors.context.ArchContext`
  (any registered device with a ``kernel_profiler()``), and fitted; the
  space, artifact cache and lowering device are recorded, so a saved
  predictor predicts specs without being told them again;
- ``fit_graphs``/``predict_graphs``: ONNX graphs with their node timings;
- ``fit(X, y)``/``predict(X)`` (the :class:`~predictors.base.Predictor`
  contract): the node table and node latencies.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from hwprof import registry
from hwprof.errors import ConfigError, DataError, HwprofError, PersistenceError
from hwprof.artifacts import export_architecture
from hwprof.types import Architecture
from predictors.base import (
    FeatureSchema,
    Predictor,
    ProgressCallback,
    check_predictions,
    check_y,
    data_hash,
    finite_values,
    positive_float,
    positive_int,
)
from predictors.features.graph_costs import NodeInfo, analyze_graph
from predictors.features.graph_shapes import ModelLike

if TYPE_CHECKING:
    from hwprof.spaces import SearchSpace
    from predictors.context import ArchContext

ACTIVATION_CODES = {"Relu": 1, "Clip": 2, "Sigmoid": 3, "HardSigmoid": 4, "LeakyRelu": 5, "Tanh": 6}
NODE_FEATURES = (
    "kernel_h", "kernel_w", "stride_h", "stride_w", "groups",
    "c_in", "c_out", "h_in", "w_in", "h_out", "w_out",
    "in_elems", "out_elems", "macs", "flops",
    "bytes_read", "bytes_written", "param_bytes", "n_act_inputs",
    "fused_sum", "fused_activation",
)  # fmt: skip
NODE_SCHEMA = FeatureSchema(kind="ops-nodes:onnx", names=("kind_id", *NODE_FEATURES), version=1)
_COL = {name: i for i, name in enumerate(NODE_SCHEMA.names)}
GLOBAL_KIND = -1
MIN_NODE_MS = 0.0005  # the profiler counts whole µs; a node recorded as 0 µs is taken as half of one
LOWERING_DEVICE = "ort-cpu"  # lowers graphs given without a device (fit_graphs, lower_for_ort)
NODE_RUNS = 20  # profiled runs per network unless ArchContext.options["node_runs"] says otherwise
NODE_WARMUP = 5
DEFAULT_CACHE_DIR = ".hwprof-cache"


# --- nodes -> rows ------------------------------------------------------------------------


def op_kind(node: NodeInfo) -> str:
    """The kind of kernel a node runs as: op type, layout domain, conv variant."""
    prefix = {"com.microsoft.nchwc": "nchwc.", "com.microsoft": "ms."}.get(node.domain, "")
    suffix = f".{node.conv_kind}" if node.conv_kind and node.conv_kind != "dense" else ""
    return f"{prefix}{node.op_type}{suffix}"


def kind_id(kind: str) -> int:
    """Stable numeric id of a kind name (CRC-32; exact in float64)."""
    return zlib.crc32(kind.encode())


def _chw(shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    """(channels, height, width) of an N,C[,H[,W]] tensor; 1 where absent."""
    if not shape:
        return 1, 1, 1
    c = shape[1] if len(shape) > 1 else shape[0]
    h = shape[2] if len(shape) > 2 else 1
    w = shape[3] if len(shape) > 3 else 1
    return c, h, w


def node_row(node: NodeInfo) -> list[float]:
    """One row of the node table (``NODE_SCHEMA`` columns)."""
    x = node.input_shapes[0] if node.input_shapes else None
    y = node.output_shapes[0] if node.output_shapes else None
    attrs = node.attrs
    kernel = list(attrs.get("kernel_shape") or [])
    if not kernel and node.conv_kind and len(node.input_shapes) > 1 and node.input_shapes[1]:
        kernel = list(node.input_shapes[1][2:])
    kernel = (kernel + [1, 1])[:2]
    strides = (list(attrs.get("strides") or []) + [1, 1])[:2]
    c_in, h_in, w_in = _chw(x)
    c_out, h_out, w_out = _chw(y)
    act = attrs.get("activation", "")
    n_act = sum(1 for s, c in zip(node.input_shapes, node.const_inputs) if s is not None and not c)
    fused_sum = int(bool(node.conv_kind) and len(node.input_shapes) > 3 and node.input_shapes[3] is not None)
    return [
        kind_id(op_kind(node)),
        kernel[0], kernel[1], strides[0], strides[1], int(attrs.get("group", 1)),
        c_in, c_out, h_in, w_in, h_out, w_out,
        math.prod(x) if x else 0, math.prod(y) if y else 0, node.macs, node.flops,
        node.bytes_read, node.bytes_written, node.param_bytes, n_act,
        fused_sum, ACTIVATION_CODES.get(act, len(ACTIVATION_CODES) + 1) if act else 0,
    ]  # fmt: skip


def _linear_terms(X: np.ndarray) -> np.ndarray:
    """[1, MACs, activation bytes, parameter bytes] per row of a node table."""
    return np.column_stack(
        [
            np.ones(len(X)),
            X[:, _COL["macs"]],
            X[:, _COL["bytes_read"]] + X[:, _COL["bytes_written"]],
            X[:, _COL["param_bytes"]],
        ]
    )


def match_node_timings(nodes: Sequence[NodeInfo], timings: Mapping[str, float]) -> list[float | None]:
    """Latency of each node from a profile's ``{node name: ms}``; None where the profile lacks it.

    onnxruntime reports an unnamed node as ``<op type>_<internal index>``;
    those are matched to the graph's unnamed nodes of that op type in order.
    """
    out: list[float | None] = [timings.get(n.name) if n.name else None for n in nodes]
    used = {n.name for n in nodes if n.name}
    spare: dict[str, list[tuple[int, str]]] = {}
    for name in timings:
        if name in used:
            continue
        op, sep, index = name.rpartition("_")
        if sep and index.isdigit():
            spare.setdefault(op, []).append((int(index), name))
    for names in spare.values():
        names.sort()
    for i, n in enumerate(nodes):
        if not n.name and spare.get(n.op_type):
            out[i] = timings[spare[n.op_type].pop(0)[1]]
    return out


def kernel_profiling_devices() -> list[str]:
    """Registered devices that can profile kernels (they offer ``kernel_profiler()``)."""
    names = []
    for name in registry.names("device"):
        try:
            cls = registry.load("device", name)
        except HwprofError:
            continue
        if callable(getattr(cls, "kernel_profiler", None)):
            names.append(name)
    return names


def profiling_device(name: str, settings: Mapping[str, Any]) -> Any:
    """Registered device ``name`` with ``settings``; ConfigError unless it can profile kernels.

    The capability, not a list of names, decides: a third-party device that
    offers ``kernel_profiler()`` (``profile(artifact, out_dir, n_runs,
    n_warmup)``, ``lower(model)``, ``graph_settings``) trains the ops predictor.
    """
    cls = registry.load("device", name) if name in registry.names("device") else None
    if not callable(getattr(cls, "kernel_profiler", None)):
        capable = ", ".join(kernel_profiling_devices()) or "none is registered"
        raise ConfigError(
            f"the ops predictor learns from onnxruntime node profiles; device {name!r} is not one of {capable}"
        )
    return registry.get_device(name, **settings)


def lower_for_ort(model: ModelLike, optimization_level: str = "all") -> Any:
    """The graph onnxruntime would execute at ``optimization_level`` (its optimizer's output) as a ModelProto.

    Only a session is created, to run the graph optimizer; nothing is executed.
    """
    device = profiling_device(LOWERING_DEVICE, {"graph_optimization_level": optimization_level})
    return device.kernel_profiler().lower(model)


def resolve_architectures(archs: Sequence[str | Architecture], space_name: str | None) -> list[tuple["SearchSpace", Architecture]]:
    """Each architecture with its space: an ``Architecture`` names its own, a spec string is of ``space_name``."""
    spaces: dict[str, Any] = {}
    out = []
    for a in archs:
        name = a.space if isinstance(a, Architecture) else space_name
        if name is None:
            raise ConfigError(
                "the ops predictor builds networks from architecture specs, and no search space is known: "
                "pass context=ArchContext(space=...), Architecture objects, or exported graphs to predict_graphs()"
            )
        if name not in spaces:
            spaces[name] = registry.get_space(name)
        space = spaces[name]
        out.append((space, space.parse(a.spec if isinstance(a, Architecture) else str(a))))
    return out


class NodeFeaturizer:
    """Nodes (``NodeInfo`` of an analysed, lowered graph) -> node-table rows; schema ``ops-nodes:onnx``."""

    def __init__(self) -> None:
        self.schema = NODE_SCHEMA

    @classmethod
    def from_kind(cls, kind: str) -> "NodeFeaturizer":
        if kind != NODE_SCHEMA.kind:
            raise DataError(f"node tables have kind {NODE_SCHEMA.kind!r}, got {kind!r}")
        return cls()

    def transform(self, items: Sequence[NodeInfo]) -> np.ndarray:
        return np.array([node_row(n) for n in items], dtype=np.float64).reshape(len(items), NODE_SCHEMA.width)



@dataclass(frozen=True)
class NodeTable:
    """The node rows of one graph, with the nodes they came from."""

    nodes: tuple[NodeInfo, ...]
    kinds: tuple[str, ...]
    X: np.ndarray  # (n_nodes, NODE_SCHEMA.width)


def node_table(model: ModelLike) -> NodeTable:
    """Rows of every computing node of a graph (lower it first to describe what a runtime executes)."""
    nodes = analyze_graph(model).nodes
    return NodeTable(nodes=nodes, kinds=tuple(op_kind(n) for n in nodes), X=NodeFeaturizer().transform(nodes))


# --- per-kind cost models ---------------------------------------------------------------------


@dataclass(frozen=True)
class LinearCost:
    """Non-negative ``coef . [1, macs, act_bytes, param_bytes]`` in ms."""

    coef: tuple[float, ...]

    FLOOR_MS = 1e-6  # a kernel never takes zero time, and the ratio model needs a positive base

    @classmethod
    def fit(cls, terms: np.ndarray, y_ms: np.ndarray, prior_weight: float, prior: np.ndarray | None = None) -> "LinearCost":
        """Least squares on relative error, coef >= 0, shrunk towards ``prior``.

        The prior counts as ``prior_weight`` pseudo-samples: a deviation of a
        coefficient is penalised by how much it changes the relative
        prediction of a typical sample (RMS of that term over the samples), so
        a kind with a handful of samples stays near the prior and one with
        thousands follows its data.
        """
        from scipy.optimize import lsq_linear

        k = terms.shape[1]
        a = terms / y_ms[:, None]  # rows weighted by 1/y: relative error
        s = np.sqrt(np.mean(a**2, axis=0))
        s[s == 0] = 1.0
        p = np.zeros(k) if prior is None else np.asarray(prior, dtype=np.float64)
        w = math.sqrt(prior_weight)
        a_aug = np.vstack([a / s, w * np.eye(k)])  # solve for u = coef * s
        b_aug = np.concatenate([np.ones(len(y_ms)), w * p * s])
        sol = lsq_linear(a_aug, b_aug, bounds=(0.0, np.inf), method="bvls")
        return cls(coef=tuple(float(c) for c in sol.x / s))

    def predict(self, terms: np.ndarray) -> np.ndarray:
        return np.maximum(terms @ np.asarray(self.coef), self.FLOOR_MS)


@dataclass(frozen=True)
class NodePrediction:
    name: str
    op_type: str
    kind: str
    latency_ms: float
    source: str  # "xgboost", "linear" or "global" (a kind not seen in training)


# --- the predictor ------------------------------------------------------------------------------


class OpsPredictor(Predictor):
    """Kernel-level latency predictor; network latency = sum of kernels + fitted overhead."""

    name = "ops"
    min_samples = 10  # node rows
    # What a generic training workflow checks (see predictors.context.ArchContext):
    min_archs = 3  # networks fit_archs profiles
    fixed_features = True  # featurizes the graphs it profiles: takes no featurizer (no --features)
    needs_store = True  # trains on measurements of a device it can run here (a store), not on a CSV
    exports_networks = True  # predict_archs builds and exports every network: too slow to cost a whole space

    def __init__(
        self,
        optimization_level: str = "all",
        min_samples_xgb: int = 30,
        n_estimators: int = 300,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        prior_weight: float = 3.0,
        random_state: int = 0,
    ) -> None:
        self.optimization_level = optimization_level
        self.min_samples_xgb = min_samples_xgb
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.prior_weight = prior_weight
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = type(self).__name__
        try:  # the lowering device knows its optimization levels (and maps them to onnxruntime's)
            profiling_device(LOWERING_DEVICE, {"graph_optimization_level": self.optimization_level})
        except ConfigError as exc:
            raise ConfigError(f"{owner}: optimization_level {self.optimization_level!r} is refused by {LOWERING_DEVICE}: {exc}") from None
        positive_int(owner, "min_samples_xgb", self.min_samples_xgb)
        positive_int(owner, "n_estimators", self.n_estimators)
        positive_int(owner, "max_depth", self.max_depth)
        positive_float(owner, "learning_rate", self.learning_rate, maximum=1.0)
        positive_float(owner, "subsample", self.subsample, maximum=1.0)
        positive_float(owner, "prior_weight", self.prior_weight)
        positive_int(owner, "random_state", self.random_state, minimum=0)

    # --- node level (the Predictor contract) ------------------------------------------------
    def fit(self, X: Any, y: Any, *, schema: FeatureSchema | None = None, progress: ProgressCallback | None = None) -> "OpsPredictor":
        """Train the kernel models on a node table (``NODE_SCHEMA`` columns) and node latencies (ms).

        Fitting nodes alone leaves the network overhead at zero (``scale`` 1);
        :meth:`fit_graphs` fits it from whole-network latencies. Graphs given
        later are lowered at ``optimization_level`` on ``LOWERING_DEVICE``.
        """
        schema = NODE_SCHEMA if schema is None else schema
        if schema != NODE_SCHEMA:
            raise DataError(f"the ops predictor takes node tables of schema {NODE_SCHEMA.describe()}, got {schema.describe()}")
        super().fit(X, y, schema=schema, progress=progress)
        self.overhead_ = (1.0, 0.0, 0.0)
        self.overhead_fitted_ = False
        self.kind_names_: dict[int, str] = {}
        self.lowering_ = self._default_lowering()
        self.space_: str | None = None
        self.cache_dir_: str | None = None
        self.profiling_: dict[str, Any] = {}
        return self

    def _default_lowering(self) -> dict[str, Any]:
        return {"device": LOWERING_DEVICE, "settings": {"graph_optimization_level": self.optimization_level}}

    def _fit(self, X: np.ndarray, y: np.ndarray, progress: ProgressCallback | None) -> None:
        import xgboost as xgb

        y = np.maximum(y, MIN_NODE_MS)
        ids = X[:, 0].astype(np.int64)
        terms = _linear_terms(X)
        glob = LinearCost.fit(terms, y, self.prior_weight)
        self.linear_: dict[int, LinearCost] = {GLOBAL_KIND: glob}
        self.boosters_: dict[int, Any] = {}
        self.kind_counts_: dict[int, int] = {}
        kinds = sorted(set(ids.tolist()))
        params = {
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "objective": "reg:squarederror",
            "seed": self.random_state,
            "nthread": 1,
        }
        for done, k in enumerate(kinds, start=1):
            m = ids == k
            self.kind_counts_[k] = int(m.sum())
            ratio = float(np.exp(np.median(np.log(y[m] / glob.predict(terms[m])))))
            lin = LinearCost.fit(terms[m], y[m], self.prior_weight, prior=np.asarray(glob.coef) * ratio)
            self.linear_[k] = lin
            if m.sum() >= self.min_samples_xgb:
                target = np.log(y[m]) - np.log(lin.predict(terms[m]))
                dtrain = xgb.DMatrix(X[m, 1:], label=target, feature_names=list(NODE_FEATURES))
                self.boosters_[k] = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
            if progress is not None:
                progress(done, len(kinds))

    def _predict_with_source(self, X: np.ndarray) -> tuple[np.ndarray, list[str]]:
        ids = X[:, 0].astype(np.int64)
        terms = _linear_terms(X)
        out = np.empty(len(X))
        sources = [""] * len(X)
        for k in set(ids.tolist()):
            idx = np.flatnonzero(ids == k)
            if k in self.linear_:
                pred = self.linear_[k].predict(terms[idx])
                source = "linear"
                if k in self.boosters_:
                    pred = pred * np.exp(self.boosters_[k].inplace_predict(X[idx, 1:]))
                    source = "xgboost"
            else:
                pred = self.linear_[GLOBAL_KIND].predict(terms[idx])
                source = "global"
            out[idx] = pred
            for i in idx:
                sources[i] = source
        return out, sources

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._predict_with_source(X)[0]

    # --- architecture level (what training workflows and search costs call) -----------------------
    def fit_archs(
        self,
        archs: Sequence[str | Architecture],
        y: Any,
        *,
        featurizer: Any = None,
        context: "ArchContext | None" = None,
        progress: ProgressCallback | None = None,
    ) -> "OpsPredictor":
        """Export ``archs``, profile their kernels on ``context.device``, fit kernels and overhead; returns self.

        ``y`` are the networks' latencies (ms) as measured under
        ``context.device_settings``; each network is also run once more with the
        profiler on, under the same settings, ``context.options["node_runs"]``
        times (default 20). ``progress`` sees the profiled networks, then the
        fitted kernel kinds.
        """
        if featurizer is not None:
            raise ConfigError("the ops predictor has fixed node features (it featurizes the graphs it profiles); pass no featurizer")
        if context is None or not context.device:
            raise ConfigError(
                "the ops predictor profiles kernels on the device the latencies were measured on; "
                "pass context=ArchContext(space=..., device=..., device_settings=...)"
            )
        device = profiling_device(context.device, context.device_settings)
        self._check_params()
        node_runs = positive_int(type(self).__name__, "node_runs", context.options.get("node_runs", NODE_RUNS))
        archs = list(archs)
        if len(archs) < 3:
            raise ConfigError(f"the ops predictor needs at least 3 training networks, got {len(archs)}")
        y_net = check_y(y)
        if len(y_net) != len(archs):
            raise DataError(f"need one latency per architecture; got {len(archs)} architectures and {len(y_net)} latencies")
        resolved = resolve_architectures(archs, context.space)
        device.check()
        profiler = device.kernel_profiler()
        cache = Path(context.cache_dir or DEFAULT_CACHE_DIR)
        lowered, timings = [], []
        for n, (space, arch) in enumerate(resolved, start=1):
            result = profiler.profile(export_architecture(space, arch, cache), cache / "ort-optimized", n_runs=node_runs, n_warmup=NODE_WARMUP)
            lowered.append(result.optimized_model_path)
            timings.append(result.profile.node_latency_ms())
            if progress is not None:
                progress(n, len(resolved))
        self._fit_tables([node_table(m) for m in lowered], timings, y_net, progress)
        self.lowering_ = {"device": context.device, "settings": dict(profiler.graph_settings)}
        self.space_ = context.space
        self.cache_dir_ = str(cache.resolve())
        self.profiling_ = {"device": context.device, "settings": dict(context.device_settings), "node_runs": node_runs}
        return self

    def predict_archs(self, archs: Sequence[str | Architecture], *, context: "ArchContext | None" = None) -> np.ndarray:
        """Predicted latency (ms) of architectures: each is exported (cached) and its lowered graph predicted.

        The space and artifact cache default to those of :meth:`fit_archs`
        (recorded in a saved predictor); an ``Architecture`` names its own space,
        so networks of another space are predicted from the same kernels.
        """
        self._check_fitted()
        saved = getattr(self, "info_", None)  # predictors saved before space_ was recorded keep it in their metadata
        space = context.space if context is not None else self.space_ or (saved.extra.get("space") if saved else None)
        cache = Path((context.cache_dir if context is not None else None) or self.cache_dir_ or DEFAULT_CACHE_DIR)
        resolved = resolve_architectures(list(archs), space)
        return self.predict_graphs([export_architecture(s, a, cache).path for s, a in resolved])

    # --- graph level ---------------------------------------------------------------------------
    def _tables(self, models: Sequence[ModelLike], lowered: bool, lowering: Mapping[str, Any]) -> list[NodeTable]:
        if lowered:
            return [node_table(m) for m in models]
        profiler = profiling_device(lowering["device"], lowering["settings"]).kernel_profiler()
        return [node_table(profiler.lower(m)) for m in models]

    def fit_graphs(
        self,
        models: Sequence[ModelLike],
        node_latency_ms: Sequence[Mapping[str, float]],
        latency_ms: Sequence[float],
        lowered: bool = False,
        progress: ProgressCallback | None = None,
    ) -> "OpsPredictor":
        """Learn kernel latencies from profiled graphs and the overhead from whole-network latencies.

        ``node_latency_ms[i]`` maps node names of the lowered graph ``i`` to
        their latency (``NodeProfile.node_latency_ms()``); ``latency_ms[i]`` is
        the measured latency of network ``i``. Pass ``lowered=True`` when
        ``models`` already are the runtime's optimized graphs
        (``ProfileResult.optimized_model_path``); otherwise they are lowered
        at ``optimization_level``, which must be the one they were profiled at.
        """
        self._check_params()
        n = len(models)
        if len(node_latency_ms) != n or len(latency_ms) != n:
            raise DataError(
                f"need one node-timing map and one latency per graph; got {n} graphs, "
                f"{len(node_latency_ms)} timing maps and {len(latency_ms)} latencies"
            )
        if n < 3:
            raise DataError(f"the ops predictor needs at least 3 profiled networks to fit the overhead, got {n}")
        y_net = check_y(latency_ms)
        return self._fit_tables(self._tables(models, lowered, self._default_lowering()), node_latency_ms, y_net, progress)

    def _fit_tables(
        self,
        tables: Sequence[NodeTable],
        node_latency_ms: Sequence[Mapping[str, float]],
        y_net: np.ndarray,
        progress: ProgressCallback | None,
    ) -> "OpsPredictor":
        """Kernel models from the tables' timed nodes, then the overhead from the networks' latencies."""
        rows, ys = [], []
        kind_names: dict[int, str] = {}
        for i, (t, timings) in enumerate(zip(tables, node_latency_ms)):
            matched = match_node_timings(t.nodes, timings)
            missing = [t.nodes[j].name or t.nodes[j].op_type for j, v in enumerate(matched) if v is None]
            if len(missing) > 0.1 * len(t.nodes):
                raise DataError(
                    f"graph {i}: {len(missing)} of {len(t.nodes)} nodes have no timing (e.g. {missing[:3]}); "
                    "were the timings profiled on this graph, lowered at the same optimization level?"
                )
            for j, v in enumerate(matched):
                if v is None:
                    continue
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise DataError(f"graph {i}: node {t.nodes[j].name!r} has latency {v!r}; expected a number >= 0 ms")
                rows.append(t.X[j])
                ys.append(max(float(v), MIN_NODE_MS))
            kind_names.update({int(x): k for x, k in zip(t.X[:, 0], t.kinds)})
        self.fit(np.array(rows), np.array(ys), progress=progress)
        self.kind_names_ = kind_names
        sums, sizes = self._node_sums(tables)
        self.overhead_ = _fit_overhead(sums, sizes, y_net)
        self.overhead_fitted_ = True
        self.n_graphs_ = len(tables)
        self.network_hash_ = data_hash(np.column_stack([sums, sizes]), y_net)
        return self

    def predict_graphs(self, models: Sequence[ModelLike], lowered: bool = False) -> np.ndarray:
        """Predicted latency (ms) of each graph (lowered first unless ``lowered``)."""
        self._check_fitted()
        tables = self._tables(models, lowered, self.lowering_)
        if not tables:
            return np.zeros(0)
        sums, sizes = self._node_sums(tables)
        scale, o0, o1 = self.overhead_
        return check_predictions(scale * sums + o0 + o1 * sizes, type(self).__name__)

    def _node_sums(self, tables: Sequence[NodeTable]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted kernel time and node count of each graph (one batched prediction)."""
        sizes = np.array([len(t.nodes) for t in tables])
        if sizes.min() == 0:
            raise DataError(f"graph {int(np.argmin(sizes))} has no computing nodes; nothing to predict")
        pred = self.predict(np.vstack([t.X for t in tables]))
        sums = np.bincount(np.repeat(np.arange(len(tables)), sizes), weights=pred, minlength=len(tables))
        return sums, sizes.astype(np.float64)

    def predict_nodes(self, model: ModelLike, lowered: bool = False) -> list[NodePrediction]:
        """Per-node predictions of one graph and the model each came from (for inspection)."""
        self._check_fitted()
        t = self._tables([model], lowered, self.lowering_)[0]
        pred, sources = self._predict_with_source(t.X)
        return [NodePrediction(n.name, n.op_type, k, float(p), s) for n, k, p, s in zip(t.nodes, t.kinds, pred, sources)]

    # --- persistence ------------------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        kinds = {}
        for k, lin in self.linear_.items():
            entry: dict[str, Any] = {"coef": list(lin.coef), "n": self.kind_counts_.get(k, 0), "name": self.kind_names_.get(k, "")}
            if k in self.boosters_:
                fname = f"xgb_kind_{k}.json"
                self.boosters_[k].save_model(str(directory / fname))
                entry["xgboost"] = fname
            kinds[str(k)] = entry
        return {
            "kinds": kinds,
            "overhead": {"scale": self.overhead_[0], "o0_ms": self.overhead_[1], "o1_ms_per_node": self.overhead_[2]},
            "overhead_fitted": self.overhead_fitted_,
            "n_graphs": getattr(self, "n_graphs_", 0),
            "network_hash": getattr(self, "network_hash_", ""),
            "lowering": self.lowering_,
            "space": self.space_,
            "cache_dir": self.cache_dir_,
            "profiling": self.profiling_,
        }

    def _load_state(self, directory: Path, state: Mapping[str, Any]) -> None:
        import xgboost as xgb

        try:
            self.linear_, self.boosters_, self.kind_counts_, self.kind_names_ = {}, {}, {}, {}
            for key, entry in state["kinds"].items():
                k = int(key)
                self.linear_[k] = LinearCost(tuple(float(c) for c in entry["coef"]))
                self.kind_counts_[k] = int(entry["n"])
                if entry["name"]:
                    self.kind_names_[k] = entry["name"]
                if "xgboost" in entry:
                    path = directory / entry["xgboost"]
                    if not path.is_file():
                        raise PersistenceError(f"{directory}: the model file {entry['xgboost']} is missing")
                    booster = xgb.Booster()
                    booster.load_model(str(path))
                    self.boosters_[k] = booster
            o = state["overhead"]
            self.overhead_ = (float(o["scale"]), float(o["o0_ms"]), float(o["o1_ms_per_node"]))
            self.overhead_fitted_ = bool(state["overhead_fitted"])
            self.n_graphs_ = int(state["n_graphs"])
            self.network_hash_ = str(state["network_hash"])
            # predictors saved before these were recorded: lowered at their optimization_level, space in the metadata
            lowering = state.get("lowering") or self._default_lowering()
            self.lowering_ = {"device": str(lowering["device"]), "settings": dict(lowering["settings"])}
            self.space_ = state.get("space")
            self.cache_dir_ = state.get("cache_dir")
            self.profiling_ = dict(state.get("profiling") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise PersistenceError(f"{directory}: malformed ops predictor state ({type(exc).__name__}: {exc})") from None
        for k, cost in self.linear_.items():
            finite_values(f"the linear cost model of kind {k}", cost.coef)
        finite_values("the network overhead", self.overhead_)
        if GLOBAL_KIND not in self.linear_:
            raise PersistenceError(f"{directory}: the ops predictor state lacks the global cost model")


def _fit_overhead(node_sum_ms: np.ndarray, n_nodes: np.ndarray, latency_ms: np.ndarray) -> tuple[float, float, float]:
    """(scale, o0, o1) of ``latency = scale*node_sum + o0 + o1*n_nodes``: robust, on relative residuals."""
    from scipy.optimize import least_squares

    def residual(theta: np.ndarray) -> np.ndarray:
        return (theta[0] * node_sum_ms + theta[1] + theta[2] * n_nodes - latency_ms) / latency_ms

    typical = float(np.median(latency_ms))
    sol = least_squares(
        residual,
        x0=np.array([1.0, 0.0, 0.0]),
        bounds=([0.5, -np.inf, -np.inf], [2.0, np.inf, np.inf]),
        loss="soft_l1",
        f_scale=0.02,
        x_scale=np.array([1.0, 0.01 * typical, 0.01 * typical / float(np.median(n_nodes))]),
    )
    return float(sol.x[0]), float(sol.x[1]), float(sol.x[2])
