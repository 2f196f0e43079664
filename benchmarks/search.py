"""Search benchmark on NAS-Bench-201: each algorithm against the exhaustive optimum.

For every dataset (cifar10, cifar100, ImageNet16-120), device latency column
and latency budget (25th / 50th percentile of that device's latencies):
- constrained: the true optimum is the most accurate of the 15,625
  architectures under the budget; each algorithm runs with 100 / 300 / 1,000
  accuracy evaluations over several seeds; we report the accuracy gap to the
  optimum (mean +- std) and the fraction of runs that hit it (gap 0);
- multi-objective (no constraint): hypervolume of the Pareto set of
  everything evaluated divided by the true front's, after MODNAS
  normalisation (error and latency scaled by their min/max over the whole
  benchmark on that device, reference point [1, 1]).

Random search, regularized evolution and NSGA-II do not depend on the budget
they are given (they only stop earlier), so each runs once at the largest
budget and is scored on the prefixes of its history; LayerNAS sizes its
buckets from the budget, so it runs once per budget.

    python benchmarks/search.py --quick      # 3 seeds, 3 devices (~1-2 min)
    python benchmarks/search.py              # 10 seeds, 6 devices
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

# The benchmarks folder holds predictors.py: keep it off the import path so `predictors` is the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from nas.cost import Constraint, LookupCost  # noqa: E402
from nas.evaluators import TabularEvaluator  # noqa: E402
from nas.pareto import modnas_hypervolume  # noqa: E402
from nas.search import SearchResult, search  # noqa: E402
from nas.spaces import NB201Space  # noqa: E402
from nas.tabular import load_nb201  # noqa: E402

ALGORITHMS = ("layernas", "random", "evolution", "nsga2")
ANYTIME = {"random", "evolution", "nsga2"}  # trajectories independent of the budget
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
# GPU batch 1 and batch 32, two Xeon CPUs, two phones.
DEVICES_FULL = ("1080ti_1", "titan_rtx_32", "gold_6240", "silver_4114", "pixel3", "samsung_a50")
DEVICES_QUICK = ("1080ti_1", "silver_4114", "pixel3")
BUDGETS = (100, 300, 1000)
PERCENTILES = (25, 50)


def _runs(algo: str, space, ev, cost, constraint, budgets, seeds, multi_objective: bool) -> dict[int, list[SearchResult | list]]:
    """budget -> per seed, the history (prefix) the algorithm had after that many evaluations."""
    out: dict[int, list] = {b: [] for b in budgets}
    for seed in seeds:
        if algo in ANYTIME:
            res = search(algo, space, ev, [cost], constraint, budget=max(budgets), seed=seed, multi_objective=multi_objective)
            for b in budgets:
                out[b].append(res.history[:b])
        else:
            for b in budgets:
                res = search(algo, space, ev, [cost], constraint, budget=b, seed=seed, multi_objective=multi_objective)
                out[b].append(res.history)
    return out


def run_benchmark(
    datasets=DATASETS,
    devices=DEVICES_FULL,
    budgets=BUDGETS,
    percentiles=PERCENTILES,
    seeds=range(10),
    algorithms=ALGORITHMS,
    multi_objective: bool = True,
    on_setting=None,
) -> dict[str, Any]:
    table = load_nb201()
    space = NB201Space()
    seeds = list(seeds)
    constrained: list[dict[str, Any]] = []
    multi: list[dict[str, Any]] = []
    for dataset in datasets:
        acc = np.asarray(table.accuracy[dataset])
        ev = TabularEvaluator(table, dataset)
        for device in devices:
            lat = np.asarray(table.latency_ms[device])
            cost = LookupCost.from_nb201(table, device)
            for pct in percentiles:
                bound = float(np.percentile(lat, pct))
                feasible = lat <= bound
                i_opt = int(np.flatnonzero(feasible)[np.argmax(acc[feasible])])
                opt = float(acc[i_opt])
                for algo in algorithms:
                    t0 = time.perf_counter()
                    runs = _runs(algo, space, ev, cost, Constraint("latency_ms", bound), budgets, seeds, False)
                    for b in budgets:
                        gaps = []
                        for hist in runs[b]:
                            best = max((e.accuracy for e in hist if e.feasible), default=-np.inf)
                            gaps.append(opt - best)
                        g = np.asarray(gaps)
                        constrained.append(
                            {
                                "dataset": dataset, "device": device, "percentile": pct, "max_latency_ms": bound,
                                "optimum_accuracy": opt, "optimum_spec": table.archs[i_opt], "n_feasible": int(feasible.sum()),
                                "algorithm": algo, "budget": b, "gap_mean": float(g.mean()), "gap_std": float(g.std()),
                                "hit_rate": float(np.mean(g <= 1e-9)), "gaps": g.tolist(),
                                "n_evaluations_mean": float(np.mean([len(h) for h in runs[b]])),
                            }
                        )
                    if on_setting:
                        on_setting(f"{dataset} {device} p{pct} {algo}", time.perf_counter() - t0)
            if not multi_objective:
                continue
            lower = [100.0 - float(acc.max()), float(lat.min())]
            upper = [100.0 - float(acc.min()), float(lat.max())]
            true_hv = modnas_hypervolume(acc, lat, lower, upper)
            for algo in algorithms:
                t0 = time.perf_counter()
                runs = _runs(algo, space, ev, cost, None, budgets, seeds, True)
                for b in budgets:
                    ratios = [
                        modnas_hypervolume([e.accuracy for e in h], [e.costs[0] for e in h], lower, upper) / true_hv
                        for h in runs[b]
                    ]
                    r = np.asarray(ratios)
                    multi.append(
                        {
                            "dataset": dataset, "device": device, "algorithm": algo, "budget": b,
                            "true_front_hv": true_hv, "hv_ratio_mean": float(r.mean()), "hv_ratio_std": float(r.std()),
                            "hv_ratios": r.tolist(),
                        }
                    )
                if on_setting:
                    on_setting(f"{dataset} {device} multi-objective {algo}", time.perf_counter() - t0)
    return {
        "settings": {
            "datasets": list(datasets), "devices": list(devices), "budgets": list(budgets),
            "percentiles": list(percentiles), "seeds": seeds, "algorithms": list(algorithms),
            "hv_normalisation": "MODNAS: error=100-accuracy and latency scaled by min/max over all 15625 archs per device; reference [1,1]",
            "python": platform.python_version(), "machine": platform.machine(),
        },
        "constrained": constrained,
        "multi_objective": multi,
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Per algorithm and budget: mean gap (cifar10 and all datasets), hit rate, wins vs baselines, HV ratio."""
    rows = result["constrained"]
    out: dict[str, Any] = {}
    budgets = result["settings"]["budgets"]
    key = lambda r: (r["dataset"], r["device"], r["percentile"], r["budget"])  # noqa: E731
    by_setting: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_setting.setdefault(key(r), {})[r["algorithm"]] = r
    for algo in result["settings"]["algorithms"]:
        for b in budgets:
            mine = [r for r in rows if r["algorithm"] == algo and r["budget"] == b]
            c10 = [r["gap_mean"] for r in mine if r["dataset"] == "cifar10"]
            entry: dict[str, Any] = {
                "gap_mean_cifar10": float(np.mean(c10)) if c10 else None,
                "gap_max_cifar10": float(np.max(c10)) if c10 else None,
                "gap_mean_all": float(np.mean([r["gap_mean"] for r in mine])),
                "hit_rate_all": float(np.mean([r["hit_rate"] for r in mine])),
            }
            for other in result["settings"]["algorithms"]:
                if other == algo:
                    continue
                pairs = [(s[algo]["gap_mean"], s[other]["gap_mean"]) for k, s in by_setting.items() if k[3] == b and other in s]
                entry[f"better_than_{other}"] = sum(a < o - 1e-9 for a, o in pairs)
                entry[f"tied_with_{other}"] = sum(abs(a - o) <= 1e-9 for a, o in pairs)
                entry["n_settings"] = len(pairs)
            hv = [r["hv_ratio_mean"] for r in result["multi_objective"] if r["algorithm"] == algo and r["budget"] == b]
            entry["hv_ratio_mean"] = float(np.mean(hv)) if hv else None
            entry["hv_ratio_min"] = float(np.min(hv)) if hv else None
            out[f"{algo}@{b}"] = entry
    return out


