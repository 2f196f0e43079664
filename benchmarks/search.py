"""Search benchmark on NAS-Bench-201: each algorithm against the exhaustive optimum.

For every dataset (cifar10, cifar100, ImageNet16-120), every device latency
column of the bundled table (21) and latency budget (10th / 25th / 50th
percentile of that device's latencies):
- constrained: the true optimum is the most accurate of the 15,625
  architectures under the budget; each algorithm runs with 300 / 1,000
  accuracy evaluations over 3 seeds; we report the accuracy gap to the
  optimum (mean +- std) and the fraction of runs that hit it (gap 0);
- multi-objective (no constraint): hypervolume of the Pareto set of
  everything evaluated divided by the true front's, after MODNAS
  normalisation (error and latency scaled by their min/max over the whole
  benchmark on that device, reference point [1, 1]);
- exhaustion: LayerNAS with a budget (2,000) above the number of feasible
  networks (bounds that admit about 157 / 313 / 469 / 782 / 1,565 networks):
  wall time until it stops, its stop reason and how many it evaluated.

Random search, regularized evolution and NSGA-II do not depend on the budget
they are given (they only stop earlier), so each runs once at the largest
budget and is scored on the prefixes of its history; LayerNAS sizes its
buckets from the budget, so it runs once per budget.

    python benchmarks/search.py --quick      # cifar10, 4 devices, 300 evaluations (~2 min on a loaded 2-core host)
    python benchmarks/search.py              # 3 datasets, 21 devices, 3 seeds
    python benchmarks/search.py --datasets cifar10 -o a.json &  # or side by side, then
    python benchmarks/search.py --datasets cifar100 ImageNet16-120 --no-multi-objective --no-exhaustion -o b.json
    python benchmarks/search.py --merge a.json b.json
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

ALGORITHMS = ("layernas", "random", "evolution")
ANYTIME = {"random", "evolution", "nsga2"}  # trajectories independent of the budget
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
# GPU batch 1, a Xeon CPU, a phone, a phone with whole-millisecond (tied) latencies.
DEVICES_QUICK = ("1080ti_1", "silver_4114", "pixel3", "samsung_s7")
BUDGETS = (300, 1000)
PERCENTILES = (10, 25, 50)
EXHAUST_SIZES = (157, 313, 469, 782, 1565)
EXHAUST_BUDGET = 2000


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


def exhaustion(device: str = "pixel3", sizes=EXHAUST_SIZES, budget: int = EXHAUST_BUDGET, seeds=range(3), on_setting=None) -> list[dict[str, Any]]:
    """LayerNAS with more budget than feasible networks: seconds until it stops, and why."""
    table = load_nb201()
    space = NB201Space()
    ev = TabularEvaluator(table, "cifar10")
    lat = np.sort(np.asarray(table.latency_ms[device]))
    cost = LookupCost.from_nb201(table, device)
    rows = []
    for n in sizes:
        bound = float(lat[int(n) - 1])
        n_feasible = int((lat <= bound).sum())
        for seed in seeds:
            t0 = time.perf_counter()
            res = search("layernas", space, ev, [cost], Constraint("latency_ms", bound), budget=budget, seed=seed)
            wall = time.perf_counter() - t0
            rows.append(
                {
                    "device": device, "target_feasible": int(n), "n_feasible": n_feasible, "max_latency_ms": bound,
                    "budget": budget, "seed": int(seed), "wall_s": wall, "n_evaluations": res.n_evaluations,
                    "stop_reason": res.stop_reason,
                }
            )
        if on_setting:
            on_setting(f"exhaustion {device} {n_feasible} feasible", sum(r["wall_s"] for r in rows[-len(list(seeds)):]))
    return rows


def run_benchmark(
    datasets=DATASETS,
    devices=None,
    budgets=BUDGETS,
    percentiles=PERCENTILES,
    seeds=range(3),
    algorithms=ALGORITHMS,
    multi_objective: bool = True,
    on_setting=None,
) -> dict[str, Any]:
    table = load_nb201()
    space = NB201Space()
    seeds = list(seeds)
    devices = list(table.latency_ms) if devices is None else list(devices)
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
    """Per algorithm and budget: mean gap (cifar10 and all datasets, overall and per percentile), hit rate, wins, HV ratio."""
    rows = result["constrained"]
    out: dict[str, Any] = {}
    budgets = result["settings"]["budgets"]
    key = lambda r: (r["dataset"], r["device"], r["percentile"], r["budget"])  # noqa: E731
    by_setting: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_setting.setdefault(key(r), {})[r["algorithm"]] = r
    mean_or_none = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    for algo in result["settings"]["algorithms"]:
        for b in budgets:
            mine = [r for r in rows if r["algorithm"] == algo and r["budget"] == b]
            c10 = [r["gap_mean"] for r in mine if r["dataset"] == "cifar10"]
            entry: dict[str, Any] = {
                "gap_mean_cifar10": mean_or_none(c10),
                "gap_max_cifar10": float(np.max(c10)) if c10 else None,
                "gap_mean_all": mean_or_none([r["gap_mean"] for r in mine]),
                "hit_rate_all": mean_or_none([r["hit_rate"] for r in mine]),
            }
            for pct in result["settings"]["percentiles"]:
                at = [r for r in mine if r["percentile"] == pct]
                c10p = [r["gap_mean"] for r in at if r["dataset"] == "cifar10"]
                entry[f"p{pct}"] = {
                    "gap_mean_cifar10": mean_or_none(c10p),
                    "gap_max_cifar10": float(np.max(c10p)) if c10p else None,
                    "gap_mean_all": mean_or_none([r["gap_mean"] for r in at]),
                    "hit_rate_all": mean_or_none([r["hit_rate"] for r in at]),
                }
            for other in result["settings"]["algorithms"]:
                if other == algo:
                    continue
                pairs = [(s[algo]["gap_mean"], s[other]["gap_mean"]) for k, s in by_setting.items() if k[3] == b and other in s]
                entry[f"better_than_{other}"] = sum(a < o - 1e-9 for a, o in pairs)
                entry[f"tied_with_{other}"] = sum(abs(a - o) <= 1e-9 for a, o in pairs)
                entry["n_settings"] = len(pairs)
            hv = [r["hv_ratio_mean"] for r in result["multi_objective"] if r["algorithm"] == algo and r["budget"] == b]
            entry["hv_ratio_mean"] = mean_or_none(hv)
            entry["hv_ratio_min"] = float(np.min(hv)) if hv else None
            out[f"{algo}@{b}"] = entry
    ex = result.get("exhaustion") or []
    if ex:
        out["exhaustion"] = {
            "max_wall_s": float(max(r["wall_s"] for r in ex)),
            "all_stopped_before_budget": all(r["n_evaluations"] < r["budget"] for r in ex),
        }
    return out


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from runs over disjoint datasets (e.g. run side by side): rows joined, summary recomputed."""
    first = results[0]
    out: dict[str, Any] = {"settings": dict(first["settings"]), "constrained": [], "multi_objective": []}
    out["settings"]["datasets"] = []
    out["settings"]["runs"] = [r["settings"] for r in results]
    for r in results:
        for key in ("devices", "budgets", "percentiles", "seeds", "algorithms"):
            if r["settings"][key] != first["settings"][key]:
                raise SystemExit(f"cannot merge: runs differ in {key} ({r['settings'][key]} vs {first['settings'][key]})")
        out["settings"]["datasets"] += [d for d in r["settings"]["datasets"] if d not in out["settings"]["datasets"]]
        out["constrained"] += r["constrained"]
        out["multi_objective"] += r["multi_objective"]
        if r.get("exhaustion"):
            out["exhaustion"] = (out.get("exhaustion") or []) + r["exhaustion"]
    out["settings"]["wall_s"] = sum(r["settings"]["wall_s"] for r in results)
    out["summary"] = summarize(out)
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _tables(result: dict[str, Any], algorithms, budgets) -> list[Table]:
    summary = result["summary"]
    percentiles = result["settings"]["percentiles"]
    t = Table(title="NB201 search: accuracy gap to the constrained optimum (points), by budget percentile")
    for col in ("algorithm", "evals", "percentile", "gap c10", "max gap c10", "gap all", "hit rate"):
        t.add_column(col, justify="left" if col == "algorithm" else "right")
    for algo in algorithms:
        for b in budgets:
            for pct in percentiles:
                s = summary[f"{algo}@{b}"][f"p{pct}"]
                t.add_row(algo, str(b), str(pct), _fmt(s["gap_mean_cifar10"]), _fmt(s["gap_max_cifar10"]),
                          _fmt(s["gap_mean_all"]), _fmt(s["hit_rate_all"]))
    tables = [t]
    if result["multi_objective"]:
        h = Table(title="Multi-objective: hypervolume ratio to the true front (mean / worst setting)")
        for col in ("algorithm", "evals", "HV ratio", "min HV"):
            h.add_column(col, justify="left" if col == "algorithm" else "right")
        for algo in algorithms:
            for b in budgets:
                s = summary[f"{algo}@{b}"]
                h.add_row(algo, str(b), _fmt(s["hv_ratio_mean"]), _fmt(s["hv_ratio_min"]))
        tables.append(h)
    dataset = "cifar10" if "cifar10" in result["settings"]["datasets"] else result["settings"]["datasets"][0]
    b0 = min(budgets)
    d = Table(title=f"{dataset}, {b0} evaluations: mean gap per device ({' / '.join(algorithms)})")
    d.add_column("device")
    for pct in percentiles:
        d.add_column(f"p{pct}", justify="right")
    gap = {(r["device"], r["percentile"], r["algorithm"]): r["gap_mean"] for r in result["constrained"]
           if r["dataset"] == dataset and r["budget"] == b0}
    for dev in result["settings"]["devices"]:
        d.add_row(dev, *(" / ".join(f"{gap[(dev, pct, a)]:.2f}" for a in algorithms if (dev, pct, a) in gap) for pct in percentiles))
    tables.append(d)
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
    if result.get("exhaustion"):
        e = Table(title="LayerNAS with a budget above the feasible set: time to stop")
        for col in ("device", "feasible", "evaluated", "wall s (max over seeds)", "stop reason"):
            e.add_column(col)
        rows = result["exhaustion"]
        for n in dict.fromkeys(r["n_feasible"] for r in rows):
            mine = [r for r in rows if r["n_feasible"] == n]
            e.add_row(mine[0]["device"], str(n), "/".join(str(r["n_evaluations"]) for r in mine),
                      f"{max(r['wall_s'] for r in mine):.2f}", mine[0]["stop_reason"])
        tables.append(e)
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="cifar10, 4 devices, 300 evaluations, two exhaustion sizes")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--devices", nargs="+", default=None, help="default: all 21 devices of the table")
    p.add_argument("--datasets", nargs="+", default=None)
    p.add_argument("--budgets", nargs="+", type=int, default=None)
    p.add_argument("--percentiles", nargs="+", type=float, default=list(PERCENTILES))
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    p.add_argument("--no-multi-objective", action="store_true")
    p.add_argument("--no-exhaustion", action="store_true")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="run nothing: combine results of runs over different datasets into --out")
    p.add_argument("-o", "--out", default=str(Path(__file__).parent / "results" / "search.json"))
    args = p.parse_args(argv)
    console = Console()
    if args.merge:
        result = merge([json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge])
        for t in _tables(result, result["settings"]["algorithms"], result["settings"]["budgets"]):
            console.print(t)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {args.out}")
        return 0
    devices = args.devices or (list(DEVICES_QUICK) if args.quick else None)
    datasets = args.datasets or (["cifar10"] if args.quick else list(DATASETS))
    budgets = sorted(args.budgets or ([300] if args.quick else list(BUDGETS)))
    percentiles = [int(x) if float(x).is_integer() else x for x in args.percentiles]
    start = time.perf_counter()
    log = lambda name, s: console.log(f"{name}: {s:.1f} s")  # noqa: E731
    result = run_benchmark(
        datasets=datasets, devices=devices, budgets=budgets, percentiles=percentiles, seeds=range(args.seeds),
        algorithms=args.algorithms, multi_objective=not (args.no_multi_objective or args.quick), on_setting=log,
    )
    if not args.no_exhaustion:
        result["exhaustion"] = exhaustion(sizes=EXHAUST_SIZES[:2] if args.quick else EXHAUST_SIZES, seeds=range(args.seeds), on_setting=log)
    result["settings"]["mode"] = "quick" if args.quick else "full"
    result["settings"]["wall_s"] = time.perf_counter() - start
    result["summary"] = summarize(result)
    for t in _tables(result, args.algorithms, budgets):
        console.print(t)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {out} ({result['settings']['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
