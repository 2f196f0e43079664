"""Re-record ``ort_profile_tiny.json`` (a real onnxruntime per-node trace, trimmed).

Run from the repository root: ``python tests/data/record_ort_profile.py``.
The network (built with a fixed seed) exercises the runtime's fusions:
Conv+BN+ReLU into one blocked (NCHWc) conv with a fused activation, a
depthwise conv, a residual Add folded into the conv before it, a max pool,
global average pool and a Gemm. Settings are OrtCpuDevice's defaults (one
thread, all graph optimisations); 1 warm-up run and 2 measured runs. The
trace is trimmed by dropping the memory-accounting ``args`` of node events
(the parser does not read them); everything else is as onnxruntime wrote it.
The optimized graph and the exported graph are saved next to it for the
shape-inference tests. ``tests/devices/test_ort_profile.py`` spells out the
recorded durations; update ``EXPECTED`` there after re-recording.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEEP_ARGS = ("op_name", "provider", "input_type_shape", "output_type_shape", "node_index")


def tiny_network():
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.BatchNorm2d(12), nn.ReLU())
            self.pw = nn.Sequential(nn.Conv2d(12, 12, 1), nn.BatchNorm2d(12))
            self.pool = nn.MaxPool2d(2)
            self.head = nn.Linear(12, 10)

        def forward(self, x):
            x = self.stem(x)
            x = self.pw(self.dw(x)) + x
            x = self.pool(torch.relu(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Tiny()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.running_var, 0.5, 1.5)
                nn.init.normal_(m.running_mean)
    return model.eval()


def main() -> None:
    sys.path.insert(0, str(HERE.parents[1]))
    from hwprof.artifacts import export_module
    from devices.ort_profile import profile_nodes

    with tempfile.TemporaryDirectory() as tmp:
        art = export_module(tiny_network, (1, 3, 16, 16), Path(tmp) / "cache", "tiny")
        result = profile_nodes(art, Path(tmp) / "prof", n_runs=2, n_warmup=1, keep_trace=True)
        events = json.loads(Path(result.trace_path).read_text())
        for e in events:
            if e.get("cat") == "Node":
                e["args"] = {k: v for k, v in e["args"].items() if k in KEEP_ARGS}
        (HERE / "ort_profile_tiny.json").write_text(json.dumps(events, separators=(",", ":")))
        shutil.copy(result.optimized_model_path, HERE / "ort_profile_tiny.opt.onnx")
        shutil.copy(art.path, HERE / "ort_profile_tiny.onnx")


if __name__ == "__main__":
    main()
