"""Runtime benchmark: the same networks under ONNX Runtime, LiteRT and torch, fp32 and int8.

For N NB201 and M FBNet networks (seeded sample), under every runtime of
``RUNTIMES`` that is registered and usable here (a missing one is skipped with
the reason in the table and the JSON):

(a) latency distribution per runtime and space (medians of the shared protocol);
(b) the Spearman matrix between runtimes (do they rank the networks alike?);
(c) int8 speed-up per runtime (per-network fp32/int8 median ratio);
(d) reproducibility: every runtime measured in two separate processes
    (fresh interpreters, same cached files): Spearman and median |relative
    difference| between the two;
(e) export/convert time per network and format/precision, and the time of the
    same export served from the cache (second run);
(f) numerics at export: fp32 max |diff| to torch, int8 top-1 agreement with
    fp32 torch, per space (the reports kept with each artifact);
(g) few-shot transfer between runtimes (K=10): "I profiled ORT; what do I
    know about LiteRT?" The target runtime's latency is fitted as
    b + w * (source runtime's latency) on K=10 measured networks (the ``nnls``
    combination of predictors.transfer, sources = measured latencies), and
    ranked on the rest; against K=0 (the source ranking as is).

    python benchmarks/runtimes.py                      # 100 NB201 + 50 FBNet -> benchmarks/results/runtimes.json
    python benchmarks/runtimes.py --nb201 16 --fbnet 8  # reduced size

Run it on a quiet machine: every other process competes for the same cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwprof import registry  # noqa: E402
from hwprof.errors import HwprofError  # noqa: E402
from hwprof.hostinfo import host_metadata  # noqa: E402
from hwprof.protocol import ProtocolSettings  # noqa: E402
from hwprof.types import ModelArtifact  # noqa: E402

K_SHOT = 10
TRANSFER_SPLITS = 20  # random K-subsets averaged per pair
PROTOCOL = ProtocolSettings(min_runs=10, max_runs=200, max_time_s=1.0, rounds=5, round_min_s=0.05)


@dataclass(frozen=True)
class Runtime:
    label: str
    device: str
    precision: str
    settings: dict[str, Any] = field(default_factory=dict)


RUNTIMES = (
    Runtime("ort-fp32", "ort-cpu", "fp32"),
    Runtime("ort-int8", "ort-cpu", "int8"),
    Runtime("litert-fp32", "litert-cpu", "fp32", {"xnnpack": True}),
    Runtime("litert-fp32-noxnn", "litert-cpu", "fp32", {"xnnpack": False}),
    Runtime("litert-int8", "litert-cpu", "int8", {"xnnpack": True}),
    Runtime("torch-eager", "torch-cpu", "fp32", {"mode": "eager"}),
)


def register_checkout_plugins() -> None:
    """Devices/exporters this checkout's pyproject declares but an older install's metadata lacks."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for group, kind in (("hwprof.devices", "device"), ("hwprof.exporters", "exporter")):
        for name, target in groups.get(group, {}).items():
            if name not in registry.names(kind):
                registry.register(kind, name, target)


