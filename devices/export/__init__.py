"""Exporters: torch -> ONNX (here), cached on disk by content hash."""

from devices.export.onnx_export import ArtifactCache, export_onnx, load_onnx_artifact

__all__ = ["ArtifactCache", "export_onnx", "load_onnx_artifact"]
