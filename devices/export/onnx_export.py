"""torch -> ONNX with static shapes, validated by onnx.checker and checked against torch; int8 by static quantization.

``OnnxExporter`` is the ``onnx`` exporter of the registry (fp32) and
``OnnxInt8Exporter`` the ``onnx-int8`` one: the fp32 export, quantized by
onnxruntime's static post-training quantization (QDQ format) calibrated on the
shared calibration set (:mod:`devices.export.calibration`). They are two
exporters so that the cache key of an fp32 file does not depend on the
quantizer's options or onnxruntime's version, which only decide int8 bytes.
Every export is run in onnxruntime on the check inputs before it enters the
cache: fp32 must match torch within 1e-4, int8 reports its top-1 agreement.
Caching by content is the core's (:mod:`hwprof.artifacts`).
``load_onnx_artifact`` describes a user-supplied ONNX file for ``hwprof measure``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from devices.export.calibration import Feeds, calibration_feeds, check_numerics
from hwprof.artifacts import Exporter, file_artifact, sha256_file
from hwprof.errors import ConfigError, ExportError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import InputSpec, ModelArtifact

if TYPE_CHECKING:
    import torch

DEFAULT_OPSET = 17
EXPORTERS = ("legacy", "dynamo")
ACTIVATION_TYPES = ("int8", "uint8")
# Operators of a quantized ONNX model (QDQ or operator-oriented): a file holding one is measured as int8.
INT8_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
})
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def export_onnx(
    model: "torch.nn.Module",
    input_shape: tuple[int, ...],
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    exporter: str = "legacy",
    input_name: str = "input",
) -> None:
    """Export ``model`` with one static-shape float32 input named ``input`` and validate it.

    ``legacy`` is the TorchScript exporter (no extra dependency); ``dynamo``
    is torch.export-based and needs the ``onnxscript`` package.
    """
    import onnx
    import torch

    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; expected one of {', '.join(EXPORTERS)}")
    if exporter == "dynamo" and package_version("onnxscript") is None:
        raise ExportError("the dynamo exporter needs onnxscript: pip install 'hwprof[onnxscript]'")
    model = model.eval()
    example = torch.zeros(*input_shape, dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(out_path),
                input_names=[input_name],
                output_names=["output"],
                opset_version=opset,
                dynamo=(exporter == "dynamo"),
                do_constant_folding=True,
            )
    except Exception as exc:  # torch raises many unrelated types here
        raise ExportError(f"torch -> ONNX export failed: {type(exc).__name__}: {first_line(exc)}") from exc
    try:
        onnx.checker.check_model(str(out_path))
    except Exception as exc:
        raise ExportError(f"exported ONNX model failed validation: {first_line(exc)}") from exc


def load_onnx_artifact(path: str | Path, arch_id: str = "") -> ModelArtifact:
    """Describe a user-supplied ONNX file; static input shapes are required for timing.

    Its precision is int8 when the graph holds quantization operators (:data:`INT8_OPS`), else fp32.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no such model file: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ExportError(f"{path} is not a valid ONNX model: {first_line(exc)}") from exc
    initializers = {i.name for i in model.graph.initializer}
    inputs = []
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        tt = inp.type.tensor_type
        dims = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value <= 0:
                raise ExportError(
                    f"{path}: dimension {axis} of input {inp.name!r} is {d.dim_value}; expected a positive size"
                )
            if not d.HasField("dim_value"):
                raise ExportError(
                    f"{path}: input {inp.name!r} has a dynamic dimension {d.dim_param or '?'}; re-export with static shapes"
                )
            dims.append(int(d.dim_value))
        inputs.append(InputSpec(inp.name, tuple(dims), onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
    quantized = any(node.op_type in INT8_OPS for node in model.graph.node)
    return file_artifact(path, "onnx", inputs, "int8" if quantized else "fp32", arch_id)


def ort_runner(path: str | Path) -> Callable[[Feeds], np.ndarray]:
    """One-thread onnxruntime session of ``path`` as ``feed -> first output`` (for numerics checks)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4  # fatal only, as devices.ort_cpu.ORT_LOG_SEVERITY: a failure is our one-line error
    try:
        session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported model: {first_line(exc)}") from exc
    return lambda feed: session.run(None, feed)[0]


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop the warnings onnxruntime's quantization tools log on the root logger (and Python warnings) while they run."""

    def not_from_onnxruntime(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(not_from_onnxruntime)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(not_from_onnxruntime)


def _one_float_input(name: str, inputs: Sequence[InputSpec]) -> InputSpec:
    if len(inputs) != 1 or inputs[0].dtype != "float32":
        raise ExportError(f"the {name} exporter takes one float32 input, got {[(i.name, i.dtype) for i in inputs]}")
    return inputs[0]


class OnnxExporter(Exporter):
    """torch -> ONNX (fp32), static shapes, validated by ``onnx.checker``; registered as exporter ``onnx``.

    The file is run in onnxruntime on the check inputs at export time: outputs
    differing from torch by more than 1e-4 fail the export; the report is kept
    with the artifact (``exporter["numerics"]``).
    """

    name = "onnx"
    format = "onnx"
    suffix = ".onnx"
    precisions = ("fp32",)

    def __init__(self, opset: int = DEFAULT_OPSET, exporter: str = "legacy") -> None:
        if exporter not in EXPORTERS:
            raise ExportError(f"unknown exporter {exporter!r}; expected one of {', '.join(EXPORTERS)}")
        self.opset = int(opset)
        self.exporter = exporter

    def config(self) -> dict:
        return {"exporter": self.exporter, "opset": self.opset, "torch": package_version("torch")}

    def export(self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str) -> dict[str, Any]:
        self.check_precision(precision)
        return self.export_fp32(module, inputs, out_path)

    def export_fp32(self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path) -> dict[str, Any]:
        """Export, validate and check the numerics of the fp32 file; returns the numerics report."""
        spec = _one_float_input(self.name, inputs)
        export_onnx(module, tuple(spec.shape), out_path, self.opset, self.exporter, input_name=spec.name)
        return check_numerics(module, inputs, ort_runner(out_path), "fp32", f"ONNX export of {type(module).__name__}")


class OnnxInt8Exporter(OnnxExporter):
    """torch -> ONNX int8: the fp32 export, statically quantized by onnxruntime (QDQ); registered as ``onnx-int8``.

    Weights are int8 (per output channel by default), activations ``activation_type``
    with ranges calibrated (``calibrate_method``) on the shared calibration set.
    ``preprocess`` runs onnxruntime's ``quant_pre_process`` (shape inference,
    graph optimisation) first. Intermediate files live in a temporary
    directory outside the cache; only the final file is written to ``out_path``.
    See docs/runtimes-int8-torch.md for how the defaults were chosen.
    """

    name = "onnx-int8"
    precisions = ("int8",)

    def __init__(
        self,
        opset: int = DEFAULT_OPSET,
        exporter: str = "legacy",
        per_channel: bool = True,
        activation_type: str = "int8",
        calibrate_method: str = "minmax",
        preprocess: bool = True,
    ) -> None:
        super().__init__(opset, exporter)
        if activation_type not in ACTIVATION_TYPES:
            raise ConfigError(f"activation_type must be one of {', '.join(ACTIVATION_TYPES)}, got {activation_type!r}")
        if calibrate_method not in CALIBRATION_METHODS:
            raise ConfigError(f"calibrate_method must be one of {', '.join(CALIBRATION_METHODS)}, got {calibrate_method!r}")
        self.per_channel = bool(per_channel)
        self.activation_type = activation_type
        self.calibrate_method = calibrate_method
        self.preprocess = bool(preprocess)

    def config(self) -> dict:
        return {
            **super().config(),
            "quant_format": "qdq",
            "per_channel": self.per_channel,
            "activation_type": self.activation_type,
            "weight_type": "int8",
            "calibrate_method": self.calibrate_method,
            "preprocess": self.preprocess,
            "onnxruntime": package_version("onnxruntime"),
        }

    def export(self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str) -> dict[str, Any]:
        self.check_precision(precision)
        with tempfile.TemporaryDirectory(prefix="hwprof-onnx-int8-") as tmp:
            fp32_path = Path(tmp) / "fp32.onnx"
            fp32_report = self.export_fp32(module, inputs, fp32_path)
            source = fp32_path
            if self.preprocess:
                source = Path(tmp) / "preprocessed.onnx"
                self._preprocess(fp32_path, source)
            int8_path = Path(tmp) / "int8.onnx"
            self._quantize(source, int8_path, calibration_feeds(inputs))
            try:
                import onnx

                onnx.checker.check_model(str(int8_path))
            except Exception as exc:
                raise ExportError(f"the int8 ONNX model failed validation: {first_line(exc)}") from exc
            report = check_numerics(module, inputs, ort_runner(int8_path), "int8", f"ONNX int8 export of {type(module).__name__}")
            shutil.copyfile(int8_path, out_path)
        report["fp32_max_abs_diff"] = fp32_report["max_abs_diff"]
        return report

    @staticmethod
    def _preprocess(src: Path, dst: Path) -> None:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        try:
            with _quiet_quantizer():
                quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)  # static shapes: ONNX inference suffices
        except Exception as exc:  # onnxruntime raises many types here
            raise ExportError(f"onnxruntime's quantization pre-processing failed: {type(exc).__name__}: {first_line(exc)}") from exc

    def _quantize(self, src: Path, dst: Path, feeds: list[Feeds]) -> None:
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.feeds = iter(feeds)

            def get_next(self) -> Feeds | None:
                return next(self.feeds, None)

        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[self.calibrate_method]
        try:
            with _quiet_quantizer():
                quantize_static(
                    str(src),
                    str(dst),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=self.per_channel,
                    activation_type=QuantType.QInt8 if self.activation_type == "int8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=method,
                )
        except Exception as exc:
            raise ExportError(f"onnxruntime int8 quantization failed: {type(exc).__name__}: {first_line(exc)}") from exc


__all__ = [
    "DEFAULT_OPSET",
    "EXPORTERS",
    "OnnxExporter",
    "OnnxInt8Exporter",
    "export_onnx",
    "load_onnx_artifact",
    "ort_runner",
    "sha256_file",
]
