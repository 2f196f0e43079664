"""LiteRT (the TFLite interpreter) on the local CPU: what phones and edge boards run.

The interpreter comes from ``ai-edge-litert`` (``pip install 'hwprof[tflite]'``).
``tflite-runtime``, its predecessor, is accepted only as a fallback import and
refused with a clear error under numpy 2: tflite-runtime 2.14 imports there but
crashes when an Interpreter is created, so it is never created.

Settings: ``intra_op_threads`` (the interpreter's ``num_threads``; default 1, 0 = its default),
``xnnpack`` (default on: LiteRT applies its XNNPACK delegate by default; off
selects the op resolver ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``, LiteRT's own
kernels), ``cpu_affinity`` and ``input_seed`` as on ``ort-cpu``. The shared
protocol does the timing; ``DeviceInfo`` records the interpreter, its version
and the delegate.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, ContextManager, Sequence

import numpy as np

from devices.cpu_settings import affinity_supported, parse_bool, pinned_to, validate_cpu_settings
from devices.export.calibration import random_feeds
from hwprof.devices import Device, PreparedModel
from hwprof.errors import DeviceUnavailable, ModelRunError, first_line
from hwprof.hostinfo import cpu_model, package_version
from hwprof.types import DeviceInfo, InputSpec, ModelArtifact

INSTALL_HINT = "pip install 'hwprof[tflite]'"
QUANTIZED_DTYPES = ("int8", "uint8", "int16")


def interpreter_module() -> ModuleType:
    """The interpreter module: ``ai_edge_litert.interpreter``, else a usable ``tflite_runtime.interpreter``.

    DeviceUnavailable says what to install; tflite-runtime under numpy >= 2 is
    refused here, before an Interpreter could crash the process.
    """
    try:
        from ai_edge_litert import interpreter

        return interpreter
    except ImportError as exc:
        litert_missing = exc
    try:
        from tflite_runtime import interpreter as legacy
    except ImportError:
        raise DeviceUnavailable(
            f"litert-cpu: ai-edge-litert is not installed ({litert_missing}); {INSTALL_HINT}"
        ) from None
    numpy_major = int(np.__version__.split(".")[0])
    if numpy_major >= 2:
        version = runtime_version(legacy)
        raise DeviceUnavailable(
            f"litert-cpu: only tflite-runtime {version} is installed, which crashes creating an Interpreter under "
            f"numpy {np.__version__}; {INSTALL_HINT} (ai-edge-litert, its successor)"
        )
    return legacy


def runtime_name(module: ModuleType) -> str:
    return "ai-edge-litert" if module.__name__.startswith("ai_edge_litert") else "tflite-runtime"


def runtime_version(module: ModuleType) -> str:
    """Version of the distribution that provides ``module`` ('unknown' when its metadata is missing)."""
    top = module.__name__.split(".")[0]
    version = getattr(__import__(top), "__version__", None)
    return str(version or package_version(runtime_name(module)) or "unknown")


def open_interpreter(path: str, num_threads: int = 1, xnnpack: bool = True, module: ModuleType | None = None) -> Any:
    """An Interpreter of ``path`` with tensors allocated; ModelRunError naming the file when LiteRT rejects it.

    ``xnnpack=False`` selects ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``
    (LiteRT's own kernels); ``num_threads=0`` leaves the thread count to LiteRT.
    """
    module = module or interpreter_module()
    resolver = module.OpResolverType.AUTO if xnnpack else module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = module.Interpreter(
            model_path=str(path), num_threads=num_threads or None, experimental_op_resolver_type=resolver
        )
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelRunError(f"LiteRT could not load {path}: {first_line(exc)}") from exc
    return interp


def to_tensor(detail: dict[str, Any], value: np.ndarray) -> np.ndarray:
    """``value`` as the input tensor of ``detail`` wants it: quantized with the tensor's scale and zero point when integer."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.name in QUANTIZED_DTYPES and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(np.asarray(value, np.float64) / scale) + zero_point, info.min, info.max).astype(dtype)
    return np.asarray(value).astype(dtype)


def from_tensor(detail: dict[str, Any], value: np.ndarray) -> np.ndarray:
    """An output tensor as float64, dequantized when it is quantized."""
    scale, zero_point = detail["quantization"]
    value = np.asarray(value, dtype=np.float64)
    return (value - zero_point) * scale if np.dtype(detail["dtype"]).name in QUANTIZED_DTYPES and scale else value


def set_inputs(interp: Any, values: Sequence[np.ndarray]) -> None:
    """Set the interpreter's inputs, in order, from float (or already typed) arrays."""
    for detail, value in zip(interp.get_input_details(), values):
        interp.set_tensor(detail["index"], to_tensor(detail, value))


def first_output(interp: Any) -> np.ndarray:
    detail = interp.get_output_details()[0]
    return from_tensor(detail, interp.get_tensor(detail["index"]))


class LiteRtCpuDevice(Device):
    name = "litert-cpu"
    description = "LiteRT (TFLite) interpreter on this machine's CPU, XNNPACK delegate on or off"
    supported_formats = ("tflite",)
    supported_precisions = ("fp32", "int8")  # int8: full-integer models from the tflite exporter
    default_settings = {"intra_op_threads": 1, "xnnpack": True, "cpu_affinity": None, "input_seed": 0}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        validate_cpu_settings(settings, ("intra_op_threads",))
        settings["xnnpack"] = parse_bool("xnnpack", settings["xnnpack"])
        return settings

    def runtime_packages(self) -> tuple[str, ...]:
        return ("ai-edge-litert", "tflite-runtime")

    def check(self) -> DeviceInfo:
        module = interpreter_module()
        if self.settings["cpu_affinity"] is not None and not affinity_supported():
            raise DeviceUnavailable("litert-cpu: cpu_affinity needs os.sched_setaffinity (Linux)")
        return DeviceInfo(
            name=self.name,
            runtime=runtime_name(module),
            runtime_version=runtime_version(module),
            cpu_model=cpu_model(),
            cores_logical=os.cpu_count() or 0,
            settings=dict(self.settings),
            extra={
                "interpreter": module.__name__,
                "delegate": "xnnpack" if self.settings["xnnpack"] else "none",
                "op_resolver": "AUTO" if self.settings["xnnpack"] else "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
                "numpy": np.__version__,
            },
        )

    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        interp = open_interpreter(artifact.path, self.settings["intra_op_threads"], self.settings["xnnpack"])
        details = interp.get_input_details()
        got = [tuple(int(d) for d in detail["shape"]) for detail in details]
        want = [tuple(spec.shape) for spec in artifact.inputs]
        if got != want:
            raise ModelRunError(f"{artifact.path}: model inputs have shapes {got}, the artifact's input spec {want}")
        # quantized inputs get the same float values as an fp32 model, quantized with the tensor's parameters
        specs = [InputSpec(s.name, s.shape, "float32") if s.dtype in QUANTIZED_DTYPES else s for s in artifact.inputs]
        feeds = random_feeds(specs, 1, self.settings["input_seed"])[0]
        try:
            set_inputs(interp, [feeds[spec.name] for spec in artifact.inputs])
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise ModelRunError(f"LiteRT failed to run {artifact.path}: {first_line(exc)}") from exc
        return PreparedModel(artifact, interp.invoke, state=interp)

    def measuring(self) -> ContextManager[None]:
        return pinned_to(self.settings["cpu_affinity"])


__all__ = [
    "INSTALL_HINT",
    "LiteRtCpuDevice",
    "first_output",
    "from_tensor",
    "interpreter_module",
    "open_interpreter",
    "runtime_name",
    "runtime_version",
    "set_inputs",
    "to_tensor",
]
