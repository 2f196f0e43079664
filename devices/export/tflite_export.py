"""torch -> TFLite (``.tflite``) with litert-torch, fp32 and full-integer int8.

litert-torch converts the torch module directly (torch.export, then the LiteRT
converter) and keeps the NCHW input. int8 is post-training static
quantization through PT2E: the module is exported, observers are inserted by
litert-torch's ``PT2EQuantizer`` (symmetric, per-channel weights, int8
activations), the observers see the shared calibration set
(:func:`~devices.export.calibration.calibration_feeds`), and the converter
writes a full-integer model (int8 inputs, outputs and kernels).

Every file is run in LiteRT before it enters the cache and compared with the
torch module (:func:`~devices.export.calibration.check_numerics`): fp32 must
agree to the shared tolerance, int8 reports its top-1 agreement.

litert-torch and ai-edge-litert are the ``[tflite]`` extra; without them the
exporter says which extra to install. An operator the converter has no
lowering for is named in the error.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from devices.export.calibration import CALIBRATION_BATCHES, calibration_feeds, check_numerics
from devices.litert_cpu import INSTALL_HINT, first_output, interpreter_module, open_interpreter, set_inputs
from hwprof.artifacts import Exporter, file_artifact
from hwprof.errors import DeviceUnavailable, ExportError, ModelRunError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import InputSpec, ModelArtifact

if TYPE_CHECKING:
    import torch

INT8_SCHEME = "pt2e-static-symmetric-per-channel"
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite file
_NO_LOWERING = re.compile(r"Lowering not found: ([\w.:]+)")
_FX_TARGET = re.compile(r"target=torch\.ops\.([\w.]+)")


def litert_torch_module() -> ModuleType:
    """litert_torch, or ExportError saying which extra to install."""
    try:
        import litert_torch
    except ImportError as exc:
        raise ExportError(f"the tflite exporter needs litert-torch ({exc}); {INSTALL_HINT}") from None
    return litert_torch


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """litert-torch prints a progress tree and torch warnings on every conversion; keep them off the CLI."""
    saved = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if saved is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved


def conversion_error(exc: BaseException, precision: str) -> ExportError:
    """A one-line ExportError for a failed conversion, naming the operator when the converter said which one."""
    text = str(exc)
    match = _NO_LOWERING.search(text) or _FX_TARGET.search(text)
    if match:
        op = match.group(1).rstrip(".:")
        return ExportError(
            f"litert-torch cannot convert operator {op} to TFLite ({precision}): the network uses an operator LiteRT "
            "has no lowering for; replace it, or measure the network in another format (e.g. --device ort-cpu)"
        )
    return ExportError(f"torch -> TFLite ({precision}) conversion failed: {type(exc).__name__}: {first_line(exc)}")


def quantize_int8(module: "torch.nn.Module", example: tuple, inputs: Sequence[InputSpec]) -> tuple[Any, Any]:
    """PT2E post-training static quantization on the shared calibration set -> (quantized graph module, quant_config)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
    )
    graph = torch.export.export(module, example).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for feed in calibration_feeds(inputs):
            prepared(*(torch.from_numpy(feed[spec.name]) for spec in inputs))
    quantized = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(quantized)  # swaps the graph's train-mode ops; the flag the converter checks stays set
    for sub in quantized.modules():
        sub.training = False
    return quantized, quant_config.QuantConfig(pt2e_quantizer=quantizer)


def convert_tflite(module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: str | Path, precision: str) -> None:
    """Write ``module`` as a ``.tflite`` file of ``precision`` (fp32, or full-integer int8 calibrated on the shared set)."""
    import torch

    litert_torch = litert_torch_module()
    module = module.eval()
    example = tuple(torch.zeros(*spec.shape, dtype=torch.float32) for spec in inputs)
    with _quiet_converter(), torch.no_grad():
        try:
            if precision == "int8":
                quantized, config = quantize_int8(module, example, inputs)
                edge = litert_torch.convert(quantized, example, quant_config=config)
            else:
                edge = litert_torch.convert(module, example)
        except Exception as exc:  # torch.export and the converter raise many unrelated types
            raise conversion_error(exc, precision) from exc
        try:
            edge.export(str(out_path))
        except Exception as exc:
            raise ExportError(f"litert-torch could not write {out_path}: {type(exc).__name__}: {first_line(exc)}") from exc


