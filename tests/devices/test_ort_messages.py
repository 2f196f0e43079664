"""A model that onnxruntime refuses is one line from hwprof, never ORT's own log (ort-cpu, `hwprof measure`)."""

from __future__ import annotations

import numpy as np
import pytest

from hwprof.cli.main import main
from hwprof.errors import ExportError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _save(path, inputs, nodes, outputs):
    from onnx import helper

    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _reshape_failing_at_run_time(path):
    """Reshape (1, 6) to (4, 4): the graph loads (the target is a Constant node), the first run fails."""
    from onnx import TensorProto, helper, numpy_helper

    target = numpy_helper.from_array(np.array([4, 4], dtype=np.int64), "target")
    return _save(
        path,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_node("Constant", [], ["shape"], value=target), helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])],
    )


def test_a_model_failing_at_run_time_is_exactly_one_line_on_stderr(tmp_path, capfd):
    model = _reshape_failing_at_run_time(tmp_path / "bad.onnx")
    code = main(["measure", str(model), "--device", "ort-cpu", "--max-time-s", "0.3"])
    _, err = capfd.readouterr()  # file descriptors: onnxruntime logs from C++, not through sys.stderr
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: onnxruntime failed to run {model}"), err
    assert "\x1b[" not in err and "sequential_executor" not in err


def test_an_input_dimension_of_zero_is_named_as_such(tmp_path):
    from onnx import TensorProto, helper

    from devices.export.onnx_export import load_onnx_artifact

    model = _save(
        tmp_path / "zero.onnx",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 0])],
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 0])],
    )
    with pytest.raises(ExportError, match=r"zero\.onnx: dimension 1 of input 'x' is 0; expected a positive size$"):
        load_onnx_artifact(model)
