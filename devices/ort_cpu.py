"""ONNX Runtime on the local CPU.

Defaults favour reproducible latency over throughput: one intra-op and one
inter-op thread, sequential execution, full graph optimisation (what a
deployment would use). Every setting is recorded with each measurement.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, ContextManager, Iterator

import numpy as np

from hwprof.devices import Device, PreparedModel
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError, first_line
from hwprof.hostinfo import cpu_model, package_version
from hwprof.types import DeviceInfo, ModelArtifact

_OPT_LEVELS = ("disable", "basic", "extended", "all")
_EXEC_MODES = ("sequential", "parallel")


def parse_affinity(value: Any) -> tuple[int, ...] | None:
    """Core ids from '0,2-3', 0, (0, '2-3') or [0, 2, 3]; None/'' -> None (no pinning)."""
    if value is None or value == "" or value == () or value == []:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    cores: set[int] = set()
    for part in parts:
        try:
            if isinstance(part, bool):
                raise ValueError
            if isinstance(part, int):
                cores.add(part)
                continue
            text = str(part).strip()
            if "-" in text.lstrip("-"):
                lo, hi = text.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError
                cores.update(range(int(lo), int(hi) + 1))
            elif text:
                cores.add(int(text))
        except ValueError:
            raise ConfigError(f"cpu_affinity must look like '0' or '0,2-3', got {value!r}") from None
    if any(c < 0 for c in cores):
        raise ConfigError(f"cpu_affinity core ids must be >= 0, got {value!r}")
    return tuple(sorted(cores))


def parse_bool(name: str, value: Any) -> bool:
    """True/False, 1/0 or the words true/false/yes/no/on/off; anything else is a ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise ConfigError(f"{name} must be true or false, got {value!r}")


class OrtCpuDevice(Device):
    name = "ort-cpu"
    description = "ONNX Runtime, CPU execution provider, on this machine"
    supported_formats = ("onnx",)
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
        for key in ("intra_op_threads", "inter_op_threads"):
            try:
                settings[key] = int(settings[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{key} must be an integer, got {settings[key]!r}") from None
            if settings[key] < 0:
                raise ConfigError(f"{key} must be >= 0 (0 = runtime default), got {settings[key]}")
        if settings["graph_optimization_level"] not in _OPT_LEVELS:
            raise ConfigError(
                f"graph_optimization_level must be one of {', '.join(_OPT_LEVELS)}, got {settings['graph_optimization_level']!r}"
            )
        if settings["execution_mode"] not in _EXEC_MODES:
            raise ConfigError(f"execution_mode must be one of {', '.join(_EXEC_MODES)}, got {settings['execution_mode']!r}")
        settings["allow_spinning"] = parse_bool("allow_spinning", settings["allow_spinning"])
        affinity = parse_affinity(settings["cpu_affinity"])
        if affinity is not None and hasattr(os, "sched_getaffinity"):
            allowed = os.sched_getaffinity(0)
            bad = [c for c in affinity if c not in allowed]
            if bad:
                raise ConfigError(f"cpu_affinity cores {bad} are not available here (allowed: {sorted(allowed)})")
        settings["cpu_affinity"] = list(affinity) if affinity is not None else None
        try:
            settings["input_seed"] = int(settings["input_seed"])
        except (TypeError, ValueError):
            raise ConfigError(f"input_seed must be an integer, got {settings['input_seed']!r}") from None
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
        if self.settings["cpu_affinity"] is not None and not hasattr(os, "sched_setaffinity"):
            raise DeviceUnavailable("ort-cpu: cpu_affinity needs os.sched_setaffinity (Linux)")
        return DeviceInfo(
            name=self.name,
            runtime="onnxruntime",
            runtime_version=ort.__version__,
            cpu_model=cpu_model(),
            cores_logical=os.cpu_count() or 0,
            settings=dict(self.settings),
            extra={"providers": list(providers), "onnx": package_version("onnx")},
        )

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
        so.log_severity_level = 3
        return so

    def make_inputs(self, artifact: ModelArtifact) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.settings["input_seed"])
        return {
            spec.name: rng.standard_normal(spec.shape).astype(spec.dtype)
            for spec in artifact.inputs
        }

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

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Apply the cpu_affinity setting for the duration of the block, then restore the previous one."""
        cores = self.settings["cpu_affinity"]
        if cores is None or not hasattr(os, "sched_setaffinity"):
            yield
            return
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, set(cores))
        try:
            yield
        finally:
            os.sched_setaffinity(0, saved)

    def kernel_profiler(self) -> Any:
        """A ``devices.ort_profile.KernelProfiler``: per-kernel timings and the executed graph under these settings.

        Its presence is the capability the ``ops`` predictor looks for in a device.
        """
        from devices.ort_profile import KernelProfiler

        return KernelProfiler(self)
