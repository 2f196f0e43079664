"""torch -> ``.pt2``: the network as ``torch.export`` captures it (graph + weights), for the ``torch-cpu`` device.

Why this format: the artifact must say exactly what is measured. A
``torch.export`` archive holds the ATen graph and every weight, its bytes are
deterministic (the same network gives the same sha256), and loading it needs
neither the search space's code nor pickled classes. A file that only named
space + architecture + seed would be rebuilt by whatever version of the space
code is installed where it is measured, so its sha256 would not pin the
network; and the exporter contract receives a module, not an architecture.

fp32 only: torch's own int8 path (PT2E quantization) is not used here, so
an int8 request is refused by the registry (no ``pt2`` exporter at int8) and
by the device (``torch-cpu`` measures fp32).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from devices.export.calibration import Feeds, check_numerics
from hwprof.artifacts import Exporter
from hwprof.errors import ExportError, first_line
from hwprof.hostinfo import package_version
from hwprof.types import InputSpec

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """torch.export logs whole tracebacks at WARNING before it raises; the error we raise says it in one line."""
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_pt2(path: str | Path) -> Any:
    """The ``torch.export.ExportedProgram`` stored in ``path`` (the runtime's exception when it is not one)."""
    import torch

    with _quiet_torch_export(), open(path, "rb") as f:  # a file object: the cache's temp names do not end in .pt2
        return torch.export.load(f)


def torch_args(inputs: Sequence[InputSpec], feed: Feeds) -> tuple["torch.Tensor", ...]:
    """The positional tensors of one feed, in the order of the input specs."""
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(feed[spec.name])) for spec in inputs)


class TorchExportExporter(Exporter):
    """torch -> ``.pt2`` (``torch.export``, fp32, static shapes); registered as exporter ``torch-export``.

    The saved archive is loaded back and run on the check inputs at export
    time: outputs must match the torch module within 1e-4.
    """

    name = "torch-export"
    format = "pt2"
    suffix = ".pt2"
    precisions = ("fp32",)

    def __init__(self, strict: bool = False) -> None:
        self.strict = bool(strict)

    def config(self) -> dict:
        return {"strict": self.strict, "torch": package_version("torch")}

    def export(self, module: "torch.nn.Module", inputs: Sequence[InputSpec], out_path: Path, precision: str) -> dict[str, Any]:
        import torch

        self.check_precision(precision)
        module = module.eval()
        example = tuple(torch.zeros(spec.shape, dtype=getattr(torch, spec.dtype)) for spec in inputs)
        what = f"torch.export of {type(module).__name__}"
        try:
            with _quiet_torch_export(), torch.no_grad():
                program = torch.export.export(module, example, strict=self.strict)
        except Exception as exc:  # torch raises many unrelated types here; the first line names the operator
            raise ExportError(f"{what} failed: {type(exc).__name__}: {first_line(exc)}") from exc
        with open(out_path, "wb") as f:
            torch.export.save(program, f)
        try:
            graph = load_pt2(out_path).module()
        except Exception as exc:
            raise ExportError(f"{what}: the saved archive cannot be loaded back: {first_line(exc)}") from exc

        def run(feed: Feeds) -> np.ndarray:
            with torch.no_grad():
                out = graph(*torch_args(inputs, feed))
            return (out[0] if isinstance(out, (tuple, list)) else out).numpy()

        return check_numerics(module, inputs, run, "fp32", what)


__all__ = ["TorchExportExporter", "load_pt2", "torch_args"]
