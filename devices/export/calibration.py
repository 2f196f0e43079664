"""Calibration inputs and numerics checks shared by every exporter.

Post-training quantization (ONNX int8, TFLite int8) calibrates on the same
small deterministic set of inputs, and every exported file is checked against
the torch module it came from before it enters the artifact cache:

- fp32: the largest absolute difference of the outputs (logits) over
  ``CHECK_BATCHES`` random inputs must be at most ``FP32_TOLERANCE`` times
  the logits' scale (their largest magnitude, at least 1), or the export fails
  (:class:`~hwprof.errors.ExportError`). The scale matters: untrained NB201
  networks reach logits of 2,000, where one float32 step is 2.4e-4 and
  torch's own fp32 result differs from its fp64 one by 2.6e-4;
- int8: quantization changes the numbers by design, so the check reports the
  top-1 agreement with the fp32 torch outputs over the same inputs (and the
  largest absolute difference) instead of failing.

The report is returned by the exporter and kept with the artifact (cache
metadata and the store's artifact record, under ``exporter["numerics"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hwprof.errors import ExportError
from hwprof.types import InputSpec

if TYPE_CHECKING:
    import torch

CALIBRATION_SEED = 20240601  # fixed: the same calibration set for every network and exporter
CALIBRATION_BATCHES = 16
CHECK_SEED = 7  # inputs of the numerics check (different from the calibration set)
CHECK_BATCHES = 8
FP32_TOLERANCE = 1e-4

Feeds = dict[str, np.ndarray]


def random_feeds(inputs: Sequence[InputSpec], n: int, seed: int) -> list[Feeds]:
    """``n`` deterministic standard-normal input sets (one array per input spec, its shape and dtype)."""
    rng = np.random.default_rng(seed)
    return [{spec.name: rng.standard_normal(spec.shape).astype(spec.dtype) for spec in inputs} for _ in range(n)]


def calibration_feeds(inputs: Sequence[InputSpec], n: int = CALIBRATION_BATCHES) -> list[Feeds]:
    """The calibration set of post-training quantization (same for every exporter)."""
    return random_feeds(inputs, n, CALIBRATION_SEED)


def check_feeds(inputs: Sequence[InputSpec], n: int = CHECK_BATCHES) -> list[Feeds]:
    """The inputs the numerics check compares outputs on."""
    return random_feeds(inputs, n, CHECK_SEED)


def torch_outputs(module: "torch.nn.Module", inputs: Sequence[InputSpec], feeds: Sequence[Feeds]) -> list[np.ndarray]:
    """The module's first output for each feed (eval mode, no grad), as float64 arrays."""
    import torch

    module = module.eval()
    out = []
    with torch.no_grad():
        for feed in feeds:
            args = [torch.from_numpy(np.ascontiguousarray(feed[spec.name])) for spec in inputs]
            result = module(*args)
            if isinstance(result, (tuple, list)):
                result = result[0]
            out.append(result.detach().cpu().numpy().astype(np.float64))
    return out


def compare_outputs(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], precision: str, what: str) -> dict[str, Any]:
    """The numerics report of ``candidate`` against ``reference``; ExportError when an fp32 export disagrees.

    ``what`` names the exported file in the error message.
    """
    if len(reference) != len(candidate):
        raise ExportError(f"{what}: numerics check got {len(candidate)} outputs for {len(reference)} inputs")
    max_abs = 0.0
    scale = 1.0  # the largest reference magnitude, at least 1: fp32 rounding grows with it
    agree = 0
    total = 0
    for ref, got in zip(reference, candidate):
        got = np.asarray(got, dtype=np.float64)
        if got.size != ref.size:
            raise ExportError(f"{what}: output has {got.size} values, the torch model {ref.size} (shape {list(ref.shape)})")
        got = got.reshape(ref.shape)
        if not np.all(np.isfinite(got)):
            raise ExportError(f"{what}: the exported model produced non-finite outputs")
        max_abs = max(max_abs, float(np.max(np.abs(got - ref))) if ref.size else 0.0)
        scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 0.0)
        rows_ref = ref.reshape(ref.shape[0], -1) if ref.ndim > 1 else ref.reshape(1, -1)
        rows_got = got.reshape(rows_ref.shape)
        agree += int(np.sum(np.argmax(rows_ref, axis=1) == np.argmax(rows_got, axis=1)))
        total += rows_ref.shape[0]
    report: dict[str, Any] = {
        "precision": precision,
        "inputs_checked": len(reference),
        "max_abs_diff": max_abs,
        "top1_agreement": agree / total if total else 1.0,
    }
    if precision == "fp32":
        tolerance = FP32_TOLERANCE * scale
        report["tolerance"] = tolerance
        report["output_scale"] = scale
        if not max_abs <= tolerance:
            raise ExportError(
                f"{what}: outputs differ from the torch model by up to {max_abs:.3g} "
                f"(fp32 tolerance {FP32_TOLERANCE:g} x output scale {scale:.3g} = {tolerance:.3g})"
            )
    return report


def check_numerics(
    module: "torch.nn.Module",
    inputs: Sequence[InputSpec],
    run: Callable[[Feeds], np.ndarray],
    precision: str,
    what: str,
    n: int = CHECK_BATCHES,
) -> dict[str, Any]:
    """Run ``run`` (the exported file in its runtime) and the torch module on the check inputs and compare."""
    feeds = check_feeds(inputs, n)
    reference = torch_outputs(module, inputs, feeds)
    candidate = []
    for feed in feeds:
        try:
            candidate.append(np.asarray(run(feed)))
        except ExportError:
            raise
        except Exception as exc:  # the runtime's own error types
            raise ExportError(f"{what}: the exported model failed to run in its runtime: {type(exc).__name__}: {exc}") from exc
    return compare_outputs(reference, candidate, precision, what)


__all__ = [
    "CALIBRATION_BATCHES",
    "CALIBRATION_SEED",
    "CHECK_BATCHES",
    "FP32_TOLERANCE",
    "calibration_feeds",
    "check_feeds",
    "check_numerics",
    "compare_outputs",
    "random_feeds",
    "torch_outputs",
]
