"""Per-node latencies from onnxruntime's built-in profiler.

An op-level predictor learns from what the runtime actually executes: the
optimized graph, where Conv+BN+ReLU are one fused node and an Add may be
folded into the convolution before it. ``SessionOptions.enable_profiling``
writes a Chrome trace with one ``cat == "Node"`` event per executed kernel
(``<node name>_kernel_time``, duration in microseconds, ``args.op_name`` and
the input/output shapes), and ``optimized_model_filepath`` saves the graph
those names refer to.

:func:`parse_profile` is a pure function over the trace text, so it is tested
on a recorded real trace; :func:`profile_nodes` runs a model with the same
session settings as :class:`~devices.ort_cpu.OrtCpuDevice`. A
:class:`KernelProfiler` (``OrtCpuDevice.kernel_profiler()``) is what an
op-level predictor asks a device for: kernel timings and the graph the runtime
executes, both under the device's settings.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from hwprof import registry
from hwprof.errors import ConfigError, DataError, first_line
from hwprof.types import ModelArtifact

if TYPE_CHECKING:
    import onnx

    from devices.ort_cpu import OrtCpuDevice

KERNEL_SUFFIX = "_kernel_time"
RUN_EVENT = "model_run"
PROFILE_FORMAT_VERSION = 1
NODE_STATISTICS = ("median", "min")

Shape = tuple[int, ...]


@dataclass(frozen=True)
class NodeTiming:
    """One executed node of the optimized graph and its duration in every measured run."""

    name: str
    op_type: str
    provider: str
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    samples_us: tuple[float, ...]  # one per measured run (0.0 in a run where the node did not execute)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_us)) / 1000.0

    @property
    def min_ms(self) -> float:
        """Fastest run: on a shared, loaded host the least contended estimate of the kernel's cost."""
        return float(np.min(self.samples_us)) / 1000.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "provider": self.provider,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "samples_us": list(self.samples_us),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "NodeTiming":
        return cls(
            name=d["name"],
            op_type=d["op_type"],
            provider=d.get("provider", ""),
            input_shapes=tuple(tuple(int(x) for x in s) for s in d["input_shapes"]),
            output_shapes=tuple(tuple(int(x) for x in s) for s in d["output_shapes"]),
            samples_us=tuple(float(x) for x in d["samples_us"]),
        )


@dataclass(frozen=True)
class NodeProfile:
    """Parsed trace: nodes in execution order plus the run-level totals."""

    nodes: tuple[NodeTiming, ...]
    run_total_us: tuple[float, ...]  # ``model_run`` durations of the measured runs
    node_sum_us: tuple[float, ...]  # sum of node durations inside each measured run
    n_skipped_runs: int

    @property
    def n_runs(self) -> int:
        return len(self.run_total_us)

    @property
    def run_median_ms(self) -> float:
        return float(np.median(self.run_total_us)) / 1000.0

    @property
    def node_sum_median_ms(self) -> float:
        """Median over runs of the summed node time (what kernels alone cost per inference)."""
        return float(np.median(self.node_sum_us)) / 1000.0

    @property
    def overhead_median_ms(self) -> float:
        """Median over runs of (run total - node sum): executor, allocation and profiler cost."""
        diffs = np.asarray(self.run_total_us) - np.asarray(self.node_sum_us)
        return float(np.median(diffs)) / 1000.0

    def node_latency_ms(self, statistic: str = "median") -> dict[str, float]:
        """Latency per node name (``median`` or ``min`` over runs): an op-level predictor's target."""
        if statistic not in NODE_STATISTICS:
            raise ConfigError(f"statistic must be one of {', '.join(NODE_STATISTICS)}, got {statistic!r}")
        return {n.name: (n.median_ms if statistic == "median" else n.min_ms) for n in self.nodes}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": PROFILE_FORMAT_VERSION,
            "nodes": [n.to_json() for n in self.nodes],
            "run_total_us": list(self.run_total_us),
            "node_sum_us": list(self.node_sum_us),
            "n_skipped_runs": self.n_skipped_runs,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "NodeProfile":
        version = d.get("format_version")
        if version != PROFILE_FORMAT_VERSION:
            raise DataError(f"node profile format version {version!r} is not supported (expected {PROFILE_FORMAT_VERSION})")
        return cls(
            nodes=tuple(NodeTiming.from_json(n) for n in d["nodes"]),
            run_total_us=tuple(float(x) for x in d["run_total_us"]),
            node_sum_us=tuple(float(x) for x in d["node_sum_us"]),
            n_skipped_runs=int(d["n_skipped_runs"]),
        )