def _tables(summary: dict[str, Any], algorithms, budgets) -> list[Table]:
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    t = Table(title="NB201 search: accuracy gap to the constrained optimum (points) and hypervolume ratio")
    for col in ("algorithm", "evals", "gap c10", "max gap c10", "gap all", "hit rate", "HV ratio", "min HV"):
        t.add_column(col, justify="left" if col == "algorithm" else "right")
    for algo in algorithms:
        for b in budgets:
            s = summary[f"{algo}@{b}"]
            t.add_row(
                algo, str(b), fmt(s["gap_mean_cifar10"]), fmt(s["gap_max_cifar10"]), fmt(s["gap_mean_all"]),
                fmt(s["hit_rate_all"]), fmt(s["hv_ratio_mean"]), fmt(s["hv_ratio_min"]),
            )
    tables = [t]
    if "layernas" in algorithms and len(algorithms) > 1:
        w = Table(title="LayerNAS vs each baseline: settings with a lower / equal mean gap (of all settings)")
        w.add_column("evals")
        others = [a for a in algorithms if a != "layernas"]
        for o in others:
            w.add_column(o, justify="right")
        for b in budgets:
            s = summary[f"layernas@{b}"]
            w.add_row(str(b), *(f"{s[f'better_than_{o}']} / {s[f'tied_with_{o}']} (of {s['n_settings']})" for o in others))
        tables.append(w)
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 seeds and 3 devices")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--devices", nargs="+", default=None)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    p.add_argument("--no-multi-objective", action="store_true")
    p.add_argument("-o", "--out", default=str(Path(__file__).parent / "results" / "search.json"))
    args = p.parse_args(argv)
    devices = args.devices or list(DEVICES_QUICK if args.quick else DEVICES_FULL)
    n_seeds = args.seeds if args.seeds is not None else (3 if args.quick else 10)
    console = Console()
    start = time.perf_counter()
    result = run_benchmark(
        datasets=args.datasets, devices=devices, budgets=sorted(args.budgets), seeds=range(n_seeds),
        algorithms=args.algorithms, multi_objective=not args.no_multi_objective,
        on_setting=lambda name, s: console.log(f"{name}: {s:.1f} s"),
    )
    result["settings"]["mode"] = "quick" if args.quick else "full"
    result["settings"]["wall_s"] = time.perf_counter() - start
    result["summary"] = summarize(result)
    for t in _tables(result["summary"], args.algorithms, sorted(args.budgets)):
        console.print(t)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {out} ({result['settings']['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
