"""Profiling benchmark: how reproducible is each latency estimator, against a naive loop, at what cost.

Side by side in one sitting, in alternating fresh processes over the same
ONNX files (hwprof's export cache, warmed by a first, cold process):

- ``hwprof profile`` with its defaults (``--again`` into one store, so the
  calibration baseline is shared, as a user re-profiling would);
- a naive loop: 20 warm-ups + 200 timed ``session.run``, median, one thread,
  ort-cpu's session options (what a user writes without hwprof).

For every consecutive pair of hwprof processes, every estimator that hwprof
stores (``hwprof.estimators``: pooled median/p25/p10/min, their paired
per-round ratios to the calibration networks, and each corrected by the
group's calibration level against the store's first) is compared between the
two processes: Spearman and median |relative difference| per network. The
same for consecutive naive processes. Wall time per network of each process
(warm cache, process start included), and the unstable flags of each run.

``--load K`` runs the whole comparison on a loaded host: K CPU-burning
processes of our own (pure-Python loops, killed at the end) share the cores.

    python benchmarks/profiling.py                     # quiet host: 40 networks, 3 pairs of each
    python benchmarks/profiling.py --load 2            # loaded host
    python benchmarks/profiling.py --quick             # 8 networks, 1 pair (smoke run)

Results go to benchmarks/results/profiling[-loaded].json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks folder holds predictors.py: keep it off the import path so `predictors` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from hwprof.estimators import PAIRED_PREFIX, PRIMARY, QUANTILES  # noqa: E402
from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.protocol import ProtocolSettings, instability  # noqa: E402
from hwprof.store import Store  # noqa: E402

CLI = "from hwprof.cli.main import run; run()"

NAIVE = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[2])
from devices.ort_cpu import OrtCpuDevice
from hwprof.types import ModelArtifact
device = OrtCpuDevice()
out = {}
for item in json.loads(open(sys.argv[1]).read()):
    artifact = ModelArtifact.from_json(item)
    session = device.open_session(artifact)
    feeds = device.make_inputs(artifact)
    for _ in range(20):
        session.run(None, feeds)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    out[artifact.arch_id] = float(np.median(times))
print(json.dumps(out))
"""


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def burn() -> None:  # pragma: no cover - a load generator
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def profile_process(indices: list[int], db: Path, cache: Path, extra: list[str]) -> dict:
    """One `hwprof profile` in a fresh interpreter; its wall time and the rows it stored."""
    cmd = [
        sys.executable, "-c", CLI, "profile", "--device", "ort-cpu", "--space", "nb201",
        "--indices", ",".join(map(str, indices)), "--db", str(db), "--cache-dir", str(cache), *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hwprof profile failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    with Store(db, create=False) as store:
        run_id = store.runs()[-1].id
        rows = store.measurements(device="ort-cpu", space="nb201", run_id=run_id, with_samples=True)
    return {"wall_s": wall, "rows": rows}


def naive_process(artifacts_file: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", NAIVE, str(artifacts_file), str(ROOT)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"naive loop failed: {proc.stderr.strip()[-2000:]}")
    return {"wall_s": wall, "latency": json.loads(proc.stdout)}


def estimator_values(rows, baselines: dict[str, float]) -> dict[str, dict[str, float]]:
    """estimator -> arch_id -> latency, for every estimator hwprof stores and their calibrated forms.

    ``baselines``: calibration level per quantile of the store's first group
    (filled from the first process seen). ``corrected_<q>`` is the pooled q
    scaled by baseline / this group's level; ``calibrated_paired_<q>`` is the
    paired ratio times the baseline (what the store reports as corrected_ms
    when that paired estimator is primary).
    """
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        est = dict(r.estimates)
        for name, value in est.items():
            if not name.startswith("reference_"):
                out.setdefault(name, {})[r.arch_id] = float(value)
        for q in QUANTILES:
            level = est.get(f"reference_{q}")
            if level is None:
                continue
            baselines.setdefault(q, level)
            out.setdefault(f"corrected_{q}", {})[r.arch_id] = est[q] * baselines[q] / level
            if PAIRED_PREFIX + q in est:
                out.setdefault(f"calibrated_{PAIRED_PREFIX}{q}", {})[r.arch_id] = est[PAIRED_PREFIX + q] * baselines[q] / level
    return out


def agreement(a: dict[str, float], b: dict[str, float]) -> dict[str, float] | None:
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return None
    x = np.array([a[k] for k in common])
    y = np.array([b[k] for k in common])
    rel = np.abs(x - y) / ((x + y) / 2)
    return {"n": len(common), "spearman": spearman(x, y), "median_abs_rel_diff": float(np.median(rel)),
            "p90_abs_rel_diff": float(np.quantile(rel, 0.9)), "shift": float(np.median(y / x))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=40, help="networks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=3, help="consecutive pairs of each kind (processes of each = pairs + 1)")
    ap.add_argument("--load", type=int, default=0, help="CPU-burning processes of our own during the comparison")
    ap.add_argument("--quick", action="store_true", help="8 networks, 1 pair (smoke run)")
    ap.add_argument("--profile-args", default="", help="extra `hwprof profile` options, e.g. '--rounds 1'")
    ap.add_argument("-o", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.pairs = 8, 1
    out_path = args.o or ROOT / "benchmarks" / "results" / ("profiling-loaded.json" if args.load else "profiling.json")

    rng = np.random.default_rng(args.seed)
    indices = sorted(int(i) for i in rng.choice(15625, size=args.n, replace=False))
    extra = args.profile_args.split()
    burners: list[multiprocessing.Process] = []
    load_at_start = host_metadata(()).get("loadavg")
    with tempfile.TemporaryDirectory(prefix="hwprof-bench-") as tmp:
        tmp = Path(tmp)
        cache, db = tmp / "cache", tmp / "bench.db"
        print(f"cold process: exporting and profiling {args.n} NB201 networks ...", flush=True)
        cold = profile_process(indices, db, cache, extra)
        artifacts_file = tmp / "artifacts.json"
        wanted = {r.artifact_sha256 for r in cold["rows"]}
        found = []  # the artifacts the cold process exported, described from the cache's metadata
        for meta_file in sorted((cache / "onnx").glob("*.json")):
            meta = json.loads(meta_file.read_text())
            model = meta_file.with_suffix(".onnx")
            if meta["sha256"] in wanted:
                found.append({"path": str(model), "format": "onnx", "sha256": meta["sha256"],
                              "size_bytes": model.stat().st_size, "arch_id": meta["arch_id"], "inputs": meta["inputs"],
                              "exporter": meta["exporter"], "precision": meta["precision"]})
        artifacts_file.write_text(json.dumps(found))
        for _ in range(args.load):
            p = multiprocessing.Process(target=burn, daemon=True)
            p.start()
            burners.append(p)
        try:
            hw, naive = [], []
            for i in range(args.pairs + 1):
                print(f"round {i + 1}/{args.pairs + 1}: hwprof profile --again, then the naive loop ...", flush=True)
                hw.append(profile_process(indices, db, cache, [*extra, "--again"]))
                naive.append(naive_process(artifacts_file))
        finally:
            for p in burners:
                p.kill()
        load_at_end = host_metadata(()).get("loadavg")

    baselines: dict[str, float] = {}
    est_per_proc = [estimator_values(p["rows"], baselines) for p in [cold, *hw]][1:]
    names = sorted(set().union(*(e.keys() for e in est_per_proc)))
    estimators = {}
    for name in names:
        pairs = [agreement(a.get(name, {}), b.get(name, {})) for a, b in zip(est_per_proc, est_per_proc[1:])]
        if any(p is None for p in pairs):
            continue
        estimators[name] = {
            "pairs": pairs,
            "spearman_mean": float(np.mean([p["spearman"] for p in pairs])),
            "spearman_min": float(np.min([p["spearman"] for p in pairs])),
            "median_abs_rel_diff_mean": float(np.mean([p["median_abs_rel_diff"] for p in pairs])),
            "median_abs_rel_diff_max": float(np.max([p["median_abs_rel_diff"] for p in pairs])),
        }
    naive_pairs = [agreement(a["latency"], b["latency"]) for a, b in zip(naive, naive[1:])]
    naive_summary = {
        "pairs": naive_pairs,
        "spearman_mean": float(np.mean([p["spearman"] for p in naive_pairs])),
        "median_abs_rel_diff_mean": float(np.mean([p["median_abs_rel_diff"] for p in naive_pairs])),
    }
    hw_wall = [p["wall_s"] / args.n for p in hw]
    naive_wall = [p["wall_s"] / args.n for p in naive]
    unstable = [int(sum(bool(r.unstable) for r in p["rows"])) for p in hw]
    stop_reasons = [dict(sorted({s: sum(r.stop_reason == s for r in p["rows"]) for s in {r.stop_reason for r in p["rows"]}}.items())) for p in hw]
    runs = [float(np.mean([r.n_runs for r in p["rows"]])) for p in hw]
    primary = PRIMARY
    # What the unstable flag tests, per network: the p10's relative CI and the spread between visits;
    # the share of networks a threshold would flag, so the threshold is chosen on quiet and loaded hosts.
    default_protocol = ProtocolSettings()
    instab = [[instability(r.samples_ms, r.visit_sizes, default_protocol) for r in p["rows"]] for p in hw]
    flag_rates = {f"{t:g}": [float(np.mean([(math.isfinite(c) and c > t) or s > t for c, s in run])) for run in instab]
                  for t in (0.05, 0.075, 0.10, 0.15)}
    result = {
        "benchmark": "profiling",
        "host_state": f"loaded ({args.load} CPU-burning processes of our own)" if args.load else "quiet",
        "settings": {"n_networks": args.n, "pairs": args.pairs, "seed": args.seed, "indices": indices,
                     "profile_args": extra, "naive": "20 warm-ups + 200 timed session.run, median, ort-cpu session options"},
        "host": host_metadata(("onnxruntime",)),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "primary": primary,
        "estimators": estimators,
        "naive": naive_summary,
        "wall_per_network_s": {"hwprof": hw_wall, "naive": naive_wall, "cold_hwprof": cold["wall_s"] / args.n,
                               "ratio_median": float(np.median(hw_wall) / np.median(naive_wall))},
        "unstable_per_run": unstable,
        "unstable_flag_rate_by_threshold": flag_rates,
        "stop_reasons_per_run": stop_reasons,
        "mean_runs_per_network": runs,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")

    naive_rel = naive_summary["median_abs_rel_diff_mean"]
    print(f"\n{result['host_state']} host; {args.n} networks; {args.pairs} consecutive pairs of each")
    print(f"{'estimator':<28}{'Spearman (mean/min)':>22}{'median |rel diff| (mean/max)':>32}{'vs naive':>10}")
    for name, e in sorted(estimators.items(), key=lambda kv: kv[1]["median_abs_rel_diff_mean"]):
        mark = "  <- primary" if name == primary else ""
        print(f"{name:<28}{e['spearman_mean']:>12.4f} / {e['spearman_min']:.4f}"
              f"{e['median_abs_rel_diff_mean']:>20.2%} / {e['median_abs_rel_diff_max']:.2%}"
              f"{e['median_abs_rel_diff_mean'] / naive_rel:>10.2f}{mark}")
    print(f"{'naive median':<28}{naive_summary['spearman_mean']:>12.4f}{'':>9}{naive_rel:>20.2%}")
    print(f"wall per network: hwprof {np.median(hw_wall):.3f} s, naive {np.median(naive_wall):.3f} s "
          f"(ratio {result['wall_per_network_s']['ratio_median']:.2f}); unstable per run {unstable}; "
          f"mean runs per network {[round(r) for r in runs]}")
    print(f"unstable share by threshold (per run): {flag_rates}")
    print(f"stop reasons per run: {stop_reasons}; load average at the end {load_at_end}; wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