def _shapes(entries: Any) -> tuple[Shape, ...]:
    """``[{"float": [1, 16, 32, 32]}, ...]`` -> ((1, 16, 32, 32), ...)."""
    out = []
    for entry in entries or ():
        if isinstance(entry, Mapping) and entry:
            dims = next(iter(entry.values()))
            out.append(tuple(int(x) for x in dims))
    return tuple(out)


def parse_profile(text: str, skip_runs: int = 0) -> NodeProfile:
    """Per-node durations of every ``model_run`` after the first ``skip_runs`` (the warm-up).

    Node events are assigned to the run whose time span contains them, so the
    trace may hold any number of runs; a node that executes several times in
    one run (inside a loop) has its durations summed for that run.
    """
    if skip_runs < 0:
        raise ConfigError(f"skip_runs must be >= 0, got {skip_runs}")
    try:
        events = json.loads(text)
    except ValueError as exc:
        raise DataError(f"onnxruntime profile is not valid JSON: {exc}") from None
    if not isinstance(events, list):
        raise DataError(f"onnxruntime profile must be a JSON list of trace events, got {type(events).__name__}")
    runs = sorted(
        (float(e["ts"]), float(e["dur"]))
        for e in events
        if isinstance(e, Mapping) and e.get("cat") == "Session" and e.get("name") == RUN_EVENT
    )
    if len(runs) <= skip_runs:
        raise DataError(f"profile holds {len(runs)} '{RUN_EVENT}' event(s); need more than the {skip_runs} to skip")
    runs = runs[skip_runs:]
    starts = np.array([ts for ts, _ in runs])
    n = len(runs)

    per_node: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    sums = np.zeros(n)
    for e in events:
        if not isinstance(e, Mapping) or e.get("cat") != "Node":
            continue
        name = str(e.get("name", ""))
        if not name.endswith(KERNEL_SUFFIX):
            continue  # fence/other markers
        ts, dur = float(e["ts"]), float(e["dur"])
        i = int(np.searchsorted(starts, ts, side="right")) - 1
        if i < 0 or ts > runs[i][0] + runs[i][1]:
            continue  # a skipped (warm-up) run or outside any run
        node = name[: -len(KERNEL_SUFFIX)]
        rec = per_node.get(node)
        args = e.get("args") or {}
        if rec is None:
            rec = {
                "op_type": str(args.get("op_name", "")),
                "provider": str(args.get("provider", "")),
                "in": _shapes(args.get("input_type_shape")),
                "out": _shapes(args.get("output_type_shape")),
                "us": np.zeros(n),
                "first_ts": ts - runs[i][0],
            }
            per_node[node] = rec
            order.append(node)
        rec["us"][i] += dur
        sums[i] += dur
    if not per_node:
        raise DataError("profile holds no node events inside the measured runs (was profiling enabled?)")
    # Execution order: by offset from the start of the run in which the node first appeared.
    order.sort(key=lambda k: per_node[k]["first_ts"])
    nodes = tuple(
        NodeTiming(
            name=k,
            op_type=per_node[k]["op_type"],
            provider=per_node[k]["provider"],
            input_shapes=per_node[k]["in"],
            output_shapes=per_node[k]["out"],
            samples_us=tuple(float(x) for x in per_node[k]["us"]),
        )
        for k in order
    )
    return NodeProfile(
        nodes=nodes,
        run_total_us=tuple(dur for _, dur in runs),
        node_sum_us=tuple(float(x) for x in sums),
        n_skipped_runs=skip_runs,
    )


@dataclass(frozen=True)
class ProfileResult:
    """A parsed profile plus the optimized graph its node names refer to."""

    profile: NodeProfile
    optimized_model_path: str
    settings: Mapping[str, Any]
    trace_path: str | None = None  # kept only when asked for


