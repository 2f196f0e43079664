"""Exporters (torch -> ONNX fp32/int8, torch -> .pt2 here), registered by format in the ``hwprof.exporters`` entry-point group."""

from devices.export.onnx_export import OnnxExporter, OnnxInt8Exporter, export_onnx, load_onnx_artifact

__all__ = ["OnnxExporter", "OnnxInt8Exporter", "export_onnx", "load_onnx_artifact"]
