"""The shared numerics check (devices/export/calibration.py): fp32 tolerance relative to the logits' scale."""

import numpy as np
import pytest

from devices.export.calibration import FP32_TOLERANCE, compare_outputs
from hwprof.errors import ExportError


def logits(scale, seed=0):
    return [np.random.default_rng(seed + i).standard_normal((1, 10)) * scale for i in range(4)]


def test_float32_rounding_of_large_logits_passes():
    """Untrained NB201 networks reach logits of ~2,000; float32 rounding there is ~2e-4 (one ulp at 2048 is 2.4e-4)."""
    ref = logits(2000.0)
    got = [r.astype(np.float32).astype(np.float64) * (1 + 3e-7) for r in ref]
    report = compare_outputs(ref, got, "fp32", "big")
    assert report["max_abs_diff"] > FP32_TOLERANCE, "the case the absolute tolerance wrongly refused"
    assert report["output_scale"] >= 1000 and report["tolerance"] == pytest.approx(FP32_TOLERANCE * report["output_scale"])


def test_a_wrong_export_of_large_logits_still_fails():
    ref = logits(2000.0)
    got = [r * (1 + 1e-3) for r in ref]
    with pytest.raises(ExportError, match=r"fp32 tolerance 0.0001 x output scale"):
        compare_outputs(ref, got, "fp32", "big")


def test_small_logits_keep_the_absolute_tolerance():
    ref = logits(0.01)
    report = compare_outputs(ref, [r + 0.5 * FP32_TOLERANCE for r in ref], "fp32", "small")
    assert report["output_scale"] == 1.0 and report["tolerance"] == FP32_TOLERANCE
    with pytest.raises(ExportError, match="differ from the torch model"):
        compare_outputs(ref, [r + 2 * FP32_TOLERANCE for r in ref], "fp32", "small")


def test_int8_reports_instead_of_failing():
    ref = logits(1.0)
    got = [r.copy() for r in ref]
    got[0] = -got[0]  # flips that input's top-1
    report = compare_outputs(ref, got, "int8", "q")
    assert report["top1_agreement"] == 0.75 and "tolerance" not in report


@pytest.mark.slow
def test_nb201_network_with_large_logits_exports(tmp_path):
    """NB201 index 0 (logits ~2,250): its correct ONNX export differs from torch by 6e-4 and must be accepted."""
    from devices.export.onnx_export import OnnxExporter
    from hwprof.artifacts import space_inputs
    from hwprof.registry import get_space

    space = get_space("nb201")
    report = OnnxExporter().export(space.build(space.from_index(0), seed=0), space_inputs(space), tmp_path / "m.onnx", "fp32")
    assert report["output_scale"] > 100 and report["max_abs_diff"] <= report["tolerance"]