def profile_nodes(
    artifact: ModelArtifact,
    out_dir: str | os.PathLike[str],
    n_runs: int = 20,
    n_warmup: int = 5,
    device: OrtCpuDevice | None = None,
    keep_trace: bool = False,
) -> ProfileResult:
    """Run ``artifact`` ``n_warmup + n_runs`` times with the profiler on; parse the measured runs.

    The session uses ``device``'s settings (threads, optimisation level,
    spinning, pinning), so node times add up to what the device measures.
    The optimized graph is written to ``out_dir/<sha256[:16]>.opt.onnx``.
    """
    if n_runs < 1 or n_warmup < 0:
        raise ConfigError(f"need n_runs >= 1 and n_warmup >= 0, got n_runs={n_runs}, n_warmup={n_warmup}")
    if artifact.format != "onnx":
        raise ConfigError(f"onnxruntime profiles ONNX models, not {artifact.format!r}")
    device = device or registry.get_device("ort-cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opt_path = out / f"{artifact.sha256[:16]}.opt.onnx"
    with tempfile.TemporaryDirectory(prefix="hwprof-ortprof-") as tmp:
        so = device.session_options()
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "trace")
        so.optimized_model_filepath = str(opt_path)
        with device.pinned():
            session = device.open_session(artifact, so)
            feeds = device.make_inputs(artifact)
            for _ in range(n_warmup + n_runs):
                device.run_checked(session, artifact, feeds)
            trace = Path(session.end_profiling())
        text = trace.read_text()
        kept = None
        if keep_trace:
            kept_path = out / f"{artifact.sha256[:16]}.trace.json"
            kept_path.write_text(text)
            kept = str(kept_path)
    profile = parse_profile(text, skip_runs=n_warmup)
    if profile.n_runs != n_runs:
        raise DataError(f"expected {n_runs} measured runs in the trace, found {profile.n_runs}")
    return ProfileResult(profile=profile, optimized_model_path=str(opt_path), settings=dict(device.settings), trace_path=kept)


def summarize_profile(profile: NodeProfile) -> dict[str, float]:
    """Run-level numbers worth logging: totals, node sum, overhead and its share."""
    total = profile.run_median_ms
    node_sum = profile.node_sum_median_ms
    return {
        "run_median_ms": total,
        "node_sum_median_ms": node_sum,
        "overhead_median_ms": profile.overhead_median_ms,
        "overhead_fraction": (total - node_sum) / total if total > 0 else math.nan,
        "n_nodes": float(len(profile.nodes)),
        "n_runs": float(profile.n_runs),
    }


class KernelProfiler:
    """What an op-level predictor needs from an onnxruntime CPU device: kernel timings and the executed graph.

    Both use the device's own session settings, so the nodes a predictor is
    trained on (profiled) and predicts (lowered) are the same nodes.
    """

    def __init__(self, device: OrtCpuDevice) -> None:
        self.device = device

    @property
    def graph_settings(self) -> dict[str, Any]:
        """The device settings that decide the executed graph: enough to lower graphs on another machine."""
        return {"graph_optimization_level": self.device.settings["graph_optimization_level"]}

    def profile(self, artifact: ModelArtifact, out_dir: str | os.PathLike[str], n_runs: int = 20, n_warmup: int = 5) -> ProfileResult:
        """Per-node timings of ``artifact`` and its optimized graph (see :func:`profile_nodes`)."""
        return profile_nodes(artifact, out_dir, n_runs=n_runs, n_warmup=n_warmup, device=self.device)

    def lower(self, model: "str | os.PathLike[str] | onnx.ModelProto | ModelArtifact") -> "onnx.ModelProto":
        """The graph onnxruntime would execute (its optimizer's output).

        Only a session is created, to run the graph optimizer; nothing is executed.
        """
        import onnx

        ort = self.device.runtime()
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(getattr(model, "path", model))
        with tempfile.TemporaryDirectory(prefix="hwprof-lower-") as tmp:
            so = self.device.session_options()
            so.optimized_model_filepath = str(Path(tmp) / "lowered.onnx")
            try:
                ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                raise DataError(f"onnxruntime could not load the graph to lower it: {first_line(exc)}") from exc
            return onnx.load(so.optimized_model_filepath)
