"""Exporters (torch -> ONNX here), registered by format in the ``hwprof.exporters`` entry-point group."""

from devices.export.onnx_export import OnnxExporter, export_onnx, load_onnx_artifact

__all__ = ["OnnxExporter", "export_onnx", "load_onnx_artifact"]
