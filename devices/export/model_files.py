"""User-supplied model files (``hwprof measure FILE``): one reader per format, chosen by the file's suffix."""

from __future__ import annotations

from pathlib import Path

from hwprof.errors import ConfigError
from hwprof.types import ModelArtifact

SUFFIXES = {".onnx": "onnx", ".tflite": "tflite"}


def load_model_file(path: str | Path) -> ModelArtifact:
    """The artifact of an ``.onnx`` or ``.tflite`` file, validated by its format's reader (ExportError when invalid)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        from devices.export.onnx_export import load_onnx_artifact

        return load_onnx_artifact(path)
    if suffix == ".tflite":
        from devices.export.tflite_export import load_tflite_artifact

        return load_tflite_artifact(path)
    raise ConfigError(f"{path}: cannot tell the model format from the suffix {suffix or '(none)'!r}; expected {', '.join(SUFFIXES)}")


__all__ = ["SUFFIXES", "load_model_file"]
