"""ONNX int8 and torch-cpu benchmark: numerics, export cost and latency, per space.

For N networks of NB201 and of FBNet (a fixed random sample, weights from seed 0):

(a) int8 numerics: top-1 agreement of each int8 ONNX variant with the fp32
    torch model over ``--check-inputs`` fixed random inputs (the shared check
    inputs, more of them than the export-time check's 8), for the exporter's
    default (QDQ, per-channel weights, int8 activations, pre-processed) and
    one change at a time (per-tensor weights, uint8 activations, no
    pre-processing): how the defaults were chosen.
(b) export cost: seconds of the fp32 ONNX export alone and of its
    export-time numerics check (8 onnxruntime runs + 8 torch runs), the
    int8 export (fp32 export, quantization, checks) and the torch.export
    (.pt2) export.
(c) latency: ort-cpu fp32 and every int8 variant measured together
    (interleaved rounds; medians), the int8 speed-up; torch-cpu eager on the .pt2
    against the same network's ``nn.Module`` called directly (what the .pt2
    eager mode costs compared with plain PyTorch); torch-cpu compile on the
    first ``--compile`` NB201 networks (compile time and latency).

    python benchmarks/int8_torch.py                 # 6 NB201 + 4 FBNet networks (1 compiled)
    python benchmarks/int8_torch.py --quick         # 2 + 2, smoke run

Writes benchmarks/results/int8_torch.json. Run it on a quiet machine: the
latencies compete with every other process for the same cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.export.calibration import check_numerics  # noqa: E402
from devices.export.onnx_export import OnnxExporter, OnnxInt8Exporter, export_onnx, ort_runner  # noqa: E402
from devices.export.torch_export import TorchExportExporter  # noqa: E402
from devices.ort_cpu import OrtCpuDevice  # noqa: E402
from devices.torch_cpu import TorchCpuDevice  # noqa: E402
from hwprof.artifacts import ArtifactCache, space_inputs  # noqa: E402
from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.protocol import ProtocolSettings, run_protocol  # noqa: E402
from hwprof.registry import get_space  # noqa: E402

INT8_VARIANTS = {
    "default": {},
    "per-tensor": {"per_channel": False},
    "uint8-act": {"activation_type": "uint8"},
    "no-preprocess": {"preprocess": False},
}
PROTOCOL = ProtocolSettings(min_runs=20, max_runs=400, max_time_s=1.5, target_rel_ci=0.02, rounds=5, round_min_s=0.05)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_network(space, arch, cache: ArtifactCache, check_inputs: int, compile_too: bool, scratch: Path) -> dict:
    import torch

    inputs = space_inputs(space)
    build = lambda: space.build(arch, seed=0)  # noqa: E731
    module = build()
    row: dict = {"space": space.name, "spec": arch.spec}

    # (b) fp32 export alone vs its numerics check
    path = scratch / "plain.onnx"
    _, row["onnx_export_s"] = timed(lambda: export_onnx(module, tuple(space.input_shape), path))
    report, row["fp32_check_s"] = timed(lambda: check_numerics(module, inputs, ort_runner(path), "fp32", "fp32"))
    row["fp32_max_abs_diff"], row["fp32_output_scale"] = report["max_abs_diff"], report["output_scale"]

    # (a) int8 variants: export (cached, timed) and top-1 agreement over many inputs
    fp32, _ = timed(lambda: cache.get_or_export(arch, build, inputs, OnnxExporter(), "fp32"))
    artifacts = [fp32]
    row["int8"] = {}
    for name, options in INT8_VARIANTS.items():
        artifact, seconds = timed(lambda: cache.get_or_export(arch, build, inputs, OnnxInt8Exporter(**options), "int8"))
        agreement = check_numerics(module, inputs, ort_runner(artifact.path), "int8", name, n=check_inputs)
        row["int8"][name] = {
            "export_s": seconds,
            "top1_agreement": agreement["top1_agreement"],
            "max_abs_diff": agreement["max_abs_diff"],
            "size_bytes": artifact.size_bytes,
        }
        artifacts.append(artifact)

    # (c) ORT latencies, fp32 and int8 variants interleaved
    measured = OrtCpuDevice().measure_many(artifacts, PROTOCOL)
    row["ort_fp32_ms"] = measured[0].stats.median_ms
    for (name, entry), m in zip(row["int8"].items(), measured[1:]):
        entry["ort_ms"] = m.stats.median_ms
        entry["speedup"] = measured[0].stats.median_ms / m.stats.median_ms

    # torch: .pt2 export, eager on the .pt2 against the nn.Module itself
    pt2, row["pt2_export_s"] = timed(lambda: cache.get_or_export(arch, build, inputs, TorchExportExporter(), "fp32"))
    row["pt2_max_abs_diff"] = pt2.exporter["numerics"]["max_abs_diff"]
    device = TorchCpuDevice()
    row["torch_pt2_eager_ms"] = device.measure(pt2, PROTOCOL).stats.median_ms
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(space.input_shape).astype(np.float32))
    with device.measuring():
        row["torch_module_eager_ms"] = run_protocol(lambda: module(x), PROTOCOL).stats.median_ms
    if compile_too:
        compiled = TorchCpuDevice(mode="compile")
        with compiled.measuring():
            handle, row["compile_s"] = timed(lambda: compiled.prepare(pt2))
            try:
                row["torch_compile_ms"] = compiled.time(handle.run, PROTOCOL).stats.median_ms
            finally:
                compiled.release(handle)
    return row


def summarise(rows: list[dict]) -> dict:
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    out = {}
    for space in sorted({r["space"] for r in rows}):
        rs = [r for r in rows if r["space"] == space]
        out[space] = {
            "networks": len(rs),
            "onnx_export_s_median": med([r["onnx_export_s"] for r in rs]),
            "fp32_check_s_median": med([r["fp32_check_s"] for r in rs]),
            "fp32_check_s_max": max(r["fp32_check_s"] for r in rs),
            "fp32_check_fraction_median": med([r["fp32_check_s"] / r["onnx_export_s"] for r in rs]),
            "fp32_max_abs_diff_max": max(r["fp32_max_abs_diff"] for r in rs),
            "fp32_output_scale_max": max(r["fp32_output_scale"] for r in rs),
            "pt2_export_s_median": med([r["pt2_export_s"] for r in rs]),
            "pt2_max_abs_diff_max": max(r["pt2_max_abs_diff"] for r in rs),
            "pt2_eager_over_module_median": med([r["torch_pt2_eager_ms"] / r["torch_module_eager_ms"] for r in rs]),
            "ort_fp32_ms_median": med([r["ort_fp32_ms"] for r in rs]),
            "torch_eager_ms_median": med([r["torch_pt2_eager_ms"] for r in rs]),
            "compile_s_median": med([r.get("compile_s") for r in rs]),
            "torch_compile_over_eager_median": med(
                [r["torch_compile_ms"] / r["torch_pt2_eager_ms"] for r in rs if "torch_compile_ms" in r]
            ),
            "int8": {
                name: {
                    "top1_agreement_mean": statistics.fmean(r["int8"][name]["top1_agreement"] for r in rs),
                    "top1_agreement_min": min(r["int8"][name]["top1_agreement"] for r in rs),
                    "speedup_median": med([r["int8"][name]["speedup"] for r in rs]),
                    "export_s_median": med([r["int8"][name]["export_s"] for r in rs]),
                }
                for name in INT8_VARIANTS
            },
        }
    return out


def print_table(summary: dict) -> None:
    print(f"{'space':7} {'variant':14} {'top1 mean':>9} {'top1 min':>8} {'int8 speed-up':>13} {'export s':>8}")
    for space, s in summary.items():
        for name, v in s["int8"].items():
            print(f"{space:7} {name:14} {v['top1_agreement_mean']:9.3f} {v['top1_agreement_min']:8.3f} "
                  f"{v['speedup_median']:13.2f} {v['export_s_median']:8.2f}")
    print()
    for space, s in summary.items():
        print(f"{space}: fp32 ONNX export {s['onnx_export_s_median']:.2f} s, its numerics check +{s['fp32_check_s_median']:.2f} s "
              f"(median {s['fp32_check_fraction_median']:.0%} of the export, max {s['fp32_check_s_max']:.2f} s); "
              f".pt2 export {s['pt2_export_s_median']:.2f} s; torch eager .pt2/nn.Module {s['pt2_eager_over_module_median']:.2f}; "
              f"ORT fp32 {s['ort_fp32_ms_median']:.3f} ms, torch eager {s['torch_eager_ms_median']:.3f} ms"
              + (f"; compile {s['compile_s_median']:.0f} s, compiled/eager {s['torch_compile_over_eager_median']:.2f}"
                 if s["compile_s_median"] is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nb201", type=int, default=6)
    parser.add_argument("--fbnet", type=int, default=4)
    parser.add_argument("--compile", type=int, default=1, help="NB201 networks also measured in torch-cpu compile mode")
    parser.add_argument("--check-inputs", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "int8_torch.json")
    args = parser.parse_args()
    if args.quick:
        args.nb201, args.fbnet, args.compile, args.check_inputs = 2, 2, 0, 20
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwprof-bench-int8-") as tmp:
        cache = ArtifactCache(Path(tmp) / "cache")
        for name, n in (("nb201", args.nb201), ("fbnet", args.fbnet)):
            space = get_space(name)
            for i, arch in enumerate(space.sample(n, np.random.default_rng(2026))):
                row = bench_network(space, arch, cache, args.check_inputs, name == "nb201" and i < args.compile, Path(tmp))
                rows.append(row)
                print(f"{name} {i + 1}/{n}: top1 {row['int8']['default']['top1_agreement']:.2f}, "
                      f"int8 x{row['int8']['default']['speedup']:.2f}, check {row['fp32_check_s']:.2f} s", flush=True)
    summary = summarise(rows)
    print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"summary": summary, "rows": rows, "check_inputs": args.check_inputs, "protocol": PROTOCOL.to_json(),
         "host": host_metadata(("torch", "onnxruntime", "onnx"))},
        indent=1, sort_keys=True,
    ))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