def tflite_runner(path: str | Path) -> Any:
    """``feed -> first output`` through LiteRT (defaults of litert-cpu), for the numerics check."""
    try:
        interp = open_interpreter(str(path))
    except (DeviceUnavailable, ModelRunError) as exc:
        raise ExportError(f"cannot check the exported {path} in LiteRT: {exc}") from exc

    def run(feed: Mapping[str, Any]) -> Any:
        set_inputs(interp, list(feed.values()))
        interp.invoke()
        return first_output(interp)

    return run


class TfliteExporter(Exporter):
    """torch -> TFLite through litert-torch, fp32 or full-integer int8; registered as exporter ``tflite``."""

    name = "tflite"
    format = "tflite"
    suffix = ".tflite"
    precisions = ("fp32", "int8")

    def config(self) -> dict:
        return {
            "converter": "litert-torch",
            "litert_torch": package_version("litert-torch"),
            "torch": package_version("torch"),
            "int8_scheme": INT8_SCHEME,
            "calibration_batches": CALIBRATION_BATCHES,
        }

    def check(self) -> None:
        """Cheap: finds the converter and the runtime of the numerics check without importing them (seconds each)."""
        missing = [dist for dist, mod in (("litert-torch", "litert_torch"), ("ai-edge-litert", "ai_edge_litert")) if find_spec(mod) is None]
        if missing:
            raise ExportError(f"the tflite exporter needs {' and '.join(missing)}; {INSTALL_HINT}")

    def export(
        self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str
    ) -> dict[str, Any]:
        self.check_precision(precision)
        if not inputs or any(spec.dtype != "float32" for spec in inputs):
            raise ExportError(f"the tflite exporter takes float32 inputs, got {[(i.name, i.dtype) for i in inputs]}")
        convert_tflite(module, inputs, out_path, precision)
        what = f"TFLite {precision} export"
        return check_numerics(module, inputs, tflite_runner(out_path), precision, what)


def load_tflite_artifact(path: str | Path, arch_id: str = "") -> ModelArtifact:
    """Describe a user-supplied ``.tflite`` file (for ``hwprof measure``); static input shapes are required.

    A full-integer file (quantized inputs or outputs) is recorded as ``int8``.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no such model file: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != TFLITE_IDENTIFIER:
        raise ExportError(f"{path} is not a TFLite model (no {TFLITE_IDENTIFIER.decode()} file identifier)")
    try:
        interp = open_interpreter(str(path), module=interpreter_module())
    except ModelRunError as exc:
        raise ExportError(f"{path} is not a valid TFLite model: {exc}") from exc
    specs = []
    quantized = False
    for detail in interp.get_input_details():
        signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
        if any(d <= 0 for d in signature):
            raise ExportError(f"{path}: input {detail['name']!r} has a dynamic shape {signature}; re-export with static shapes")
        dtype = detail["dtype"].__name__ if isinstance(detail["dtype"], type) else str(detail["dtype"])
        specs.append(InputSpec(str(detail["name"]), tuple(signature), dtype))
    for detail in [*interp.get_input_details(), *interp.get_output_details()]:
        quantized = quantized or bool(detail["quantization"][0])
    return file_artifact(path, "tflite", specs, "int8" if quantized else "fp32", arch_id)


__all__ = [
    "INT8_SCHEME",
    "TfliteExporter",
    "conversion_error",
    "convert_tflite",
    "litert_torch_module",
    "load_tflite_artifact",
    "quantize_int8",
    "tflite_runner",
]
