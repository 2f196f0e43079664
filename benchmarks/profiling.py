"""Profiling benchmark: reproducibility, overhead and efficiency of `hwprof profile`.

(a) reproducibility: the same N NB201 networks profiled by `hwprof profile` in
    two separate processes (fresh interpreters; the second reuses the export
    cache). Spearman between the two runs' medians
    and the median |relative difference| of per-network medians.
(b) overhead: for the same models in one process, hwprof's median (the
    device adapter and its protocol) against a bare ``session.run`` loop
    (20 warm-ups, 200 timed runs, median), alternated to cancel drift.
    Process B profiles into the same store with ``--again`` (as a user
    re-measuring would). Both the raw medians and the reference-calibrated
    latencies (``corrected_ms``: each network scaled by the reference model
    measured in its own group, relative to the store's first calibrated group,
    i.e. process A's) are compared.
(c) efficiency: fraction of each profiling process's wall time spent inside
    timed inference (sum of the stored timed samples / wall time, and with
    warm-up calls estimated at the median) and networks profiled per minute,
    for the cold-cache process (exports every model) and the warm one.

    python benchmarks/profiling.py                # 50 networks, writes benchmarks/results/profiling.json
    python benchmarks/profiling.py --quick        # 8 networks, smoke run

Run it on a quiet machine: every other process competes for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.store import Store  # noqa: E402

CLI = "from hwprof.cli.main import run; run()"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def profile_process(indices: list[int], db: Path, cache: Path, extra: list[str]) -> dict:
    """One `hwprof profile` in a fresh interpreter; returns wall time and the stored rows."""
    cmd = [
        sys.executable, "-c", CLI, "profile", "--device", "ort-cpu", "--space", "nb201",
        "--indices", ",".join(map(str, indices)), "--db", str(db), "--cache-dir", str(cache), *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hwprof profile failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    with Store(db, create=False) as store:
        run_id = store.runs()[-1].id
        rows = store.measurements(device="ort-cpu", space="nb201", run_id=run_id, with_samples=True)
    return {"wall_s": wall, "rows": rows, "stdout_tail": proc.stdout.strip().splitlines()[-3:]}


def efficiency(run: dict) -> dict:
    rows = run["rows"]
    timed_s = sum(sum(r.samples_ms) for r in rows) / 1000.0
    warm_s = sum(r.n_warmup * r.median_ms for r in rows) / 1000.0
    return {
        "wall_s": run["wall_s"],
        "n_networks": len(rows),
        "timed_inference_s": timed_s,
        "timed_fraction": timed_s / run["wall_s"],
        "inference_fraction_incl_warmup": (timed_s + warm_s) / run["wall_s"],
        "networks_per_min": len(rows) / run["wall_s"] * 60.0,
        "mean_runs_per_network": float(np.mean([r.n_runs for r in rows])),
        "n_unstable": int(sum(bool(r.unstable) for r in rows)),
    }


def reproducibility(a: dict, b: dict, key: str = "median_ms") -> dict | None:
    """Agreement of per-network latencies (``median_ms`` raw, or ``corrected_ms`` calibrated)."""
    ma = {r.arch_id: getattr(r, key) for r in a["rows"] if getattr(r, key) is not None}
    mb = {r.arch_id: getattr(r, key) for r in b["rows"] if getattr(r, key) is not None}
    if not ma or not mb:
        return None
    common = sorted(set(ma) & set(mb))
    x = np.array([ma[k] for k in common])
    y = np.array([mb[k] for k in common])
    rel = np.abs(x - y) / ((x + y) / 2)
    shift = float(np.median(y / x))  # a shift of the whole second process (host-level), and what remains without it
    return {
        "n_networks": len(common),
        "spearman": spearman(x, y),
        "median_abs_rel_diff": float(np.median(rel)),
        "p90_abs_rel_diff": float(np.quantile(rel, 0.9)),
        "max_abs_rel_diff": float(rel.max()),
        "common_shift": shift,
        "median_abs_rel_diff_without_shift": float(np.median(np.abs(y / (x * shift) - 1))),
        "latency_range_ms": [float(min(x.min(), y.min())), float(max(x.max(), y.max()))],
    }


def summarize_pairs(pairs: list[dict]) -> dict:
    """Each consecutive pair of processes, and the median over pairs of every figure."""
    keys = [k for k, v in pairs[0].items() if isinstance(v, float)]
    return {**{k: float(np.median([p[k] for p in pairs])) for k in keys}, "n_networks": pairs[0]["n_networks"],
            "n_pairs": len(pairs), "pairs": pairs}


def bare_loop_ms(session, feeds, warmup: int = 20, runs: int = 200) -> float:
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def overhead(indices: list[int], cache: Path, repeats: int) -> dict:
    """hwprof's median vs. a bare session.run loop on the same models, same process, alternated."""
    from devices.ort_cpu import OrtCpuDevice
    from hwprof.artifacts import export_architecture
    from hwprof.protocol import ProtocolSettings
    from hwprof.runners import InProcessRunner
    from nas.spaces.nb201 import NB201Space

    space = NB201Space()
    device = OrtCpuDevice()
    runner = InProcessRunner(device)  # what `hwprof profile` measures through
    protocol = ProtocolSettings()
    per_model = []
    for index in indices:
        arch = space.from_index(index)
        artifact = export_architecture(space, arch, cache)
        hw, bare = [], []
        for _ in range(repeats):
            hw.append(runner.measure([artifact], protocol, interleaved=False)[0].latency_ms)
            with device.pinned():
                session = device.open_session(artifact)
                bare.append(bare_loop_ms(session, device.make_inputs(artifact)))
                del session
        h, b = statistics.median(hw), statistics.median(bare)
        per_model.append({"index": index, "spec": arch.spec, "hwprof_ms": h, "bare_ms": b, "ratio": h / b})
    ratios = [m["ratio"] for m in per_model]
    return {"models": per_model, "median_ratio": statistics.median(ratios), "max_abs_dev": max(abs(r - 1) for r in ratios)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=50, help="networks for reproducibility/efficiency")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overhead-models", type=int, default=5)
    ap.add_argument("--overhead-repeats", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=3, help="consecutive process pairs compared (processes = pairs + 1)")
    ap.add_argument("--quick", action="store_true", help="8 networks, 2 overhead models, 1 pair (smoke run)")
    ap.add_argument("--profile-args", default="", help="extra `hwprof profile` options, e.g. '--rounds 1'")
    ap.add_argument("-o", type=Path, default=ROOT / "benchmarks" / "results" / "profiling.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.overhead_models, args.overhead_repeats, args.pairs = 8, 2, 2, 1

    rng = np.random.default_rng(args.seed)
    indices = sorted(int(i) for i in rng.choice(15625, size=args.n, replace=False))
    extra = args.profile_args.split()
    with tempfile.TemporaryDirectory(prefix="hwprof-bench-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        print(f"profiling {args.n} NB201 networks in {args.pairs + 1} processes ...", flush=True)
        procs = [profile_process(indices, tmp / "bench.db", cache, extra)]
        for _ in range(args.pairs):
            procs.append(profile_process(indices, tmp / "bench.db", cache, [*extra, "--again"]))
        pairs = [reproducibility(a, b) for a, b in zip(procs, procs[1:])]
        repro = summarize_pairs(pairs)
        cal_pairs = [reproducibility(a, b, "corrected_ms") for a, b in zip(procs, procs[1:])]
        repro_cal = summarize_pairs(cal_pairs) if all(cal_pairs) else None
        eff = {"cold_cache": efficiency(procs[0]), "warm_cache": efficiency(procs[1])}
        print("overhead against a bare session.run loop ...", flush=True)
        over = overhead(indices[: args.overhead_models], cache, args.overhead_repeats)

    result = {
        "benchmark": "profiling",
        "settings": {
            "n_networks": args.n, "pairs": args.pairs, "seed": args.seed, "indices": indices, "profile_args": extra,
            "device": "ort-cpu defaults (1 intra-op thread, sequential, ORT_ENABLE_ALL)",
            "overhead_models": args.overhead_models, "overhead_repeats": args.overhead_repeats,
        },
        "host": host_metadata(("onnxruntime", "torch")),
        "reproducibility": repro,
        "reproducibility_calibrated": repro_cal,
        "efficiency": eff,
        "overhead": over,
    }
    args.o.parent.mkdir(parents=True, exist_ok=True)
    args.o.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print(f"{'metric':<52}{'value':>26}{'target':>10}")
    rows = [
        *(
            (f"  pair {i + 1}: Spearman / median |rel diff| / shift",
             f"{p['spearman']:.4f} / {p['median_abs_rel_diff']:.2%} / {p['common_shift'] - 1:+.1%}", "")
            for i, p in enumerate(repro["pairs"])
        ),
        (f"reproducibility: Spearman (median of {repro['n_pairs']} pairs)", f"{repro['spearman']:.4f}", ">= 0.99"),
        ("reproducibility: median |rel diff|", f"{repro['median_abs_rel_diff']:.2%}", "<= 2%"),
        *(
            [
                ("  calibrated: Spearman", f"{repro_cal['spearman']:.4f}", ">= 0.99"),
                ("  calibrated: median |rel diff|", f"{repro_cal['median_abs_rel_diff']:.2%}", "<= 2%"),
            ]
            if repro_cal
            else []
        ),
        ("overhead: hwprof / bare loop (median)", f"{over['median_ratio']:.4f}", "1 +- 0.02"),
        ("efficiency: timed fraction, cold cache", f"{eff['cold_cache']['timed_fraction']:.1%}", ""),
        ("efficiency: timed fraction, warm cache", f"{eff['warm_cache']['timed_fraction']:.1%}", ">= 60%"),
        ("networks per minute, cold cache", f"{eff['cold_cache']['networks_per_min']:.1f}", ""),
        ("networks per minute, warm cache", f"{eff['warm_cache']['networks_per_min']:.1f}", ""),
    ]
    for name, value, target in rows:
        print(f"{name:<52}{value:>26}{target:>10}")
    print(f"\nload average at the end: {result['host'].get('loadavg')}; wrote {args.o}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