def availability(rt: Runtime) -> str:
    """'' when ``rt`` can be exported and measured here, else why not."""
    from hwprof.artifacts import exporter_for

    try:
        device = registry.get_device(rt.device, **rt.settings)
        device.check()
        device.check_precision(rt.precision)
        exporter_for(device.supported_formats, rt.precision).check()
    except (HwprofError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def export_all(runtimes: list[Runtime], spaces: dict[str, list], cache: Path) -> tuple[dict, dict]:
    """Export every network once per (format, precision), timed; then again (cache hits), timed."""
    from hwprof.artifacts import export_architecture, exporter_for

    artifacts: dict[tuple[str, str, str], list[ModelArtifact]] = {}
    times: dict[str, dict[str, list[float]]] = {}
    for rt in runtimes:
        device = registry.get_device(rt.device, **rt.settings)
        exporter = exporter_for(device.supported_formats, rt.precision)
        for space_name, (space, archs) in spaces.items():
            key = (space_name, exporter.format, rt.precision)
            if key in artifacts:
                continue
            cold, warm, got = [], [], []
            for arch in archs:
                t0 = time.perf_counter()
                got.append(export_architecture(space, arch, cache, exporter.format, rt.precision, exporter=exporter))
                cold.append(time.perf_counter() - t0)
            for arch in archs:
                t0 = time.perf_counter()
                again = export_architecture(space, arch, cache, exporter.format, rt.precision, exporter=exporter)
                warm.append(time.perf_counter() - t0)
                assert again.sha256 == got[len(warm) - 1].sha256
            artifacts[key] = got
            times[f"{space_name}/{exporter.name}/{rt.precision}"] = {"export_s": cold, "cache_hit_s": warm}
            print(f"  exported {len(got)} {space_name} {exporter.format} {rt.precision}: median {np.median(cold):.1f} s, "
                  f"cache hit {np.median(warm) * 1000:.0f} ms", flush=True)
    return artifacts, times


COLD_TIMES = "export_cold_times.json"


def _earlier_cold_run(path: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The cold export times an ``--export-only`` run kept in this cache for the same networks (None if none)."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = kept.get("config") == {"nb201": args.nb201, "fbnet": args.fbnet, "seed": args.seed}
    return kept if same else None


def measure_pass(plan_path: Path, out_path: Path) -> None:
    """One measurement process: every runtime of the plan, every space, interleaved; medians to ``out_path``."""
    from hwprof import worker

    register_checkout_plugins()
    plan = json.loads(plan_path.read_text())
    protocol = ProtocolSettings(**plan["protocol"])
    out: dict[str, dict[str, list[float]]] = {}
    for item in plan["runs"]:
        arts = [ModelArtifact.from_json(a) for a in item["artifacts"]]
        ms = worker.measure(item["device"], arts, protocol, item["settings"], interleaved=True)
        out.setdefault(item["label"], {})[item["space"]] = [m.latency_ms for m in ms]
        print(f"  {item['label']:<18} {item['space']:<6} median of medians {np.median([m.latency_ms for m in ms]):.3f} ms", flush=True)
    out_path.write_text(json.dumps(out))


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def transfer(source: np.ndarray, target: np.ndarray, k: int, splits: int, seed: int = 0) -> dict[str, float]:
    """Fit target ~ b + source @ w on k networks (nnls combination), rank the rest; K=0 baseline: the first source's ranking.

    ``source`` is (networks,) or (networks, sources). With one source and w >= 0 the fit only rescales: the ranking
    is the source's (same Spearman as K=0) and the fit shows in MAPE; several sources can re-rank.
    """
    source = source.reshape(len(source), -1)
    from predictors.transfer.combination import combination_weights

    rng = np.random.default_rng(seed)
    n = len(target)
    fitted_rho, fitted_mape, base_rho = [], [], []
    for _ in range(splits):
        idx = rng.permutation(n)
        train, test = idx[:k], idx[k:]
        w, b = combination_weights(source[train], target[train], nonnegative=True, alpha=0.0)
        pred = b + source[test] @ w
        fitted_rho.append(spearman(pred, target[test]) if np.ptp(pred) > 0 else 0.0)
        fitted_mape.append(float(np.mean(np.abs(pred - target[test]) / target[test])))
        base_rho.append(spearman(source[test, 0], target[test]))
    return {"spearman_k0": float(np.mean(base_rho)), f"spearman_k{k}": float(np.mean(fitted_rho)), f"mape_k{k}": float(np.mean(fitted_mape))}


def summarise(lat: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(v) for k, v in zip(("min", "p25", "median", "p75", "max"), np.percentile(lat, [0, 25, 50, 75, 100]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", type=int, default=100)
    ap.add_argument("--fbnet", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=K_SHOT, help="measured networks of the target runtime in the transfer study")
    ap.add_argument("--cache-dir", type=Path, default=None, help="export cache (default: a fresh temporary folder)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "runtimes.json")
    ap.add_argument("--export-only", action="store_true",
                    help="convert into --cache-dir and stop; the cold export times are kept there (export_cold_times.json) "
                         "and reported by a later full run on the same cache (convert on a busy host, measure on a quiet one)")
    ap.add_argument("--measure-pass", nargs=2, type=Path, metavar=("PLAN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_pass:
        measure_pass(*args.measure_pass)
        return
    import torch

    torch.set_num_threads(1)
    register_checkout_plugins()
    started = time.time()
    usable, skipped = [], {}
    for rt in RUNTIMES:
        why = availability(rt)
        (skipped.__setitem__(rt.label, why) if why else usable.append(rt))
    for label, why in skipped.items():
        print(f"skipping {label}: {why}")
    spaces = {}
    for name, n in (("nb201", args.nb201), ("fbnet", args.fbnet)):
        if n > 0:
            space = registry.get_space(name)
            spaces[name] = (space, space.sample(n, np.random.default_rng(args.seed)))
    with tempfile.TemporaryDirectory(prefix="hwprof-runtimes-") as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        print(f"exporting into {cache}")
        artifacts, export_times = export_all(usable, spaces, cache)
        cold_file = cache / COLD_TIMES
        if args.export_only:
            if not args.cache_dir:
                ap.error("--export-only needs --cache-dir (a temporary cache would be deleted)")
            cold_file.write_text(json.dumps({"config": {"nb201": args.nb201, "fbnet": args.fbnet, "seed": args.seed},
                                             "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                                             "host": host_metadata(("litert-torch", "onnxruntime")), "export_times": export_times}))
            print(f"export times kept in {cold_file}")
            return
        cold_run = _earlier_cold_run(cold_file, args)
        if cold_run:
            for key, v in cold_run["export_times"].items():
                if key in export_times:
                    export_times[key]["export_s"] = v["export_s"]
        runs = []
        for rt in usable:
            device = registry.get_device(rt.device, **rt.settings)
            fmt = {key[1] for key in artifacts if key[1] in device.supported_formats}.pop()
            for space_name in spaces:
                arts = artifacts[(space_name, fmt, rt.precision)]
                runs.append({"label": rt.label, "device": rt.device, "settings": rt.settings, "space": space_name,
                             "artifacts": [a.to_json() for a in arts]})
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps({"protocol": PROTOCOL.to_json(), "runs": runs}))
        passes = []
        for k in (1, 2):
            out = Path(tmp) / f"pass{k}.json"
            print(f"measurement process {k}", flush=True)
            t0 = time.time()
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure-pass", str(plan), str(out)], check=True)
            print(f"  {time.time() - t0:.0f} s", flush=True)
            passes.append(json.loads(out.read_text()))
    numerics: dict[str, dict[str, Any]] = {}
    for (space_name, fmt, precision), arts in artifacts.items():
        reports = [a.exporter.get("numerics") or {} for a in arts]
        key = f"{space_name}/{fmt}/{precision}"
        if precision == "fp32":
            diffs = [r["max_abs_diff"] for r in reports if "max_abs_diff" in r]
            numerics[key] = {"max_abs_diff": max(diffs) if diffs else None, "checked": len(diffs)}
        else:
            agree = [r["top1_agreement"] for r in reports if "top1_agreement" in r]
            numerics[key] = {"top1_agreement_mean": float(np.mean(agree)) if agree else None,
                             "top1_agreement_min": float(np.min(agree)) if agree else None, "checked": len(agree)}
    labels = [rt.label for rt in usable]
    result: dict[str, Any] = {
        "config": {"nb201": args.nb201, "fbnet": args.fbnet, "seed": args.seed, "protocol": PROTOCOL.to_json(),
                   "k_shot": args.k, "transfer_splits": TRANSFER_SPLITS},
        "runtimes": {rt.label: {"device": rt.device, "precision": rt.precision, "settings": rt.settings} for rt in usable},
        "skipped": skipped,
        "host": host_metadata(("ai-edge-litert", "litert-torch", "onnxruntime")),
        "export": {k: {"export_s_median": float(np.median(v["export_s"])), "export_s_p90": float(np.percentile(v["export_s"], 90)),
                       "cache_hit_ms_median": float(np.median(v["cache_hit_s"]) * 1000), "n": len(v["export_s"])}
                   for k, v in export_times.items()},
        "numerics": numerics,
        "spaces": {},
        "export_note": ("export_s: the cold conversions of an earlier --export-only run on the same cache "
                        f"(started {cold_run.get('started', '?')}); cache hits: this run") if cold_run
                       else "export_s and cache hits both measured in this run",
    }
    for space_name in spaces:
        lat1 = {lb: np.asarray(passes[0][lb][space_name]) for lb in labels}
        lat2 = {lb: np.asarray(passes[1][lb][space_name]) for lb in labels}
        sec: dict[str, Any] = {
            "latency_ms": {lb: summarise(lat1[lb]) for lb in labels},
            "spearman": {a: {b: spearman(lat1[a], lat1[b]) for b in labels} for a in labels},
            "reproducibility": {lb: {"spearman": spearman(lat1[lb], lat2[lb]),
                                     "median_abs_rel_diff": float(np.median(np.abs(lat2[lb] / lat1[lb] - 1)))} for lb in labels},
            "int8_speedup": {},
            "transfer": {},
            "medians_ms": {lb: [lat1[lb].tolist(), lat2[lb].tolist()] for lb in labels},
        }
        for fp32, int8 in (("ort-fp32", "ort-int8"), ("litert-fp32", "litert-int8")):
            if fp32 in lat1 and int8 in lat1:
                ratio = lat1[fp32] / lat1[int8]
                sec["int8_speedup"][int8] = {"median": float(np.median(ratio)), "min": float(ratio.min()), "max": float(ratio.max())}
        n = len(next(iter(lat1.values()))) if lat1 else 0
        if n >= args.k + 3:  # at least 3 held-out networks to rank
            for src in labels:
                for dst in labels:
                    if src != dst:
                        sec["transfer"][f"{src}->{dst}"] = transfer(lat1[src], lat1[dst], args.k, TRANSFER_SPLITS)
            for dst in labels:
                others = [lb for lb in labels if lb != dst]
                if len(others) > 1:  # all other runtimes as sources; K=0 column: the first of them
                    stacked = np.stack([lat1[lb] for lb in others], axis=1)
                    sec["transfer"][f"{'+'.join(others)}->{dst}"] = transfer(stacked, lat1[dst], args.k, TRANSFER_SPLITS)
        result["spaces"][space_name] = sec
    result["elapsed_s"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print_tables(result, labels, args.k)
    print(f"wrote {args.out}")


def print_tables(result: dict[str, Any], labels: list[str], k: int) -> None:
    for label, why in result["skipped"].items():
        print(f"skipped {label}: {why}")
    for space_name, sec in result["spaces"].items():
        print(f"\n== {space_name} ==")
        print(f"{'runtime':<18} {'median ms':>10} {'p25':>8} {'p75':>8} {'repro rho':>10} {'repro |d|':>10}")
        for lb in labels:
            d, r = sec["latency_ms"][lb], sec["reproducibility"][lb]
            print(f"{lb:<18} {d['median']:>10.3f} {d['p25']:>8.3f} {d['p75']:>8.3f} {r['spearman']:>10.3f} {r['median_abs_rel_diff']:>10.1%}")
        print("Spearman between runtimes")
        print(" " * 18 + "".join(f"{lb[:10]:>11}" for lb in labels))
        for a in labels:
            print(f"{a:<18}" + "".join(f"{sec['spearman'][a][b]:>11.3f}" for b in labels))
        for lb, s in sec["int8_speedup"].items():
            print(f"int8 speed-up {lb}: median {s['median']:.2f}x (min {s['min']:.2f}, max {s['max']:.2f})")
        for pair, t in sec["transfer"].items():
            if pair.startswith("ort-fp32") or pair.endswith("->ort-fp32"):
                print(f"transfer {pair:<32} rho K=0 {t['spearman_k0']:.3f}  K={k} {t[f'spearman_k{k}']:.3f}  "
                      f"MAPE K={k} {t[f'mape_k{k}']:.1%}")
    print("\nexport")
    for k, v in result["export"].items():
        print(f"{k:<28} median {v['export_s_median']:.2f} s  p90 {v['export_s_p90']:.2f} s  cache hit {v['cache_hit_ms_median']:.1f} ms")
    for k, v in result["numerics"].items():
        print(f"numerics {k:<24} {v}")


if __name__ == "__main__":
    main()
