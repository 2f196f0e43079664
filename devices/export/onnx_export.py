"""torch -> ONNX with static shapes, validated by onnx.checker, cached by content hash.

The cache key hashes everything that determines the file (architecture, input
shape, opset, exporter, torch version, weight seed), so a second profiling run
reuses the file; the file's own sha256 is recorded and re-checked on reuse, so
a truncated or edited cache entry is rebuilt instead of silently measured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from hwprof.errors import ExportError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import InputSpec, ModelArtifact, stable_hash

if TYPE_CHECKING:
    import torch

log = logging.getLogger("hwprof")

DEFAULT_OPSET = 17
EXPORTERS = ("legacy", "dynamo")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(
    model: "torch.nn.Module",
    input_shape: tuple[int, ...],
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    exporter: str = "legacy",
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
                input_names=["input"],
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


class ArtifactCache:
    """Content-addressed cache of exported models under ``root/onnx``."""

    def __init__(self, root: str | Path, opset: int = DEFAULT_OPSET, exporter: str = "legacy") -> None:
        self.root = Path(root)
        self.opset = opset
        self.exporter = exporter

    def key(self, arch_key: dict, input_shape: tuple[int, ...], seed: int) -> str:
        return stable_hash(
            {
                "arch": arch_key,
                "input_shape": list(input_shape),
                "opset": self.opset,
                "exporter": self.exporter,
                "torch": package_version("torch"),
                "seed": seed,
            },
            length=32,
        )

    def get_or_export(
        self,
        arch_id: str,
        arch_key: dict,
        build: Callable[[], "torch.nn.Module"],
        input_shape: tuple[int, ...],
        seed: int = 0,
    ) -> ModelArtifact:
        """Return the cached artifact, exporting (atomically) if absent or corrupt."""
        key = self.key(arch_key, input_shape, seed)
        folder = self.root / "onnx"
        model_path = folder / f"{key}.onnx"
        meta_path = folder / f"{key}.json"
        cached = self._read_cached(model_path, meta_path)
        if cached is not None:
            return cached
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create artifact cache {folder}: {exc.strerror or exc}") from exc
        fd, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=folder)
        os.close(fd)
        try:
            export_onnx(build(), input_shape, tmp_name, self.opset, self.exporter)
            digest = sha256_file(tmp_name)
            os.replace(tmp_name, model_path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        artifact = ModelArtifact(
            path=str(model_path),
            format="onnx",
            sha256=digest,
            size_bytes=model_path.stat().st_size,
            arch_id=arch_id,
            inputs=(InputSpec("input", tuple(input_shape), "float32"),),
            exporter={"exporter": self.exporter, "opset": self.opset, "torch": package_version("torch"), "seed": seed, "key": key},
        )
        meta = {
            "sha256": digest,
            "arch_id": arch_id,
            "arch": arch_key,
            "inputs": artifact.inputs_json(),
            "exporter": dict(artifact.exporter),
        }
        meta_path.write_text(json.dumps(meta, sort_keys=True, indent=1))
        return artifact

    def _read_cached(self, model_path: Path, meta_path: Path) -> ModelArtifact | None:
        if not (model_path.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            digest = sha256_file(model_path)
        except (OSError, ValueError):
            return None
        if digest != meta.get("sha256"):
            log.warning("cached model %s does not match its recorded sha256; re-exporting", model_path)
            return None
        return ModelArtifact(
            path=str(model_path),
            format="onnx",
            sha256=digest,
            size_bytes=model_path.stat().st_size,
            arch_id=meta["arch_id"],
            inputs=tuple(InputSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in meta["inputs"]),
            exporter=meta["exporter"],
        )
