"""torch -> ONNX with static shapes, validated by onnx.checker.

``OnnxExporter`` is the ``onnx`` exporter of the registry; caching by content
is the core's (:mod:`hwprof.artifacts`). ``load_onnx_artifact`` describes a
user-supplied ONNX file for ``hwprof measure``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from hwprof.artifacts import Exporter, sha256_file
from hwprof.errors import ExportError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import InputSpec, ModelArtifact

if TYPE_CHECKING:
    import torch

DEFAULT_OPSET = 17
EXPORTERS = ("legacy", "dynamo")


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
    """Describe a user-supplied ONNX file; static input shapes are required for timing."""
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
        for d in tt.shape.dim:
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise ExportError(
                    f"{path}: input {inp.name!r} has a dynamic dimension {d.dim_param or '?'}; re-export with static shapes"
                )
            dims.append(int(d.dim_value))
        inputs.append(InputSpec(inp.name, tuple(dims), onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
    digest = sha256_file(path)
    return ModelArtifact(
        path=str(path),
        format="onnx",
        sha256=digest,
        size_bytes=path.stat().st_size,
        arch_id=arch_id or f"file:{digest[:16]}",
        inputs=tuple(inputs),
        exporter={"source": "file"},
    )


class OnnxExporter(Exporter):
    """torch -> ONNX (fp32), static shapes, validated by ``onnx.checker``; registered as exporter ``onnx``."""

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

    def export(self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str) -> None:
        self.check_precision(precision)
        if len(inputs) != 1 or inputs[0].dtype != "float32":
            raise ExportError(f"the onnx exporter takes one float32 input, got {[(i.name, i.dtype) for i in inputs]}")
        export_onnx(module, tuple(inputs[0].shape), out_path, self.opset, self.exporter, input_name=inputs[0].name)


__all__ = ["DEFAULT_OPSET", "EXPORTERS", "OnnxExporter", "export_onnx", "load_onnx_artifact", "sha256_file"]
