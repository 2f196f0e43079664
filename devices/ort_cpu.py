"""ONNX Runtime on the local CPU.

Defaults favour reproducible latency over throughput: one intra-op and one
inter-op thread, sequential execution, full graph optimisation (what a
deployment would use). Every setting is recorded with each measurement.
"""

from __future__ import annotations

from typing import Any, ContextManager

import numpy as np

from devices.cpu_settings import local_device_info, parse_affinity, parse_bool, pinned_to, validate_cpu_settings
from devices.export.calibration import random_feeds
from hwprof.devices import Device, PreparedModel
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import DeviceInfo, ModelArtifact

_OPT_LEVELS = ("disable", "basic", "extended", "all")
_EXEC_MODES = ("sequential", "parallel")
# Fatal only: onnxruntime logs a failing kernel at ERROR (3) on stderr, in colour and over several lines,
# before raising the same failure, which hwprof reports in one line naming the file.
ORT_LOG_SEVERITY = 4


class OrtCpuDevice(Device):
    name = "ort-cpu"
    description = "ONNX Runtime, CPU execution provider, on this machine"
    supported_formats = ("onnx",)
    supported_precisions = ("fp32", "int8")  # int8: QDQ models from the onnx-int8 exporter, run by ORT's integer kernels
    default_settings = {
        "intra_op_threads": 1,
        "inter_op_threads": 1,
        "graph_optimization_level": "all",
        "execution_mode": "sequential",
        "allow_spinning": True,
        "cpu_affinity": None,
        "input_seed": 0,
    }

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        validate_cpu_settings(settings, ("intra_op_threads", "inter_op_threads"))
        if settings["graph_optimization_level"] not in _OPT_LEVELS:
            raise ConfigError(
                f"graph_optimization_level must be one of {', '.join(_OPT_LEVELS)}, got {settings['graph_optimization_level']!r}"
            )
        if settings["execution_mode"] not in _EXEC_MODES:
            raise ConfigError(f"execution_mode must be one of {', '.join(_EXEC_MODES)}, got {settings['execution_mode']!r}")
        settings["allow_spinning"] = parse_bool("allow_spinning", settings["allow_spinning"])
        return settings

    def runtime_packages(self) -> tuple[str, ...]:
        return ("onnxruntime",)

    def runtime(self):
        """The onnxruntime module, or DeviceUnavailable when it is not installed."""
        try:
            import onnxruntime
        except ImportError as exc:
            raise DeviceUnavailable(f"ort-cpu: onnxruntime is not installed ({exc}); pip install onnxruntime") from exc
        return onnxruntime

    def check(self) -> DeviceInfo:
        ort = self.runtime()
        providers = ort.get_available_providers()
        if "CPUExecutionProvider" not in providers:
            raise DeviceUnavailable(f"ort-cpu: CPUExecutionProvider missing from onnxruntime (have {providers})")
        return local_device_info(self, "onnxruntime", ort.__version__, {"providers": list(providers), "onnx": package_version("onnx")})

    def session_options(self):
        """SessionOptions carrying this device's settings (callers may add e.g. profiling)."""
        ort = self.runtime()
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.settings["intra_op_threads"]
        so.inter_op_num_threads = self.settings["inter_op_threads"]
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.settings["graph_optimization_level"]]
        so.execution_mode = (
            ort.ExecutionMode.ORT_SEQUENTIAL
            if self.settings["execution_mode"] == "sequential"
            else ort.ExecutionMode.ORT_PARALLEL
        )
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.settings["allow_spinning"] else "0")
        so.log_severity_level = ORT_LOG_SEVERITY
        return so

    def make_inputs(self, artifact: ModelArtifact) -> dict[str, np.ndarray]:
        return random_feeds(artifact.inputs, 1, self.settings["input_seed"])[0]

    def open_session(self, artifact: ModelArtifact, sess_options: Any = None):
        """An InferenceSession for the artifact; ModelRunError naming the file when it is rejected."""
        ort = self.runtime()
        try:
            return ort.InferenceSession(
                artifact.path,
                sess_options=sess_options if sess_options is not None else self.session_options(),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:
            raise ModelRunError(f"onnxruntime could not load {artifact.path}: {first_line(exc)}") from exc

    def run_checked(self, session: Any, artifact: ModelArtifact, feeds: dict[str, np.ndarray]) -> None:
        """One inference; ModelRunError naming the file when the runtime fails."""
        try:
            session.run(None, feeds)
        except Exception as exc:
            raise ModelRunError(f"onnxruntime failed to run {artifact.path}: {first_line(exc)}") from exc

    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        session = self.open_session(artifact)
        feeds = self.make_inputs(artifact)
        expected = {i.name for i in session.get_inputs()}
        if expected != set(feeds):
            raise ModelRunError(f"model inputs {sorted(expected)} do not match the artifact's input spec {sorted(feeds)}")
        self.run_checked(session, artifact, feeds)
        return PreparedModel(artifact, lambda: session.run(None, feeds), state=session)

    def measuring(self) -> ContextManager[None]:
        return self.pinned()

    def pinned(self) -> ContextManager[None]:
        """Apply the cpu_affinity setting for the duration of the block, then restore the previous one."""
        return pinned_to(self.settings["cpu_affinity"])

    def kernel_profiler(self) -> Any:
        """A ``devices.ort_profile.KernelProfiler``: per-kernel timings and the executed graph under these settings.

        Its presence is the capability the ``ops`` predictor looks for in a device.
        """
        from devices.ort_profile import KernelProfiler

        return KernelProfiler(self)


__all__ = ["OrtCpuDevice", "parse_affinity", "parse_bool"]  # the parsers live in devices.cpu_settings
